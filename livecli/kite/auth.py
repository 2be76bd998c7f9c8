"""Kite login: turn the request_token of Kite's login redirect into a stored access token.

Kite's flow is manual by design (the user logs in on kite.zerodha.com), so livecli makes the
rest of it one step: show the login URL, accept whatever the user pastes (the whole redirect
URL or the bare request_token), exchange it with the api_secret, and keep the access token in
the user data folder so every later command finds it. Kite invalidates access tokens at 06:00
IST every day; the stored expiry lets `stream` refuse a dead token before it connects, with the
fix in the message, instead of failing on a bare HTTP 403 from the WebSocket upgrade.

The token file itself (its format, mode 0600, atomic writes) is `livecli.config.token_store`:
the settings loader reads it, and config must not depend on kite. Its names are re-exported
here for callers that know them from this module.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from livecli.config import paths
from livecli.config.schema import DEFAULT_LOGIN_URL
from livecli.config.token_store import (
    EXPIRY_HOUR_IST,
    StoredToken,
    describe_instant,
    load_stored_token,
    save_token,
    token_expiry,
)
from livecli.errors import AuthError, ConfigError, UsageError
from livecli.kite.protocol import LOGIN_ADVICE

if TYPE_CHECKING:
    from livecli.config.settings import Settings

__all__ = [
    "EXPIRY_HOUR_IST",
    "StoredToken",
    "check_token_fresh",
    "describe_instant",
    "load_stored_token",
    "login",
    "login_credentials",
    "login_url",
    "parse_request_token",
    "save_token",
    "token_expiry",
]

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{6,128}$")


def parse_request_token(text: str) -> str:
    """The request_token in what the user pasted: Kite's redirect URL, or the token itself."""
    s = text.strip().strip("'\"")
    if "request_token" in s or "://" in s or "?" in s:
        query = urlsplit(s).query if "://" in s else s.split("?", 1)[-1]
        values = parse_qs(query).get("request_token", [])
        if not values or not values[0].strip():
            raise UsageError(
                "that URL has no request_token: paste the whole address Kite redirected your "
                "browser to after you logged in (it contains request_token=...)"
            )
        s = values[0].strip()
    if not _TOKEN_RE.match(s):
        raise UsageError(
            f"{s[:12]!r}… is not a request token: paste the redirect URL after login, or the "
            "request_token value from it"
        )
    return s


def login_credentials(settings: Settings) -> tuple[str, str]:
    """(api_key, api_secret) for the login, or ConfigError saying where to put them."""
    user_file = settings.config_dir / paths.CONFIG_FILE_NAME
    missing = [
        name
        for name, value, env in (
            ("api_key", settings.kite.api_key, "KITE_API_KEY"),
            ("api_secret", settings.kite.api_secret, "KITE_API_SECRET"),
        )
        if not value
    ]
    if missing:
        names = " and ".join(missing)
        envs = " and ".join(f"KITE_{m.upper()}" for m in missing)
        raise ConfigError(
            f"`livecli login` needs the Kite app's {names}: put them under [kite] in {user_file} "
            f"(chmod 600) or set {envs}"
        )
    assert settings.kite.api_key and settings.kite.api_secret
    return settings.kite.api_key, settings.kite.api_secret


def login_url(settings: Settings) -> str:
    """Kite's login page for this api_key (kiteconnect's `login_url()`, at kite.login_url)."""
    from livecli.kite.rest import client

    api_key, _ = login_credentials(settings)
    url: str = client(api_key, None, settings.kite.api_url).login_url()
    base = settings.kite.login_url
    if base != DEFAULT_LOGIN_URL and url.startswith(DEFAULT_LOGIN_URL):
        url = base + url[len(DEFAULT_LOGIN_URL):]
    return url


def login(settings: Settings, pasted: str, *, now: float | None = None) -> StoredToken:
    """Exchange the request_token in `pasted` for an access token and store it; return it."""
    from livecli.kite.rest import client, translate

    api_key, api_secret = login_credentials(settings)
    request_token = parse_request_token(pasted)
    kite = client(api_key, None, settings.kite.api_url)
    try:
        session = kite.generate_session(request_token, api_secret=api_secret)
    except Exception as exc:
        err = translate(exc, doing="login", api_url=settings.kite.api_url)
        if isinstance(err, AuthError) or getattr(exc, "code", None) == 400:
            err = AuthError(
                "Kite rejected the login (request token used, expired or wrong, or api_secret "
                "does not match api_key): check kite.api_secret and " + LOGIN_ADVICE + " again"
            )
        raise err from exc
    access_token = session.get("access_token") if isinstance(session, dict) else None
    if not access_token:
        raise AuthError("Kite's login reply carried no access token; " + LOGIN_ADVICE + " again")
    at = time.time() if now is None else now
    return save_token(
        settings.data_dir,
        api_key=api_key,
        access_token=str(access_token),
        user_id=session.get("user_id"),
        login_at=at,
    )


def check_token_fresh(settings: Settings, now: float | None = None) -> float | None:
    """Refuse missing or expired credentials before connecting; return the expiry if known.

    The expiry is known when the token in use is the one `livecli login` stored; a token given
    some other way (env, file, flag) is taken on trust and Kite's 403 is the final judge.
    """
    # Any Kite credential means Kite (`Settings.kite_configured`): say which one is set, since
    # the user may have expected the simulated market.
    why = _why_kite(settings)
    if not settings.kite.api_key:
        raise AuthError(
            "no Kite api_key: set KITE_API_KEY or api_key under [kite] in "
            f"{settings.config_dir / paths.CONFIG_FILE_NAME}, then {LOGIN_ADVICE}{why}"
        )
    if not settings.kite.access_token:
        raise AuthError(f"no access token: {LOGIN_ADVICE} (or set KITE_ACCESS_TOKEN){why}")
    expires = settings.token_expires_at
    at = time.time() if now is None else now
    if expires is not None and at >= expires:
        raise AuthError(f"access token expired at {describe_instant(expires)}, {LOGIN_ADVICE}")
    return expires


def _why_kite(settings: Settings) -> str:
    """`; kite.api_secret from env KITE_API_SECRET is set, so ...`, or "" when none is set."""
    given = [
        f"{key} from {settings.sources.get(key, 'the settings')}"
        for key in ("kite.api_key", "kite.api_secret", "kite.access_token")
        if settings.get(key)
    ]
    if not given:
        return ""
    verb = "is" if len(given) == 1 else "are"
    return (f"; {' and '.join(given)} {verb} set, so livecli uses Kite "
            "(--sim streams the simulated market instead)")
