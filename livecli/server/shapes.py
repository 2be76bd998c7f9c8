"""The Live Data API's JSON: ticks, candles and status as the JSON lines write them, and errors.

One shape per thing across livecli: a tick or candle from the API is the object
`livecli stream --jsonl` writes (docs/jsonl.md: same field names, times ISO 8601 with +05:30,
`"schema": 1`), so a script can read either. REST answers wrap them in a small envelope
(`{"schema": 1, "symbol": ..., "tick": {...}}`); WebSocket messages carry a batch:
`{"type": "ticks", "schema": 1, "data": [tick, ...]}` or `{"type": "candles", ...}` (forming
updates have `"closed": false`, closes `true`), plus `status`, `subscribed` and `error` messages.

Encoding is on the fan-out's hot path (every tick once, whatever the number of clients), so a
tick is encoded to text once here and the text is shared by every client that wants it.
No FastAPI or pydantic here: `RemoteSession` decodes with these functions too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from livecli.core.candles import Candle
from livecli.core.timeutil import iso, parse_instant

if TYPE_CHECKING:
    from livecli.core.ticks import Tick
    from livecli.server.tap import FrameColumns

# Bumped when a field changes meaning or is removed; adding a field keeps the version.
API_SCHEMA = 1
PREFIX = "/api/live"

# The WebSocket close codes a client may see, with the reason text beside them.
CLOSE_TOO_SLOW = 1008  # policy violation: the client did not read fast enough
CLOSE_SHUTDOWN = 1001  # going away: the server stops
CLOSE_UNKNOWN_SYMBOL = 4404
CLOSE_BAD_REQUEST = 4422
CLOSE_NOT_STREAMING = 4409

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj: Any) -> str:
    """Compact JSON text, as every message of the API is sent."""
    return _dumps(obj)


def _num(x: float | None) -> float | None:
    return None if x is None or x != x else x  # NaN means "not carried"


def encode_ticks(
    ticks: Iterable[Tick], names: Mapping[int, tuple[str, str | None]], received_at: float,
) -> list[tuple[int, str]]:
    """(token, JSON text) per tick, in the JSON lines' field order (docs/jsonl.md "tick")."""
    got = iso(received_at)
    stamps: dict[float, str] = {}  # a frame's ticks share a few exchange seconds: format once
    out = []
    for t in ticks:
        tok = t.instrument_token
        try:
            sym, ex = names[tok]
        except KeyError:  # a token the session no longer names (unsubscribed meanwhile)
            sym, ex = str(tok), None
        ets = t.exchange_timestamp
        if ets:
            text = stamps.get(ets)
            if text is None:
                text = stamps[ets] = iso(ets)
        else:
            text = None
        ch = t.change_pct
        out.append((tok, _dumps({
            "type": "tick", "schema": API_SCHEMA, "symbol": sym, "exchange": ex,
            "instrument_token": tok, "last_price": _num(t.last_price),
            "volume_traded": t.volume_traded, "exchange_timestamp": text, "received_at": got,
            "oi": t.oi, "day_high": _num(t.day_high), "day_low": _num(t.day_low),
            "change_pct": None if ch is None else round(ch, 4), "mode": t.mode,
        })))
    return out


class TickEncoder:
    """The hot path's tick encoder: a frame's columns straight to JSON text, no Tick objects
    and no json call per tick (four times faster than `encode_ticks`, with which it agrees to
    the byte: tests/test_serve_shapes.py). Per token the constant head of the object
    (type, schema, symbol, exchange, token) is built once; floats are written with repr, as
    json writes them; NaN and the codec's -1 sentinels become null.
    """

    def __init__(self, names: Mapping[int, tuple[str, str | None]]) -> None:
        self.names = names
        self._heads: dict[int, str] = {}

    def _head(self, tok: int) -> str:
        try:
            sym, ex = self.names[tok]
        except KeyError:
            return (f'{{"type":"tick","schema":{API_SCHEMA},"symbol":"{tok}","exchange":null,'
                    f'"instrument_token":{tok},"last_price":')  # not cached: a name may come
        head = self._heads[tok] = (
            f'{{"type":"tick","schema":{API_SCHEMA},"symbol":{_dumps(sym)},'
            f'"exchange":{_dumps(ex)},"instrument_token":{tok},"last_price":')
        return head

    def encode(self, cols: FrameColumns, received_at: float) -> list[tuple[int, str]]:
        """(token, JSON text) per packet of a frame, in order."""
        got = iso(received_at)
        heads, head_of = self._heads, self._head
        stamps: dict[int, str] = {}
        out = []
        for tok, px, vol, ets, oi, hi, lo, cl, mode in zip(
                cols.token, cols.price, cols.volume, cols.exchange_timestamp, cols.oi,
                cols.day_high, cols.day_low, cols.prev_close, cols.mode, strict=True):
            head = heads.get(tok) or head_of(tok)
            if ets > 0:
                es = stamps.get(ets)
                if es is None:
                    es = stamps[ets] = f'"{iso(ets)}"'
            else:
                es = "null"
            ch = "null" if not cl or cl != cl else repr(round((px - cl) * 100.0 / cl, 4))
            out.append((tok, f'{head}{px!r},"volume_traded":{vol if vol >= 0 else "null"},'
                             f'"exchange_timestamp":{es},"received_at":"{got}",'
                             f'"oi":{oi if oi >= 0 else "null"},'
                             f'"day_high":{"null" if hi != hi else repr(hi)},'
                             f'"day_low":{"null" if lo != lo else repr(lo)},'
                             f'"change_pct":{ch},"mode":"{mode}"}}'))
        return out


def candle_obj(candle: Mapping[str, Any]) -> dict[str, Any]:
    """A candle (`Candle.to_dict()`) as the JSON lines write it."""
    return {"type": "candle", "schema": API_SCHEMA, **candle}


def encode_candle(c: Candle) -> str:
    return _dumps(candle_obj(c.to_dict()))


def batch(kind: str, items: list[str]) -> str:
    """A WebSocket message carrying already-encoded objects: `{"type": kind, ..., "data": [...]}`."""
    return batch_of(kind, ",".join(items))


def batch_of(kind: str, body: str) -> str:
    """`batch` from the objects already comma-joined."""
    return f'{{"type":"{kind}","schema":{API_SCHEMA},"data":[{body}]}}'


def message(kind: str, **fields: Any) -> str:
    """A control message (`subscribed`, `error`, `status`)."""
    return _dumps({"type": kind, "schema": API_SCHEMA, **fields})


def error_body(status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Every error's JSON: `{"schema": 1, "error": {"status", "code", "message", ...}}`."""
    return {"schema": API_SCHEMA, "error": {"status": status, "code": code, "message": message,
                                            **extra}}


# --- decoding, for RemoteSession -----------------------------------------------------------------
def candle_from_obj(obj: Mapping[str, Any]) -> Candle:
    """The `Candle` a JSON candle object stands for (what LiveSession's callbacks get)."""
    interval = str(obj["interval"])
    return Candle(
        instrument_token=int(obj["instrument_token"]),
        interval_min=int(interval.removesuffix("min")),
        start=int(parse_instant(str(obj["start"]))),
        open=float(obj["open"]), high=float(obj["high"]), low=float(obj["low"]),
        close=float(obj["close"]), volume=int(obj["volume"]),
        oi=None if obj.get("oi") is None else int(obj["oi"]), ticks=int(obj["ticks"]),
        partial=bool(obj.get("partial")), synthetic=bool(obj.get("synthetic")),
        closed=bool(obj.get("closed")), symbol=str(obj.get("symbol") or ""),
        exchange=str(obj.get("exchange") or ""),
        origin=str(obj.get("origin") or "live"),
    )


def callback_tick(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A wire tick as `LiveSession.on_tick` callbacks get theirs: the same fields plus `time`
    (the exchange's time, or the receive time where the packet has none)."""
    out = {k: v for k, v in obj.items() if k not in ("type", "schema")}
    out["time"] = obj.get("exchange_timestamp") or obj.get("received_at")
    return out
