"""The settings livecli understands: their names, types, defaults, limits and one-line docs.

Everything that reads a setting from a file, the environment or a flag goes through `coerce`, so
a value is checked the same way wherever it comes from, and an error can say which key is wrong,
what it should look like, and give an example. `livecli config` and config.example.toml list the
same fields in the same order as the dataclasses below.
"""

from __future__ import annotations

import math
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
# URLs that may carry a password (nats://user:pass@host): shown with it masked (`shown_url`).
URL_KEYS = frozenset({"publish.url"})
# The candle engine's paths (stream.engine): below KERNEL_MIN_INSTRUMENTS the numpy path keeps up
# with any feed Kite sends, and numba's memory and load time would buy nothing.
ENGINES = ("auto", "compiled", "numpy")
KERNEL_MIN_INSTRUMENTS = 500


def _f(default: Any, kind: str, doc: str, **extra: Any) -> Any:
    return field(default=default, metadata={"kind": kind, "doc": doc, **extra})


def _m(kind: str, doc: str) -> dict[str, Any]:
    return {"kind": kind, "doc": doc}


@dataclass
class KiteSettings:
    """[kite]: credentials and endpoints."""

    api_key: str | None = _f(
        None, "opt_str",
        "Your Kite Connect app's api_key (https://developers.kite.trade). Any Kite credential "
        "(api_key, api_secret or an access token) means Kite: `stream` then never falls back to "
        "the simulated market, and without a valid access token it asks you to run `livecli "
        "login`. Env: KITE_API_KEY",
    )
    api_secret: str | None = _f(
        None, "secret", "The app's api_secret; only `livecli login` needs it. Env: KITE_API_SECRET"
    )
    access_token: str | None = _f(
        None, "secret",
        "An access token, if you get one some other way than `livecli login` (which stores "
        "one). Tokens die at 06:00 IST. Env: KITE_ACCESS_TOKEN",
    )
    ws_url: str = _f(
        DEFAULT_WS_URL, "url", "Kite's WebSocket ticker (ws:// or wss://). Env: LIVECLI_KITE_WS_URL",
        schemes=("ws", "wss"),
    )
    api_url: str = _f(
        DEFAULT_API_URL, "url",
        "Kite's REST API root (http:// or https://); `livecli sim` prints a local one. "
        "Env: LIVECLI_KITE_API_URL",
        schemes=("http", "https"),
    )
    login_url: str = _f(
        DEFAULT_LOGIN_URL, "url", "Kite's login page, shown by `livecli login` (http:// or https://).",
        schemes=("http", "https"),
    )


# Bounds of the numeric settings: beyond them a value is a typo or a unit mistake (milliseconds
# for seconds), never a wish, and some would overflow a timer. Each doc below says its bounds.
@dataclass
class StreamSettings:
    """[stream]: how `livecli stream` subscribes and builds candles."""

    mode: str = _f(
        "full", "choice",
        'Tick mode to subscribe in: "ltp", "quote" or "full" (only full carries exchange '
        "timestamps). Flag: --mode",
        choices=MODES, flag="--mode",
    )
    intervals: list[str] = field(
        default_factory=lambda: ["1min"],
        metadata={
            **_m("intervals",
                 "Candle intervals to build (1-minute candles are always built): any whole number "
                 'of minutes, e.g. ["1min", "5min"] ("45min", "1h" and "15minute" work too). '
                 "Flag: --interval"),
            "flag": "--interval",
        },
    )
    exchange: str = _f(
        "NSE", "exchange",
        "Exchange for symbols written without one (RELIANCE means NSE:RELIANCE): "
        f"{', '.join(EXCHANGES[:-1])} or {EXCHANGES[-1]}. Flag: --exchange",
        flag="--exchange",
    )
    watchdog_s: float = _f(
        5.0, "float",
        "Reconnect after this many seconds without any message from Kite (heartbeats count); "
        "more than 0, at most 300.",
        min_excl=0.0, max_incl=300.0,
    )
    reconnect_max_delay_s: float = _f(
        60.0, "float",
        "Longest wait between reconnect attempts, in seconds; at least 5 (Kite asks for that "
        "much), at most 3600.",
        min_incl=5.0, max_incl=3600.0,
    )
    grace_s: float = _f(
        2.0, "float",
        "Seconds to wait after a candle's end for late ticks before closing it; 0 to 60.",
        min_incl=0.0, max_incl=60.0,
    )
    fill_gaps: bool = _f(
        False, "bool",
        "Add a flat synthetic candle (open, high, low and close at the previous close, volume "
        "0, marked synthetic) for each interval without trades between two real candles of the "
        "same day. Never across a disconnect or a silent link: those minutes are Kite's to give "
        "(fetch_history repairs them from Kite's history, and a repaired minute replaces any "
        "synthetic one), so a synthetic candle only ever stands for a minute nobody traded. "
        "fill_gaps itself fetches nothing.",
    )
    fetch_history: bool = _f(
        True, "bool",
        "At start, fetch from Kite's historical API the minutes before the session (today's "
        "from the open, and earlier days enough to fill `history` candles of the longest "
        "interval), in the background while the stream runs; after a reconnect or a silent "
        "link, fetch the minutes it cost (gap repair). Within Kite's 3 requests a second. "
        "Flag: --no-history",
        flag="--no-history",
    )
    history: int = _f(
        500, "int",
        "Closed candles kept in memory per instrument and interval (the dashboard's and "
        "LiveSession's history); 1 to 100000.",
        min_incl=1, max_incl=100_000,
    )
    # The dashboard (dashboard/live.py, MAX_REFRESH_PER_S) draws at most 10 frames a second,
    # so a larger value would be capped there in silence: it is refused here instead.
    refresh_per_s: float = _f(
        4.0, "float", "Dashboard redraws per second; more than 0, at most 10.",
        min_excl=0.0, max_incl=10.0,
    )
    engine: str = _f(
        "auto", "choice",
        'How the candle engine runs; every choice gives the same candles. "auto": the compiled '
        "kernel (numba, loaded on a thread; about 110 MB and half a second of a core) once a "
        f"session holds {KERNEL_MIN_INSTRUMENTS} instruments or more, the numpy path below that; "
        '"compiled": always the kernel; "numpy": never. Env: LIVECLI_STREAM_ENGINE',
        choices=ENGINES,
    )


@dataclass
class StoreSettings:
    """[store]: where candles (and optionally ticks) are kept."""

    path: Path = field(
        default=Path("livecli.db"),
        metadata={
            **_m("path",
                 "SQLite candle store. Default: livecli.db in the user data folder "
                 "(LIVECLI_DATA_DIR), and livecli-sim.db beside it for the simulated market, so "
                 "simulated candles never mix with Kite's; a path set here (or --db) is used for "
                 "both. Flag: --db"),
            "flag": "--db",
        },
    )
    record_ticks: bool = _f(
        False, "bool",
        "Also record every raw tick in the store, as `stream --record` does; `livecli ticks "
        "--export` writes them out as a tick file that rebuilds the same candles.",
    )


@dataclass
class ServeSettings:
    """[serve]: the Live Data API of `livecli serve`."""

    host: str | None = _f(
        "127.0.0.1", "opt_str",
        "Address `livecli serve` binds. Loopback (127.0.0.1, ::1) needs no key; any other address "
        "requires the API key, made on first use and kept (0600) as serve-api-key in the user "
        "data folder.",
    )
    port: int = _f(
        8000, "int", "TCP port of the Live Data API (0: any free port, printed at start). 0-65535",
        min_incl=0, max_incl=65535,
    )
    cors_origins: list[str] = field(
        default_factory=list,
        metadata=_m("str_list", "Browser origins allowed to call the API (CORS), e.g. "
                                '["http://localhost:3000"]. None by default.'),
    )
    client_queue: int = _f(
        256, "int",
        "Messages queued per WebSocket client before the client is dropped as too slow (close "
        "code 1008). >= 1",
        min_incl=1, max_incl=1_000_000,
    )


@dataclass
class PublishSettings:
    """[publish]: the feed on NATS JetStream for other machines (`--publish`)."""

    url: str | None = _f(
        None, "opt_str",
        "NATS server to publish ticks, candles and status to, e.g. nats://feed-host:4222 (tls:// "
        "for TLS); unset: no publishing. Flag: --publish",
        flag="--publish",
    )
    credentials: str | None = _f(
        None, "opt_str",
        "A NATS credentials file (.creds: JWT and NKey seed) for servers that require one; keep "
        "passwords out of the URL.",
    )
    stream: str = _f(
        "LIVECLI", "opt_str",
        "JetStream stream that captures livecli.> (made if absent, with the limits below; an "
        "existing stream keeps its own). Letters, digits, _ and -.",
    )
    max_age_s: float = _f(
        86400.0, "float",
        "The stream drops messages older than this many seconds; 0 for no age limit, at most "
        "31536000 (a year).",
        min_incl=0.0, max_incl=31_536_000.0,
    )
    max_bytes: int = _f(
        4_294_967_296, "int",
        "The stream drops its oldest messages beyond this many bytes; 0 for no size limit "
        "(ticks of 9000 instruments fill about 5 MB a second).",
        min_incl=0, max_incl=2**62,
    )
    duplicate_window_s: float = _f(
        120.0, "float",
        "How long JetStream remembers closed candles' message ids: a publisher restarted within "
        "it never stores a closed candle twice. 1 to 86400.",
        min_incl=1.0, max_incl=86_400.0,
    )
    buffer: int = _f(
        100_000, "int",
        "Messages that may wait for the NATS connection; ticks are shed (and counted) beyond "
        "three quarters of it, closed candles only when it is full. 1000 to 10000000.",
        min_incl=1000, max_incl=10_000_000,
    )
    forming_updates: bool = _f(
        True, "bool",
        'Also publish the forming candles that changed since their last update ("closed": '
        "false): 1-minute ones about once a second, longer ones every five seconds.",
    )


SECTIONS: dict[str, type] = {"kite": KiteSettings, "stream": StreamSettings, "store": StoreSettings,
                             "serve": ServeSettings, "publish": PublishSettings}
SESSIONS_SECTION = "sessions"
WATCHLISTS_SECTION = "watchlists"  # name = ["SYMBOL", "EXCH:SYMBOL", ...]; `@name` expands
ALL_SECTIONS = (*SECTIONS, SESSIONS_SECTION, WATCHLISTS_SECTION)
MAX_WATCHLIST = 3000  # Kite's instruments per connection: a longer list could not be streamed


def parse_watchlist(name: str, raw: Any) -> list[str]:
    """A [watchlists] entry's symbols, or raises BadValue saying what it must look like."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise BadValue("name may hold only letters, digits, - and _")
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise BadValue("must be a list of symbols")
    if not raw or len(raw) > MAX_WATCHLIST:
        raise BadValue(f"must hold 1 to {MAX_WATCHLIST} symbols")
    if any(s.strip().startswith("@") for s in raw):
        raise BadValue("cannot name another watchlist (@...): list its symbols")
    return [s.strip() for s in raw]


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


def _bounds(meta: dict[str, Any]) -> str:
    """The accepted range in words: `greater than 0 and at most 300`, `at least 1`."""
    parts = []
    if "min_excl" in meta:
        parts.append(f"greater than {meta['min_excl']:g}")
    if "min_incl" in meta:
        parts.append(f"at least {meta['min_incl']:g}")
    if "max_incl" in meta:
        parts.append(f"at most {meta['max_incl']:g}")
    return " and ".join(parts)


def _number(kind: str, value: Any, meta: dict[str, Any], from_text: bool) -> int | float:
    what = "a whole number" if kind == "int" else "a number"
    bounds = _bounds(meta)
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
    if not math.isfinite(num):  # inf and nan: never a duration, a count or a rate
        raise BadValue(f"must be a finite number{', ' + bounds if bounds else ''}")
    if (
        ("min_excl" in meta and not num > meta["min_excl"])
        or ("min_incl" in meta and not num >= meta["min_incl"])
        or ("max_incl" in meta and not num <= meta["max_incl"])
    ):
        raise BadValue(f"must be {bounds}")
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


def shown_url(url: str) -> str:
    """A URL as it may be printed: a user, password or token in it never shown."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        secret = parts.password or parts.username
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: show nothing of what precedes the host
        return url.rpartition("@")[2] if "@" in url else url
    if secret:
        return f"{parts.scheme}://***@{parts.hostname or ''}{port}{parts.path}"
    return url


def shown_value(key: str, value: str | None) -> str | None:
    """A setting's text as it may be printed: secrets masked, passwords in URLs hidden."""
    if key in SECRET_KEYS:
        return mask(value) if value else None
    if key in URL_KEYS and value:
        return shown_url(value)
    return value
