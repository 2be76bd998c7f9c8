"""The settings livecli understands: their names, types, defaults, limits and one-line docs.

Everything that reads a setting from a file, the environment or a flag goes through `coerce`, so
a value is checked the same way wherever it comes from, and an error can say which key is wrong,
what it should look like, and give an example. `livecli config` and config.example.toml list the
same fields in the same order as the dataclasses below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from livecli.kite.protocol import MODES

DEFAULT_WS_URL = "wss://ws.kite.trade"
DEFAULT_API_URL = "https://api.kite.trade"
DEFAULT_LOGIN_URL = "https://kite.zerodha.com/connect/login"

EXCHANGES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX", "MCXSX")
SECRET_KEYS = frozenset({"kite.api_secret", "kite.access_token"})


def _f(default: Any, kind: str, doc: str, **extra: Any) -> Any:
    return field(default=default, metadata={"kind": kind, "doc": doc, **extra})


def _m(kind: str, doc: str) -> dict[str, Any]:
    return {"kind": kind, "doc": doc}


@dataclass
class KiteSettings:
    """[kite]: credentials and endpoints."""

    api_key: str | None = _f(None, "opt_str", "your Kite Connect app's api_key (env KITE_API_KEY)")
    api_secret: str | None = _f(
        None, "secret", "the app's api_secret, needed by `livecli login` (env KITE_API_SECRET)"
    )
    access_token: str | None = _f(
        None, "secret", "today's access token; `livecli login` stores one (env KITE_ACCESS_TOKEN)"
    )
    ws_url: str = _f(DEFAULT_WS_URL, "url", "Kite's WebSocket ticker", schemes=("ws", "wss"))
    api_url: str = _f(DEFAULT_API_URL, "url", "Kite's REST API root", schemes=("http", "https"))
    login_url: str = _f(
        DEFAULT_LOGIN_URL, "url", "Kite's login page for `livecli login`", schemes=("http", "https")
    )


@dataclass
class StreamSettings:
    """[stream]: how `livecli stream` subscribes and builds candles."""

    mode: str = _f("full", "choice", "tick mode: ltp, quote or full", choices=MODES)
    intervals: list[str] = field(
        default_factory=lambda: ["1min"],
        metadata=_m("intervals", 'candle intervals, e.g. ["1min", "5min"]'),
    )
    exchange: str = _f("NSE", "exchange", "exchange for symbols written without one")
    watchdog_s: float = _f(
        5.0, "float", "reconnect after this long without any message (heartbeats count)", min_excl=0.0
    )
    reconnect_max_delay_s: float = _f(
        60.0, "float", "longest wait between reconnect attempts (Kite needs >= 5)", min_incl=5.0
    )
    grace_s: float = _f(2.0, "float", "wait this long after a candle ends for late ticks", min_incl=0.0)
    fill_gaps: bool = _f(False, "bool", "after a reconnect, fetch missed candles from the historical API")
    history: int = _f(500, "int", "candles kept in memory per instrument and interval", min_incl=1)
    refresh_per_s: float = _f(4.0, "float", "dashboard redraws per second", min_excl=0.0)


@dataclass
class StoreSettings:
    """[store]: where candles (and optionally ticks) are kept."""

    path: Path = field(
        default=Path("livecli.db"),
        metadata=_m("path", "SQLite candle store (default: livecli.db in the user data folder)"),
    )
    record_ticks: bool = _f(False, "bool", "also keep every tick in a tick file next to the store")


@dataclass
class ServeSettings:
    """[serve]: the Live Data API of `livecli serve`."""

    host: str | None = _f("127.0.0.1", "opt_str", "address to bind; any but loopback needs the API key")
    port: int = _f(8000, "int", "TCP port to listen on (0: any free port)", min_incl=0, max_incl=65535)
    cors_origins: list[str] = field(
        default_factory=list,
        metadata=_m("str_list", 'browser origins allowed to call the API, e.g. ["http://localhost:3000"]'),
    )
    client_queue: int = _f(
        256, "int", "messages queued per WebSocket client before it is dropped as too slow",
        min_incl=1, max_incl=1_000_000,
    )


SECTIONS: dict[str, type] = {"kite": KiteSettings, "stream": StreamSettings, "store": StoreSettings,
                             "serve": ServeSettings}
SESSIONS_SECTION = "sessions"
ALL_SECTIONS = (*SECTIONS, SESSIONS_SECTION)


@dataclass(frozen=True)
class FieldSpec:
    key: str  # "section.name"
    section: str
    name: str
    kind: str
    doc: str
    default: Any
    meta: dict[str, Any]


def field_specs() -> dict[str, FieldSpec]:
    """Every scalar setting, keyed "section.name", in declaration order."""
    out: dict[str, FieldSpec] = {}
    for section, cls in SECTIONS.items():
        instance = cls()
        for f in fields(cls):
            key = f"{section}.{f.name}"
            out[key] = FieldSpec(
                key, section, f.name, f.metadata["kind"], f.metadata["doc"],
                getattr(instance, f.name), dict(f.metadata),
            )
    return out


class BadValue(ValueError):
    """A value of the wrong type or out of range; the message says what is expected."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SESSION_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def coerce(spec: FieldSpec, value: Any, *, from_text: bool) -> Any:
    """Check and convert one value for `spec`; `from_text` is True for env vars and strings.

    Raises BadValue with what the setting expects.
    """
    kind, meta = spec.kind, spec.meta
    if kind in ("opt_str", "secret"):
        if not isinstance(value, str):
            raise BadValue("must be a string")
        return value.strip() or None
    if kind == "url":
        if not isinstance(value, str):
            raise BadValue("must be a URL string")
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in meta["schemes"]:
            want = " or ".join(f"{s}://" for s in meta["schemes"])
            raise BadValue(f"must be a URL starting with {want}")
        return value.strip()
    if kind == "choice":
        if not isinstance(value, str) or value.strip().lower() not in meta["choices"]:
            raise BadValue(f"must be one of {', '.join(meta['choices'])}")
        return value.strip().lower()
    if kind == "exchange":
        if not isinstance(value, str) or value.strip().upper() not in EXCHANGES:
            raise BadValue(f"must be one of {', '.join(EXCHANGES)}")
        return value.strip().upper()
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise BadValue("must be true or false")
    if kind in ("int", "float"):
        return _number(kind, value, meta, from_text)
    if kind == "intervals":
        return _intervals(value)
    if kind == "str_list":
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise BadValue('must be a list of strings such as ["http://localhost:3000"]')
        return [i.strip() for i in items if i.strip()]
    if kind == "path":
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise BadValue("must be a file path string")
        return Path(str(value).strip()).expanduser()
    raise AssertionError(f"unknown kind {kind}")  # a schema bug, not user input


def _number(kind: str, value: Any, meta: dict[str, Any], from_text: bool) -> int | float:
    what = "a whole number" if kind == "int" else "a number"
    if isinstance(value, bool):
        raise BadValue(f"must be {what}")
    if from_text and isinstance(value, str):
        try:
            value = int(value.strip()) if kind == "int" else float(value.strip())
        except ValueError:
            raise BadValue(f"must be {what}") from None
    if kind == "int" and not isinstance(value, int):
        raise BadValue(f"must be {what}")
    if kind == "float" and not isinstance(value, (int, float)):
        raise BadValue(f"must be {what}")
    num: int | float = value if kind == "int" else float(value)
    if "min_excl" in meta and not num > meta["min_excl"]:
        raise BadValue(f"must be greater than {meta['min_excl']:g}")
    if "min_incl" in meta and not num >= meta["min_incl"]:
        raise BadValue(f"must be at least {meta['min_incl']:g}")
    if "max_incl" in meta and not num <= meta["max_incl"]:
        raise BadValue(f"must be at most {meta['max_incl']:g}")
    return num


def _intervals(value: Any) -> list[str]:
    from livecli.core.intervals import parse_interval
    from livecli.errors import IntervalError

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise BadValue('must be a list of interval names such as ["1min", "5min"]')
    out: list[str] = []
    for item in items:
        try:
            name = parse_interval(item.strip()).name
        except IntervalError as exc:
            raise BadValue(str(exc)) from None
        if name not in out:
            out.append(name)
    return out


def parse_session(text: Any) -> tuple[int, int]:
    """A "HH:MM-HH:MM" session override as (open, close) minutes after IST midnight."""
    m = _SESSION_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise BadValue('must be "HH:MM-HH:MM" in IST, e.g. "09:00-23:30"')
    oh, om, ch, cm = (int(g) for g in m.groups())
    if oh > 23 or ch > 24 or om > 59 or cm > 59 or (ch == 24 and cm):
        raise BadValue('has an impossible time; use "HH:MM-HH:MM" in IST, e.g. "09:00-23:30"')
    open_m, close_m = oh * 60 + om, ch * 60 + cm
    if close_m <= open_m:
        raise BadValue("must close after it opens, within one IST day")
    return open_m, close_m


def mask(secret: str | None) -> str:
    """A secret as it may be shown: never whole. `abcd…yz` when long enough, else `****`."""
    if not secret:
        return "(not set)"
    if len(secret) >= 12:
        return f"{secret[:4]}…{secret[-2:]}"
    return "****"
