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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, overload

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


SYMBOL_FIELDS = tuple(f.name for f in fields(SymbolStatus))
_SYMBOL_INSTANTS = frozenset(f.name for f in fields(SymbolStatus) if f.metadata.get("instant"))


class SymbolTable(Sequence[SymbolStatus]):
    """Every subscribed instrument's `SymbolStatus`, held as one column per field.

    The status is made every second, and with Kite's full 9000 instruments 9000 objects a
    second were most of its cost. The columns are what the session gathers anyway (one vectorised
    read of the receiving path's arrays) and what the store keeps (`to_columns_json`); a
    `SymbolStatus` is made only when someone indexes or iterates. It reads as a sequence of them
    and equals any sequence of equal ones.
    """

    __slots__ = ("_columns", "_n")

    def __init__(self, columns: Sequence[Sequence[Any]]) -> None:
        """`columns`: one sequence per field of SymbolStatus, in declaration order, of equal length."""
        if len(columns) != len(SYMBOL_FIELDS) or len({len(c) for c in columns}) > 1:
            raise ValueError(f"a SymbolTable needs {len(SYMBOL_FIELDS)} columns of equal length")
        self._columns = tuple(columns)
        self._n = len(columns[0])

    @classmethod
    def build(cls, **columns: Sequence[Any]) -> SymbolTable:
        """From columns by field name; a field not given takes its default on every row."""
        unknown = set(columns) - set(SYMBOL_FIELDS)
        if unknown or not columns:
            raise ValueError(f"SymbolTable.build: unknown or no columns {sorted(unknown)}")
        n = len(next(iter(columns.values())))
        return cls([columns[f.name] if f.name in columns else [f.default] * n
                    for f in fields(SymbolStatus)])

    @classmethod
    def of(cls, items: Iterable[SymbolStatus]) -> SymbolTable:
        rows = list(items)
        return cls([[getattr(r, name) for r in rows] for name in SYMBOL_FIELDS])

    def column(self, name: str) -> Sequence[Any]:
        return self._columns[SYMBOL_FIELDS.index(name)]

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> SymbolStatus: ...
    @overload
    def __getitem__(self, i: slice) -> SymbolTable: ...
    def __getitem__(self, i: int | slice) -> SymbolStatus | SymbolTable:
        if isinstance(i, slice):
            return SymbolTable([c[i] for c in self._columns])
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("SymbolTable index out of range")
        return _make_symbol(*(c[i] for c in self._columns))

    def __iter__(self) -> Iterator[SymbolStatus]:
        return map(_make_symbol, *self._columns)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"SymbolTable({list(self)!r})"

    def to_json_dict(self, isos: dict[float, str]) -> dict[str, dict[str, Any]]:
        """The JSON lines form: {symbol: {field: value}}, instants as ISO 8601."""
        return _table_encoder()(self._columns, isos)

    def to_columns_json(self) -> dict[str, list[Any]]:
        """The store's form: {field: [value per symbol]}, instants as whole microseconds since
        the epoch (a ninth of the text and of the encoding time of the ISO form)."""
        out: dict[str, list[Any]] = {}
        for name, col in zip(SYMBOL_FIELDS, self._columns, strict=True):
            if name in _SYMBOL_INSTANTS:
                out[name] = [None if t is None else round(t * 1e6) for t in col]
            else:
                out[name] = list(col)
        return out

    @classmethod
    def from_columns_json(cls, data: dict[str, Any]) -> SymbolTable:
        """Read `to_columns_json()` back, tolerantly: a missing column takes the field's default,
        a value of the wrong type too; rows without a symbol name are left out."""
        names = data.get("symbol")
        n = len(names) if isinstance(names, list) else 0
        keep = [i for i in range(n) if isinstance(names[i], str)]  # type: ignore[index]
        columns: list[list[Any]] = []
        for f in fields(SymbolStatus):
            col = data.get(f.name)
            if not isinstance(col, list) or len(col) != n:
                col = [None] * n
            default = None if f.default is MISSING else f.default
            kind = str(f.type)
            if f.name in _SYMBOL_INSTANTS:
                values = [v / 1e6 if _number(v) else None for v in (col[i] for i in keep)]
            else:
                values = []
                for i in keep:
                    v = _coerce(kind, col[i], False)
                    values.append(default if v is _BAD else v)
            columns.append(values)
        return cls(columns)


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
    # A SymbolTable as the session makes it; any sequence of SymbolStatus reads the same.
    symbols: Sequence[SymbolStatus] = ()
    schema: int = STATUS_SCHEMA
    publish: PublishStatus | None = None  # set while the session publishes to NATS

    def symbol(self, name: str) -> SymbolStatus | None:
        if isinstance(self.symbols, SymbolTable):
            names = self.symbols.column("symbol")
            try:
                return self.symbols[list(names).index(name)]
            except ValueError:
                return None
        for s in self.symbols:
            if s.symbol == name:
                return s
        return None

    def to_json_dict(self, *, symbol_columns: bool = False) -> dict[str, Any]:
        """The JSON form (JSON lines): symbols keyed by trading symbol. With `symbol_columns`,
        symbols are the store's form instead, one list per field (`SymbolTable.to_columns_json`):
        `from_json_dict` reads either."""
        out = _to_json(self, skip=("links", "symbols", "publish"))
        out["links"] = [_to_json(lk) for lk in self.links]
        out["publish"] = None if self.publish is None else _to_json(self.publish)
        table = self.symbols if isinstance(self.symbols, SymbolTable) else SymbolTable.of(
            self.symbols)
        out["symbols"] = table.to_columns_json() if symbol_columns else table.to_json_dict({})
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
        if isinstance(symbols, dict) and isinstance(symbols.get("symbol"), list):
            kw["symbols"] = SymbolTable.from_columns_json(symbols)  # the store's form
        elif isinstance(symbols, dict):
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


def _table_encoder() -> Callable[[tuple[Sequence[Any], ...], dict[float, str]],
                                 dict[str, dict[str, Any]]]:
    """SymbolTable columns to {symbol: {field: value}}, written from SymbolStatus's fields once
    (as `_encoder` is): one dict literal per row, straight from the columns."""
    global _TABLE_ENCODER
    if _TABLE_ENCODER is None:
        names = list(SYMBOL_FIELDS)
        parts = []
        for name in names[1:]:
            value = f"_iso(c_{name}, isos)" if name in _SYMBOL_INSTANTS else f"c_{name}"
            parts.append(f"{name!r}: {value}")
        args = ", ".join(f"c_{n}" for n in names)
        src = (f"def enc(cols, isos):\n"
               f"    return {{c_symbol: {{{', '.join(parts)}}}\n"
               f"            for {args} in zip(*cols)}}")
        namespace: dict[str, Any] = {}
        exec(src, {"_iso": _iso_text}, namespace)
        _TABLE_ENCODER = namespace["enc"]
    return _TABLE_ENCODER


_TABLE_ENCODER: Callable[..., dict[str, dict[str, Any]]] | None = None


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


# SymbolStatus(...) with every field given in order, twice as fast as its __init__: a
# SymbolTable makes one per row it is asked for.
_make_symbol = fast_constructor(SymbolStatus)
