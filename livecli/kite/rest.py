"""One way to make kiteconnect's REST client and to turn its failures into livecli's errors.

kiteconnect raises its own exception classes, and lets `requests` errors (multi-line, with the
whole URL) escape as they are. Users need one line: "the token is bad, run `livecli login`" or
"cannot reach the API at URL". Every REST call livecli makes goes through `call`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from livecli.errors import AuthError, KiteApiError, LivecliError
from livecli.kite.protocol import TOKEN_ADVICE
from livecli.kite.text import shorten

T = TypeVar("T")


def client(api_key: str | None, access_token: str | None, api_url: str) -> Any:
    """A kiteconnect.KiteConnect pointed at `api_url` (Kite's, or the local stand-in's)."""
    from urllib.parse import urlsplit

    from kiteconnect import KiteConnect  # heavy (requests, dateutil): only when a call is made

    kite = KiteConnect(api_key or "", access_token=access_token or None, root=api_url)
    if urlsplit(api_url).hostname in ("127.0.0.1", "localhost", "::1"):
        # The local stand-in: an HTTP(S)_PROXY from the environment must not capture loopback.
        kite.reqsession.trust_env = False
    return kite


def translate(exc: BaseException, *, doing: str, api_url: str) -> LivecliError:
    """The livecli error for a failure of a kiteconnect call (what we were `doing`)."""
    import requests
    from kiteconnect import exceptions as kex

    if isinstance(exc, LivecliError):
        return exc
    if isinstance(exc, kex.KiteException):
        if isinstance(exc, kex.TokenException) or getattr(exc, "code", None) == 403:
            return AuthError(f"{doing}: {TOKEN_ADVICE}")
        return KiteApiError(f"{doing}: Kite answered {exc.code}: {shorten(exc)}")
    if isinstance(exc, requests.exceptions.Timeout):
        return KiteApiError(f"{doing}: {api_url} did not answer in time; check the network or kite.api_url")
    if isinstance(exc, requests.exceptions.RequestException):
        return KiteApiError(
            f"{doing}: cannot reach {api_url} ({type(exc).__name__}); check the network or kite.api_url"
        )
    return KiteApiError(f"{doing}: unexpected reply from {api_url}: {shorten(exc)}")


def call(fn: Callable[[], T], *, doing: str, api_url: str) -> T:
    """Run one REST call, raising AuthError / KiteApiError (one line) when it fails."""
    try:
        return fn()
    except Exception as exc:
        raise translate(exc, doing=doing, api_url=api_url) from exc
