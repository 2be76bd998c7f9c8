"""Kite login: turn the request_token of Kite's login redirect into a stored access token.

Kite's flow is manual by design (the user logs in on kite.zerodha.com), so livecli makes the
rest of it one step: show the login URL, accept whatever the user pastes (the whole redirect
URL or the bare request_token), exchange it with the api_secret, and keep the access token in
the user data folder so every later command finds it. Kite invalidates access tokens at 06:00
IST every day; the stored expiry lets `stream` refuse a dead token before it connects, with the
fix in the message, instead of failing on a bare HTTP 403 from the WebSocket upgrade.

The token file is JSON, mode 0600 from the moment it exists (written to a temp file that is
chmod-ed before the secret goes in, then renamed into place), never printed in full.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from livecli.config import paths
from livecli.config.schema import DEFAULT_LOGIN_URL
from livecli.core.timeutil import DAY_S, day_start, iso, ist_day, parse_instant, to_ist
from livecli.errors import AuthError, ConfigError, UsageError

if TYPE_CHECKING:
    from livecli.config.settings import Settings

log = logging.getLogger("livecli.auth")

EXPIRY_HOUR_IST = 6  # Kite flushes every access token at 06:00 IST
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{6,128}$")


@dataclass(frozen=True)
class StoredToken:
    """An access token saved by `livecli login`."""

    api_key: str
    access_token: str
    user_id: str | None
    login_at: float  # epoch seconds
    expires_at: float  # epoch seconds: 06:00 IST after login
    path: Path

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


def token_expiry(login_at: float) -> float:
    """When a token issued at `login_at` dies: the first 06:00 IST after it.

    That is 06:00 IST the next day for a login during the day; a login between midnight and
    06:00 IST lives only until 06:00 that same morning.
    """
    six = day_start(ist_day(login_at)) + EXPIRY_HOUR_IST * 3600
    return six if login_at < six else six + DAY_S


def describe_instant(epoch_s: float) -> str:
    return to_ist(epoch_s).strftime("%Y-%m-%d %H:%M IST")


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
                "does not match api_key): check kite.api_secret and run `livecli login` again"
            )
        raise err from exc
    access_token = session.get("access_token") if isinstance(session, dict) else None
    if not access_token:
        raise AuthError("Kite's login reply carried no access token; run `livecli login` again")
    at = time.time() if now is None else now
    return save_token(
        settings.data_dir,
        api_key=api_key,
        access_token=str(access_token),
        user_id=session.get("user_id"),
        login_at=at,
    )


def save_token(
    data_dir: Path, *, api_key: str, access_token: str, user_id: str | None, login_at: float
) -> StoredToken:
    """Write the token file atomically with mode 0600; return what was stored."""
    path = paths.token_file(data_dir)
    token = StoredToken(api_key, access_token, user_id, login_at, token_expiry(login_at), path)
    payload = {
        "api_key": token.api_key,
        "access_token": token.access_token,
        "user_id": token.user_id,
        "login_at": iso(round(token.login_at)),
        "expires_at": iso(token.expires_at),
    }
    tmp: str | None = None
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".token-", suffix=".tmp", dir=data_dir)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # before the secret is written, whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ConfigError(
            f"cannot write the login token to {path}: {exc.strerror}; make the folder writable "
            f"or point LIVECLI_DATA_DIR elsewhere"
        ) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return token


def load_stored_token(data_dir: Path) -> StoredToken | None:
    """The token `livecli login` saved in `data_dir`, or None (none saved, or unreadable)."""
    path = paths.token_file(data_dir)
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        return StoredToken(
            api_key=str(raw["api_key"]),
            access_token=str(raw["access_token"]),
            user_id=raw.get("user_id"),
            login_at=parse_instant(raw["login_at"]),
            expires_at=parse_instant(raw["expires_at"]),
            path=path,
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("livecli: warning: ignoring unreadable login token %s; run `livecli login`", path)
        return None


def check_token_fresh(settings: Settings, now: float | None = None) -> float | None:
    """Refuse missing or expired credentials before connecting; return the expiry if known.

    The expiry is known when the token in use is the one `livecli login` stored; a token given
    some other way (env, file, flag) is taken on trust and Kite's 403 is the final judge.
    """
    if not settings.kite.api_key:
        raise AuthError(
            "no Kite api_key: set KITE_API_KEY or api_key under [kite] in "
            f"{settings.config_dir / paths.CONFIG_FILE_NAME}, then run `livecli login`"
        )
    if not settings.kite.access_token:
        raise AuthError("no access token: run `livecli login` (or set KITE_ACCESS_TOKEN)")
    expires = settings.token_expires_at
    at = time.time() if now is None else now
    if expires is not None and at >= expires:
        raise AuthError(f"access token expired at {describe_instant(expires)}, run `livecli login`")
    return expires
