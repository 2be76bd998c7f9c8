"""Who may call the Live Data API: loopback freely, anything else only with the API key.

A server bound to loopback is reachable only from this machine and needs no key (unless asked
with `--require-key`, for shared machines). Binding any other address exposes market data and
the start/stop controls to the network, so it requires the API key: made on first use
(`secrets.token_urlsafe`), kept in the user data folder readable only by its owner, and sent as
`Authorization: Bearer KEY` or, for browsers (whose WebSocket cannot set headers), `?token=KEY`.
A key file that others can read, or that is damaged, refuses the start: a ConfigError, one line.
The key is never printed whole (`livecli.config.mask`).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from livecli.config.schema import mask
from livecli.errors import ConfigError

KEY_FILE_NAME = "serve-api-key"
MIN_KEY_CHARS = 32


def is_loopback(host: str | None) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, "localhost").

    Any other name counts as exposed: what it resolves to is not ours to guess.
    """
    h = (host or "").strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """The key every request must carry (None: no key needed), and where it is kept."""

    key: str | None = None
    path: Path | None = None
    created: bool = False

    @property
    def required(self) -> bool:
        return self.key is not None

    @property
    def masked(self) -> str:
        return mask(self.key)

    def allows(self, presented: str | None) -> bool:
        if self.key is None:
            return True
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8", "replace"), self.key.encode())


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE_NAME


def policy_for(host: str | None, data_dir: Path, *, require: bool = False) -> AuthPolicy:
    """The policy of a server bound to `host`: raises ConfigError when a key is needed and
    cannot be had safely (the server must then not start)."""
    if is_loopback(host) and not require:
        return AuthPolicy()
    path = key_file(data_dir)
    key, created = load_or_create_key(path)
    return AuthPolicy(key, path, created)


def load_or_create_key(path: Path) -> tuple[str, bool]:
    """The key stored at `path`, made (0600) when there is none; (key, created)."""
    try:
        return _read_key(path), False
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(MIN_KEY_CHARS)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(key + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # never replaces a key another server made meanwhile
            except FileExistsError:
                return _read_key(path), False
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the API key file {path}: {exc.strerror or exc}; binding an address "
            "other than loopback needs it (check that the data folder, LIVECLI_DATA_DIR, is "
            "writable, or bind 127.0.0.1)"
        ) from None
    return key, True


def _read_key(path: Path) -> str:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"cannot read the API key file {path}: it is not a file; delete "
                              "it, and a new key is made at the next start")
        if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"the API key file {path} is readable by other users: run `chmod 600 {path}`, "
                "or delete it for a new key"
            )
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the API key file {path}: {exc}; delete it for a new key"
                          ) from None
    if len(text) < MIN_KEY_CHARS or any(c.isspace() for c in text):
        raise ConfigError(f"the API key file {path} is empty or damaged: delete it, and a new key "
                          "is made at the next start")
    return text


def local_key(data_dir: Path) -> str | None:
    """The key a server of this user (same data folder) requires, if one was made; None when
    there is none or it cannot be read safely. For clients on this machine (`--attach`)."""
    try:
        return _read_key(key_file(data_dir))
    except (FileNotFoundError, ConfigError):
        return None


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a request carries: `Authorization: Bearer KEY`, else the `token` query value."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    token = query.get("token")
    return token or None
