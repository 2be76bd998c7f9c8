"""The server's side of the API's JSON: the hot-path tick encoder, over the shared shapes.

The shapes themselves (tick, candle, batch and error objects, their schema version, the close
codes) are `livecli.core.wire`, shared with the attached session (livecli.session.remote) and
re-exported here so the server imports one module. What stays here reads decoded frames:
encoding is on the fan-out's hot path (every tick once, whatever the number of clients), so a
tick is encoded to text once and the text is shared by every client that wants it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from livecli.core.timeutil import iso
from livecli.core.wire import (  # noqa: F401  (re-exported: the server's one import)
    API_SCHEMA,
    CLOSE_BAD_REQUEST,
    CLOSE_NOT_STREAMING,
    CLOSE_SHUTDOWN,
    CLOSE_TOO_SLOW,
    CLOSE_UNKNOWN_SYMBOL,
    PREFIX,
    _dumps,
    batch,
    batch_of,
    callback_tick,
    candle_from_obj,
    candle_obj,
    dumps,
    encode_candle,
    error_body,
    message,
)

if TYPE_CHECKING:
    from livecli.core.ticks import Tick
    from livecli.server.tap import FrameColumns


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
        for tok, px, vol, ets, oi, hi, lo, cl, mode, chg in zip(
                cols.token, cols.price, cols.volume, cols.exchange_timestamp, cols.oi,
                cols.day_high, cols.day_low, cols.prev_close, cols.mode, cols.change_pct,
                strict=True):
            head = heads.get(tok) or head_of(tok)
            if ets > 0:
                es = stamps.get(ets)
                if es is None:
                    es = stamps[ets] = f'"{iso(ets)}"'
            else:
                es = "null"
            ch = "null" if not cl or cl != cl else repr(chg)
            out.append((tok, f'{head}{px!r},"volume_traded":{vol if vol >= 0 else "null"},'
                             f'"exchange_timestamp":{es},"received_at":"{got}",'
                             f'"oi":{oi if oi >= 0 else "null"},'
                             f'"day_high":{"null" if hi != hi else repr(hi)},'
                             f'"day_low":{"null" if lo != lo else repr(lo)},'
                             f'"change_pct":{ch},"mode":"{mode}"}}'))
        return out
