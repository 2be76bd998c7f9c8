"""JSON lines' tick lines: written by a fast formatter, byte for byte what `json.dumps` writes.

The oracle is the plain way (a dict per tick through json.dumps); frames of every packet kind,
names that need escaping, and missing values must give identical lines.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from livecli.core.timeutil import iso
from livecli.kite.codec import (
    decode_frame,
    encode_frame,
    encode_full,
    encode_index_full,
    encode_index_quote,
    encode_ltp,
    encode_quote,
)
from livecli.kite.instruments import Instrument
from livecli.session.jsonl import JsonLines

T = 1_765_338_345  # 2025-12-10 09:15:45 IST
RELIANCE, INFY, NIFTY, USDINR, ODD = 738561, 408065, 256265, 412675, 99_001


class Names:
    """Just what JsonLines reads of a session."""

    def __init__(self, names: dict[int, Instrument]) -> None:
        self.instruments = MappingProxyType(names)

    def add_frame_listener(self, fn: Any) -> None: ...
    def add_candle_listener(self, fn: Any) -> None: ...
    def add_status_listener(self, fn: Any) -> None: ...
    def add_drop_counter(self, fn: Any) -> None: ...


def oracle(frame: Any, received_at: float, names: dict[int, Instrument]) -> list[str]:
    out = []
    for t in frame.ticks():
        inst = names.get(t.instrument_token)
        out.append(json.dumps({
            "type": "tick",
            "symbol": inst.tradingsymbol if inst else str(t.instrument_token),
            "exchange": inst.exchange if inst else None,
            "instrument_token": t.instrument_token,
            "last_price": t.last_price,
            "volume_traded": t.volume_traded,
            "exchange_timestamp": iso(t.exchange_timestamp) if t.exchange_timestamp else None,
            "received_at": iso(received_at),
            "oi": t.oi,
            "day_high": t.day_high,
            "day_low": t.day_low,
            "change_pct": None if t.change_pct is None else round(t.change_pct, 4),
            "mode": t.mode,
        }) + "\n")
    return out


def inst(token: int, symbol: str, exchange: str) -> Instrument:
    return Instrument(instrument_token=token, exchange_token=token >> 8, tradingsymbol=symbol,
                      name=symbol, expiry=None, strike=0.0, tick_size=0.05,
                      lot_size=1, instrument_type="EQ", segment=exchange, exchange=exchange)


def test_tick_lines_equal_json_dumps_for_every_packet_kind():
    depth = [(10, 1500.0, 2)] * 5
    packets = [
        encode_full(RELIANCE, 1541.45, 5, 1540.1, 21_597, 10, 12, 1539.0, 1542.65, 1538.65,
                    1547.45, T - 1, 0, 0, 0, T, depth, depth),
        encode_quote(INFY, 1584.85, 3, 1584.0, 16_200, 7, 8, 1580.0, 1590.0, 1579.5, 1600.0),
        encode_ltp(INFY, 1584.9),
        encode_quote(ODD, 12.5, 1, 12.5, 0, 0, 0, 12.0, 13.0, 12.0, 0.0),  # no previous close
        encode_index_quote(NIFTY, 26_798.25, 26_850.0, 26_700.0, 26_750.0, 26_700.5, 97.75),
        encode_index_full(NIFTY, 26_799.0, 26_850.0, 26_700.0, 26_750.0, 26_700.5, 98.5, T),
        encode_full(USDINR, 83.1225, 1, 83.12, 700, 1, 1, 83.1, 83.2, 83.0, 83.05, T, 5123, 0,
                    0, T, [(1, 83.12, 1)] * 5, [(1, 83.13, 1)] * 5),
        encode_full(RELIANCE, 1541.5, 5, 1540.1, 21_600, 10, 12, 1539.0, 1542.65, 1538.65,
                    1547.45, T, 0, 0, 0, 0, depth, depth),  # no exchange time
    ]
    names = {
        RELIANCE: inst(RELIANCE, "RELIANCE", "NSE"),
        INFY: inst(INFY, 'IN"FY\\é', "NSE"),  # escaping and non-ASCII, as json.dumps does it
        NIFTY: inst(NIFTY, "NIFTY 50", "NSE"),
    }  # USDINR and ODD unnamed: symbol is the token, exchange null
    received = T + 0.123456
    frame = decode_frame(encode_frame(packets), received)
    assert len(frame) == len(packets)
    sink = JsonLines(Names(names))  # type: ignore[arg-type]
    want = oracle(frame, received, names)
    assert sink._ticks(frame, received) == want
    assert sink._ticks(frame, received) == want  # the cached heads give the same lines
    parsed = [json.loads(x) for x in want]
    assert {p["mode"] for p in parsed} == {"full", "quote", "ltp"}
    assert parsed[2]["day_high"] is None and parsed[3]["change_pct"] is None
    assert parsed[-1]["exchange_timestamp"] is None and parsed[6]["exchange"] is None


@settings(max_examples=300, deadline=None)
@given(
    symbol=st.text(max_size=12), exchange=st.sampled_from(["NSE", "BSE", "", 'N"X\\é']),
    start=st.one_of(st.integers(1_700_000_000, 1_800_000_000),
                    st.floats(1_700_000_000, 1_800_000_000)),
    prices=st.lists(st.one_of(st.floats(0.05, 1e6), st.integers(1, 10**6)), min_size=4,
                    max_size=4),
    volume=st.integers(0, 10**12), oi=st.one_of(st.none(), st.integers(0, 10**9)),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    origin=st.sampled_from(["live", "history", "repaired"]), schema=st.booleans(),
    minutes=st.sampled_from([1, 5, 75]),
)
def test_candle_lines_equal_json_dumps(symbol, exchange, start, prices, volume, oi, flags,
                                       origin, schema, minutes):
    # The candle line is formatted directly (publishing sends every forming candle each
    # second); json.dumps of the candle's dict is the oracle, byte for byte.
    from livecli.core.candles import Candle
    from livecli.core.status import STATUS_SCHEMA
    from livecli.session.jsonl import candle_line

    o, h, lo, c = prices
    cdl = Candle(instrument_token=738561, interval_min=minutes, start=start, open=o, high=h,
                 low=lo, close=c, volume=volume, oi=oi, ticks=7, partial=flags[0],
                 synthetic=flags[1], closed=flags[2], symbol=symbol, exchange=exchange,
                 origin=origin)
    head = {"type": "candle", "schema": STATUS_SCHEMA} if schema else {"type": "candle"}
    assert candle_line(cdl, schema=schema) == json.dumps({**head, **cdl.to_dict()}) + "\n"


row = st.tuples(
    st.integers(0, 6),  # slot: some beyond the names (then named by token, exchange "")
    st.integers(1, 2**40), st.integers(1_700_000_000, 1_800_000_000),
    st.lists(st.one_of(st.floats(0.05, 1e6), st.floats(allow_nan=True, allow_infinity=True)),
             min_size=4, max_size=4),
    st.integers(0, 10**12), st.integers(-1, 10**9), st.integers(0, 10**6),
    st.booleans(), st.booleans(), st.integers(0, 2),
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(row, max_size=12), names=st.lists(
    st.tuples(st.text(max_size=8), st.sampled_from(["NSE", "", 'N"X\\é'])), max_size=4),
    closed=st.booleans(), schema=st.booleans(), minutes=st.sampled_from([1, 5, 75]))
def test_a_batchs_candle_lines_equal_each_candles_line(rows, names, closed, schema, minutes):
    # A batch's lines are formatted from its columns (a minute's closes and each second's
    # forming updates of 9000 instruments, for NATS); each must be the line of the Candle the
    # batch makes for its row, and json.dumps of that candle's dict, byte for byte.
    import numpy as np

    from livecli.core.closed import ClosedCandles
    from livecli.core.status import STATUS_SCHEMA
    from livecli.session.jsonl import candle_line, candle_lines

    def col(i: int, dtype: Any) -> np.ndarray:
        return np.array([r[i] for r in rows], dtype)

    px = np.array([r[3] for r in rows], np.float64).reshape(len(rows), 4)
    batch = ClosedCandles(
        minutes, col(0, np.int64), col(1, np.int64), col(2, np.int64), px[:, 0], px[:, 1],
        px[:, 2], px[:, 3], col(4, np.int64), col(5, np.int64), col(6, np.int64),
        col(7, np.bool_), col(8, np.bool_), [n for n, _ in names], [e for _, e in names],
        col(9, np.int8))
    got = candle_lines(batch, closed=closed, schema=schema)
    candles = batch.candles(closed)
    assert got == [candle_line(c, schema=schema) for c in candles]
    head = {"type": "candle", "schema": STATUS_SCHEMA} if schema else {"type": "candle"}
    assert got == [json.dumps({**head, **c.to_dict()}) + "\n" for c in candles]
