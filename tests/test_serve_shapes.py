"""The API's JSON shapes: the fan-out's fast tick encoder writes, byte for byte, what the
reference encoder (from `Tick`s) writes, for every packet kind and any values; both are the
JSON lines' tick object (livecli/session/jsonl.py); candles decode back to equal `Candle`s."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from livecli.core.candles import Candle
from livecli.kite.codec import (
    decode_frame,
    encode_frame,
    encode_full,
    encode_index_full,
    encode_index_quote,
    encode_ltp,
    encode_quote,
    price_divisor,
)
from livecli.server import shapes
from livecli.server.tap import frame_columns, frame_ticks

TOKENS = [738561, 408065, 256265, 412675, 12345678]  # NSE, NSE, index, CDS, NFO-ish
RECEIVED_AT = 1_765_338_343.095950
NAMES = {738561: ("RELIANCE", "NSE"), 408065: ("INFY", "NSE"), 256265: ("NIFTY 50", "NSE"),
         412675: ("USDINR25DECFUT", "CDS")}  # 12345678 unnamed: the token stands in


def packets(token: int, raws: list[int], q: list[int], ets: int) -> list[bytes]:
    div = price_divisor(token)
    p = [r / div for r in raws]
    depth = [(q[0], p[0], 1)] * 5
    return [
        encode_ltp(token, p[0]),
        encode_quote(token, p[0], q[0], p[1], q[1], q[2], q[3], p[2], p[3], p[4], p[5]),
        encode_full(token, p[0], q[0], p[1], q[1], q[2], q[3], p[2], p[3], p[4], p[5],
                    ets, q[4], q[5], q[6], ets, depth, depth),
        encode_index_quote(token, p[0], p[3], p[4], p[2], p[5], 0.0),
        encode_index_full(token, p[0], p[3], p[4], p[2], p[5], 0.0, ets),
    ]


@settings(max_examples=150, deadline=None)
@given(token=st.sampled_from(TOKENS), raws=st.lists(st.integers(0, 2**31), min_size=6, max_size=6),
       q=st.lists(st.integers(0, 2**31), min_size=7, max_size=7),
       ets=st.sampled_from([0, 1_765_338_300, 1_765_338_359]))
def test_fast_encoder_equals_the_reference(token, raws, q, ets):
    frame = decode_frame(encode_frame(packets(token, raws, q, ets)), RECEIVED_AT)
    fast = shapes.TickEncoder(NAMES).encode(frame_columns(frame), RECEIVED_AT)
    ref = shapes.encode_ticks(frame_ticks(frame), NAMES, RECEIVED_AT)
    assert fast == ref
    for _, text in fast:
        obj = json.loads(text)
        assert obj["type"] == "tick" and obj["schema"] == 1


def test_a_tick_is_the_json_lines_tick():
    from livecli.session.jsonl import JsonLines

    frame = decode_frame(encode_frame(packets(408065, [157315, 157000, 156000, 158000, 155000,
                                                       156500], [5, 100, 1, 2, 0, 0, 0],
                                               1_765_338_300)), RECEIVED_AT)

    class Session:  # what JsonLines reads of a session: its instruments; listeners ignored
        def __init__(self) -> None:
            self.instruments = {408065: type("I", (), {"tradingsymbol": "INFY",
                                                       "exchange": "NSE"})()}

        def __getattr__(self, name: str):
            return lambda *args, **kw: None

    lines = [json.loads(x) for x in JsonLines(Session(), io.StringIO())._ticks(frame, RECEIVED_AT)]
    ours = [json.loads(t) for _, t in shapes.TickEncoder(NAMES).encode(frame_columns(frame),
                                                                      RECEIVED_AT)]
    for line, obj in zip(lines, ours, strict=True):
        line.setdefault("schema", 1)  # the JSON lines carry the schema version too
        assert obj == line
        assert [k for k in obj if k != "schema"] == [k for k in line if k != "schema"]


def test_candles_go_and_come_back():
    c = Candle(408065, 5, 1_765_338_300, 1573.15, 1575.0, 1572.3, 1574.5, 12_345, None, 87,
               partial=True, closed=True, symbol="INFY", exchange="NSE")
    obj = json.loads(shapes.encode_candle(c))
    assert obj["type"] == "candle" and obj["schema"] == 1 and obj["start"].endswith("+05:30")
    assert shapes.candle_from_obj(obj) == c
    assert shapes.batch("candles", [shapes.encode_candle(c)]) == (
        '{"type":"candles","schema":1,"data":[' + shapes.encode_candle(c) + "]}")


class _Stub:  # what the JSON lines writers read of a session: its instruments; listeners ignored
    def __init__(self) -> None:
        self.instruments = {tok: type("I", (), {"tradingsymbol": sym, "exchange": ex})()
                            for tok, (sym, ex) in NAMES.items()}

    def __getattr__(self, name: str):
        return lambda *args, **kw: None


@settings(max_examples=150, deadline=None)
@given(token=st.sampled_from(TOKENS), raws=st.lists(st.integers(0, 2**31), min_size=6, max_size=6),
       q=st.lists(st.integers(0, 2**31), min_size=7, max_size=7),
       ets=st.sampled_from([0, 1_765_338_300, 1_765_338_359]))
def test_an_attached_streams_tick_lines_are_the_local_ones_byte_for_byte(token, raws, q, ets):
    """`stream --attach --jsonl` writes from the wire objects what `stream --jsonl` writes
    from the frame: the same text, for every packet kind."""
    from livecli.session.jsonl import JsonLines
    from livecli.session.remote_lines import AttachedLines

    frame = decode_frame(encode_frame(packets(token, raws, q, ets)), RECEIVED_AT)
    local = JsonLines(_Stub(), io.StringIO())._ticks(frame, RECEIVED_AT)
    wire = [json.loads(t) for _, t in shapes.TickEncoder(NAMES).encode(frame_columns(frame),
                                                                      RECEIVED_AT)]
    attached = AttachedLines(_Stub(), io.StringIO())._ticks(wire, 0.0)  # type: ignore[arg-type]
    assert attached == local
