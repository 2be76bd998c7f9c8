"""What the session hands the NATS publisher when candles close or form, without a server.

A minute's end closes thousands of candles as one engine batch. It goes to the publisher's
queue in parts, each admitted on its own (a nearly full queue sheds only what does not fit,
counted), and each carrying its own rows' names: a closed candle never depends on another
message to say what instrument it is (a review found names sent separately could be shed).
"""

from __future__ import annotations

import json
from datetime import date
from datetime import time as dtime

import numpy as np

from livecli.bus.options import PublishOptions
from livecli.bus.publisher import CANDLE, OTHER, TextBatch
from livecli.core.candles import Candle
from livecli.core.closed import ClosedCandles
from livecli.core.engine import CandleEngine
from livecli.core.status import STATUS_SCHEMA, LiveStatus
from livecli.core.ticks import Tick, TickColumns
from livecli.core.timeutil import at_ist
from livecli.session.publish import CANDLE_CHUNK, FORMING, LONG_EVERY, Publication, make_encoder


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


class _EngineSession:
    """What the Publication reads of a session for forming updates, over a real engine."""

    def __init__(self, engine: CandleEngine) -> None:
        self.engine = engine
        self.intervals = engine.intervals

    def forming_batch(self, interval):
        return self.engine.forming_batch(interval)


def _forming_sent(pub: Publication) -> list[dict]:
    items = [item for kind, item, _, _ in pub.publisher._items
             if kind == OTHER and isinstance(item, tuple) and item[0] == FORMING]
    pub.publisher._items.clear()
    pub.publisher.room.release(pub.publisher.room.held)
    encode = make_encoder()
    out = []
    for item in items:
        batch = encode(OTHER, item, 0.0)
        assert isinstance(batch, TextBatch)
        for subject, line in zip(batch.subjects, batch.payloads, strict=True):
            d = json.loads(line)
            assert subject == f"livecli.candles.{d['interval']}.NSE.{d['symbol']}"
            out.append(d)
    return out


def test_forming_updates_are_the_engines_candles_and_only_those_that_changed():
    names = {1001: ("AAA", "NSE"), 1002: ("BBB", "NSE"), 1003: ("CCC", "NSE")}
    engine = CandleEngine([1, 5], instruments=names)
    t0 = at_ist(date(2025, 1, 6), dtime(10, 1, 5))  # the second minute of a 5-minute candle
    engine.update_columns(TickColumns.from_ticks(
        [Tick(tok, 100.0 + i, t0 + i, 1000 + i) for i, tok in enumerate(names)]))
    pub = Publication(_EngineSession(engine), PublishOptions(url="nats://127.0.0.1:1"),
                      in_process=True)  # type: ignore[arg-type]
    status = LiveStatus()

    def wanted(tokens, minutes) -> list[dict]:
        return [{"type": "candle", "schema": STATUS_SCHEMA,
                 **engine.forming(tok, minutes).to_dict()} for tok in tokens]

    pub._on_status(status)  # round 1: the 1-minute candles of all three
    assert sorted(_forming_sent(pub), key=lambda d: d["symbol"]) == wanted(names, 1)
    pub._on_status(status)  # nothing ticked: nothing sent
    assert _forming_sent(pub) == []
    engine.update(Tick(1002, 105.0, t0 + 10, 1100))  # a trade of BBB
    engine.update(Tick(1003, 102.0, t0 + 11, 1002))  # CCC's volume unchanged: not a trade
    pub._on_status(status)
    assert _forming_sent(pub) == wanted([1002], 1)
    # A full queue refuses the round: it is not taken as sent, and goes with the next round.
    engine.update(Tick(1001, 99.0, t0 + 12, 1200))
    pub.publisher.room.held = pub.publisher.room.buffer
    pub._on_status(status)
    pub.publisher.room.held = 0
    assert _forming_sent(pub) == []
    assert pub._rounds + 1 == LONG_EVERY
    pub._on_status(status)  # the longer intervals too: every one, none was sent yet
    got = _forming_sent(pub)
    assert [d for d in got if d["interval"] == "1min"] == wanted([1001], 1)
    assert sorted((d for d in got if d["interval"] == "5min"),
                  key=lambda d: d["symbol"]) == wanted(names, 5)
    # Kite's history for 10:00 (a warm start: its minutes carry no tick count) folds into AAA's
    # forming 5-minute candle: its values change, its start and ticks do not. It is news.
    before = engine.forming(1001, 5)
    engine.insert_history(1001, [Candle(1001, 1, t0 - 65, 95.0, 99.5, 94.0, 99.0, 300, None, 0,
                                        closed=True, origin="history")])
    after = engine.forming(1001, 5)
    assert (after.start, after.ticks) == (before.start, before.ticks)
    assert (after.open, after.volume, after.origin) == (95.0, before.volume + 300, "history")
    for _ in range(LONG_EVERY):
        pub._on_status(status)
    assert _forming_sent(pub) == wanted([1001], 5)
