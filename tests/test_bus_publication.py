"""What the session hands the NATS publisher when candles close, without a server.

A minute's end closes thousands of candles as one engine batch. It goes to the publisher's
queue in parts, each admitted on its own (a nearly full queue sheds only what does not fit,
counted), and each carrying its own rows' names: a closed candle never depends on another
message to say what instrument it is (a review found names sent separately could be shed).
"""

from __future__ import annotations

import json

import numpy as np

from livecli.bus.options import PublishOptions
from livecli.bus.publisher import CANDLE
from livecli.core.candles import Candle
from livecli.core.closed import ClosedCandles
from livecli.session.publish import CANDLE_CHUNK, Publication, make_encoder


def _batch(n: int) -> ClosedCandles:
    # As the engine closes them: `slot` indexes the engine's lists of every instrument's name.
    candles = [Candle(instrument_token=1000 + i, interval_min=1, start=1_765_338_300,
                      open=100.0, high=101.0, low=99.5, close=100.5, volume=10 * i, oi=None,
                      ticks=3, closed=True) for i in range(n)]
    batch = ClosedCandles.from_candles(candles, np.arange(n)[::-1], 1)  # slots out of order
    batch.symbols = [f"SYM{s}" for s in range(n)]
    batch.exchanges = ["NSE"] * n
    return batch


def test_a_minutes_batch_goes_in_parts_each_named_and_shed_only_where_it_does_not_fit():
    n = 3 * CANDLE_CHUNK + 7
    pub = Publication(None, PublishOptions(url="nats://127.0.0.1:1", buffer=2 * CANDLE_CHUNK + 10),
                      in_process=True)  # type: ignore[arg-type]
    batch = _batch(n)
    want = {c.instrument_token: c for c in batch.candles()}
    pub._on_candles(batch)
    queued = [item for kind, item, _, _ in pub.publisher._items if kind == CANDLE]
    # Two parts fit the buffer, the third does not (shed and counted, not lost in silence),
    # and the last, smaller one fits again.
    assert [len(p) for p in queued] == [CANDLE_CHUNK, CANDLE_CHUNK, 7]
    assert pub.publisher.candles_dropped == CANDLE_CHUNK
    encode = make_encoder()  # the publisher's process: no names message was ever sent
    msgs = [m for p in queued for m in encode(CANDLE, p, 0.0)]
    assert len(msgs) == 2 * CANDLE_CHUNK + 7
    for subject, data, msg_id in msgs:
        d = json.loads(data)
        c = want[d["instrument_token"]]
        assert (d["symbol"], d["exchange"]) == (c.symbol, c.exchange) == (d["symbol"], "NSE")
        assert subject == f"livecli.candles.1min.NSE.{c.symbol}" and msg_id.startswith("c:")
    # The engine's batch itself is untouched (the JSON lines and the server read it too).
    assert batch.symbols[0] == "SYM0" and len(batch) == n
