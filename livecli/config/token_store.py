"""The login token file: where `livecli login` keeps today's access token, and reading it back.

It lives in config, not in kite, because the settings loader reads it (the stored token is one
layer of the settings, see `livecli.config.loader`) and config must not depend on kite. The
login exchange itself, which talks to Kite, stays in `livecli.kite.auth`.

The file is JSON in the user data folder, mode 0600 from the moment it exists (written to a temp
file that is chmod-ed before the secret goes in, then renamed into place), never printed in full.
Kite invalidates access tokens at 06:00 IST every day; the stored expiry lets `stream` refuse a
dead token before it connects.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livecli.config import paths
from livecli.config.files import atomic_path
from livecli.core.timeutil import DAY_S, day_start, iso, ist_day, parse_instant, to_ist
from livecli.errors import ConfigError
from livecli.kite.protocol import LOGIN_ADVICE

log = logging.getLogger("livecli.config")

EXPIRY_HOUR_IST = 6  # Kite flushes every access token at 06:00 IST


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
    """An instant as users read a token's expiry: `2025-12-11 06:00 IST`."""
    return to_ist(epoch_s).strftime("%Y-%m-%d %H:%M IST")


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
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_path(path, mode=0o600) as tmp, tmp.open("w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise ConfigError(
            f"cannot write the login token to {path}: {exc.strerror}; make the folder writable "
            f"or point LIVECLI_DATA_DIR elsewhere"
        ) from None
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
        log.warning("ignoring unreadable login token %s; %s", path, LOGIN_ADVICE)
        return None
