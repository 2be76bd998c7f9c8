"""The live session's status as typed data: the session's, each link's, each symbol's.

Made in one place (`livecli.session.status`) and read by everything that shows or keeps it: the
store writer (the session row), `livecli status`, the JSON lines and the dashboard. It is plain
data with no I/O so that every layer may import it. Serialisation is one pair of methods,
`to_json_dict()` / `from_json_dict()`, driven by the fields themselves: a new field is added
here (with a default, so older rows and lines still read) and shown by whoever shows it, and
nothing in between changes. Instants are epoch seconds in the object and ISO 8601 (+05:30) in
JSON; `schema` says which version of this shape a JSON object has.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from livecli.core.timeutil import iso, parse_instant

# Bumped when a field changes meaning or is removed; adding a field keeps the version.
STATUS_SCHEMA = 1

# Field metadata: an epoch-seconds instant, written to JSON as ISO 8601 (+05:30).
INSTANT = {"instant": True}


@dataclass(frozen=True, slots=True)
class SymbolStatus:
    """One subscribed instrument: its latest price and how fresh it is."""

    symbol: str
    exchange: str = ""
    instrument_token: int = 0
    last_price: float | None = None
    last_tick_at: float | None = field(default=None, metadata=INSTANT)  # received, epoch s
    last_tick_age_s: float | None = None  # when the status was made
    ticks: int = 0


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """One WebSocket connection of the feed (Kite allows 3, of 3000 instruments each)."""

    index: int
    state: str = "idle"
    instruments: int = 0
    reconnects: int = 0
    retry_in_s: float | None = None
    last_message_age_s: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class PublishStatus:
    """The NATS publisher of a session (`--publish`): its connection, what it sent and shed.

    `lag_s`: how long the oldest message still waiting to be sent has waited; `acks_pending`:
    closed candles sent whose JetStream ack has not come yet (they are re-sent, same message
    id, until it does).
    """

    url: str
    stream: str = ""
    state: str = "connecting"  # connecting, connected, reconnecting, closed, failed
    ticks_published: int = 0
    candles_published: int = 0  # closed candles JetStream acknowledged
    updates_published: int = 0  # forming-candle updates
    status_published: int = 0
    ticks_dropped: int = 0
    candles_dropped: int = 0  # only when the whole buffer is full of waiting messages
    candles_duplicate: int = 0  # closed candles JetStream already had (a restarted publisher)
    pending: int = 0
    acks_pending: int = 0
    lag_s: float = 0.0
    reconnects: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """A live session at one moment. Counters are totals since `started_at`.

    late/bad/future ticks are the engine's verdicts (CANDLES.md rules 7 and 9; `future_ticks`
    are stamped too far ahead of the clock and never move it); `tick_lines_dropped` counts tick
    lines an output (JSON lines) shed under pressure: candles and status are never shed.
    """

    source: str | None = None
    state: str = "idle"
    mode: str = "full"
    intervals: tuple[str, ...] = ()
    pid: int = 0
    started_at: float | None = field(default=None, metadata=INSTANT)
    uptime_s: float = 0.0
    reconnects: int = 0
    retry_in_s: float | None = None
    last_error: str | None = None
    last_message_age_s: float | None = None
    ticks_per_s: float = 0.0
    ticks: int = 0
    frames: int = 0
    malformed_frames: int = 0
    handler_errors: int = 0
    candles_stored: int = 0
    store_error: str | None = None
    late_ticks: int = 0
    bad_ticks: int = 0
    future_ticks: int = 0
    callback_errors: int = 0
    tick_lines_dropped: int = 0
    feed_clock: float | None = field(default=None, metadata=INSTANT)
    db: str | None = None
    # Kite's history (warm start, gap repair; session/warmup.py). history_state: off (not asked
    # or not possible), fetching (the warm start), repairing (minutes a disconnect cost), done,
    # failed; history_done of history_total instruments warmed; minutes put in from history.
    history_state: str = "off"
    history_done: int = 0
    history_total: int = 0
    history_minutes: int = 0
    history_repaired: int = 0
    history_requests: int = 0
    history_error: str | None = None
    links: tuple[LinkStatus, ...] = ()
    symbols: tuple[SymbolStatus, ...] = ()
    schema: int = STATUS_SCHEMA
    publish: PublishStatus | None = None  # set while the session publishes to NATS

    def symbol(self, name: str) -> SymbolStatus | None:
        for s in self.symbols:
            if s.symbol == name:
                return s
        return None

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form (JSON lines, the store's session row): symbols keyed by trading symbol."""
        out = _to_json(self, skip=("links", "symbols", "publish"))
        out["links"] = [_to_json(lk) for lk in self.links]
        out["publish"] = None if self.publish is None else _to_json(self.publish)
        isos: dict[float, str] = {}
        enc = _encoder(SymbolStatus, ("symbol",))
        out["symbols"] = {s.symbol: enc(s, isos) for s in self.symbols}
        return out

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> LiveStatus:
        """Read `to_json_dict()` back, tolerantly: missing or unreadable values take defaults,
        unknown keys (a newer livecli's fields) are ignored."""
        kw = _from_json(cls, data, skip=("links", "symbols", "publish"))
        pub = data.get("publish")
        if isinstance(pub, dict) and isinstance(pub.get("url"), str):
            kw["publish"] = PublishStatus(**_from_json(PublishStatus, pub))
        links = data.get("links")
        if isinstance(links, list):
            kw["links"] = tuple(
                LinkStatus(**_from_json(LinkStatus, lk)) for lk in links
                if isinstance(lk, dict) and isinstance(lk.get("index"), int)
            )
        symbols = data.get("symbols")
        if isinstance(symbols, dict):
            kw["symbols"] = tuple(
                SymbolStatus(str(name), **_from_json(SymbolStatus, info, skip=("symbol",)))
                for name, info in sorted(symbols.items()) if isinstance(info, dict)
            )
        return cls(**kw)


# --- the generic part: each field's value to and from JSON, decided by its declared type ---------
Encoder = Callable[[Any, dict[float, str]], dict[str, Any]]
_ENCODERS: dict[tuple[type, tuple[str, ...]], Encoder] = {}


def _encoder(cls: type, skip: tuple[str, ...] = ()) -> Encoder:
    """A function turning one `cls` into its JSON dict, written from the fields once per class
    (as dataclasses write __init__): as fast as a dict literal, and it follows new fields."""
    key = (cls, skip)
    enc = _ENCODERS.get(key)
    if enc is None:
        parts = []
        for f in fields(cls):
            if f.name in skip:
                continue
            value = f"o.{f.name}"
            if f.metadata.get("instant"):
                value = f"_iso({value}, isos)"
            elif str(f.type).startswith("tuple"):
                value = f"list({value})"
            parts.append(f"{f.name!r}: {value}")
        namespace: dict[str, Any] = {}
        exec(f"def enc(o, isos):\n    return {{{', '.join(parts)}}}",
             {"_iso": _iso_text}, namespace)
        enc = _ENCODERS[key] = namespace["enc"]
    return enc


def fast_constructor(cls: type) -> Callable[..., Any]:
    """A positional constructor for frozen slotted `cls` that sets the slots directly.

    A frozen dataclass's __init__ goes through object.__setattr__ field by field; the status
    makes 9000 symbols a second, and this halves what that costs. Same object, same equality.
    """
    names = [f.name for f in fields(cls)]
    env: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    body = ["    o = _new(_cls)"]
    for i, name in enumerate(names):
        env[f"_set{i}"] = cls.__dict__[name].__set__
        body.append(f"    _set{i}(o, {name})")
    namespace: dict[str, Any] = {}
    exec(f"def make({', '.join(names)}):\n" + "\n".join(body) + "\n    return o", env,
         namespace)
    return namespace["make"]


def _iso_text(t: float | None, isos: dict[float, str]) -> str | None:
    """ISO 8601 of an instant; one frame's ticks share a receive time, so each is made once."""
    if t is None:
        return None
    text = isos.get(t)
    if text is None:
        text = isos[t] = iso(t)
    return text


def _to_json(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return _encoder(type(obj), skip)(obj, {})


def _from_json(cls: type, data: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in skip or f.name not in data:
            continue
        default = f.default if f.default is not MISSING else None
        value = _coerce(str(f.type), data[f.name], bool(f.metadata.get("instant")))
        if value is _BAD:
            if f.default is MISSING:
                continue  # a required field left out: the constructor reports it
            value = default
        kw[f.name] = value
    return kw


_BAD = object()


def _coerce(kind: str, value: Any, instant: bool) -> Any:
    """`value` as the field's type (`kind` is its annotation text), or _BAD."""
    optional = kind.endswith("| None")
    if value is None:
        return None if optional else _BAD
    base = kind.removesuffix("| None").strip()
    if instant:
        return _instant(value)
    if base == "int":
        return int(value) if _number(value) else _BAD
    if base == "float":
        return float(value) if _number(value) else _BAD
    if base == "str":
        return str(value)
    if base.startswith("tuple[str"):
        return tuple(str(v) for v in value) if isinstance(value, list | tuple) else _BAD
    return _BAD


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _instant(value: Any) -> float | None:
    """Epoch seconds from a number or ISO 8601 text (older stores wrote either)."""
    if _number(value):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return parse_instant(value)
        except ValueError:
            return None
    return None
