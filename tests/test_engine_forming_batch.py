"""`CandleEngine.forming_batch` (every forming candle of an interval at once, what a publisher
sends each second) equals `forming()`, one instrument at a time, after every frame of random
streams: instruments interleaved, late and bad ticks, minutes waiting out the grace, longer
intervals made of folded minutes, history's minutes folded into a forming candle."""

from __future__ import annotations

from dataclasses import astuple
from datetime import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecli.core.candles import HISTORY, Candle
from livecli.core.engine import CandleEngine
from livecli.core.ticks import Tick, TickColumns
from livecli.core.timeutil import at_ist
from tests.streams import DAY, INFY, RELIANCE, make_ticks, streams

pytestmark = pytest.mark.usefixtures("engine_kernel")

INTERVALS = [1, 3, 5, 7, 15, 60]


def one_at_a_time(engine: CandleEngine, minutes: int) -> list[tuple]:
    got = [engine.forming(tok, minutes) for tok in engine.tokens()]
    return [astuple(c) for c in got if c is not None]


def batched(engine: CandleEngine, minutes: int) -> list[tuple]:
    batch = engine.forming_batch(minutes)
    assert batch.interval_min == minutes
    return [astuple(c) for c in batch.candles(closed=False)]


def assert_same(engine: CandleEngine) -> int:
    rows = 0
    for minutes in INTERVALS:
        want = one_at_a_time(engine, minutes)
        assert batched(engine, minutes) == want, f"{minutes}min"
        rows += len(want)
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=streams, sizes=st.lists(st.integers(1, 30), min_size=1, max_size=4))
def test_the_batch_equals_forming_after_every_frame(spec, sizes):
    ticks = make_ticks(spec)
    engine = CandleEngine(INTERVALS, grace_s=2.0)
    i = k = 0
    while i < len(ticks):
        n = sizes[k % len(sizes)]
        engine.update_columns(TickColumns.from_ticks(ticks[i:i + n]))
        i, k = i + n, k + 1
        assert_same(engine)
    engine.advance(engine.clock + 1.5)  # a minute still waiting out its grace, for some
    assert_same(engine)


def test_it_is_not_vacuous_and_tells_a_folded_minute_from_the_newest():
    # Two instruments over several minutes: 5-minute candles that fold closed minutes with the
    # one in its grace and the newest; the batch must hold them, with their merged values.
    t0 = at_ist(DAY, time(10, 0))
    engine = CandleEngine(INTERVALS, grace_s=2.0)
    ticks = []
    for sec in range(0, 250, 7):
        for tok, base in ((RELIANCE, 1000.0), (INFY, 1500.0)):
            ticks.append(Tick(tok, base + (sec % 11) * 0.05, t0 + sec, 100 + sec * 3))
    engine.update_columns(TickColumns.from_ticks(ticks))
    engine.advance(t0 + 241)  # 10:04 open, 10:03 waiting out the grace
    assert assert_same(engine) >= 2 * len(INTERVALS)
    five = engine.forming_batch(5).candles(closed=False)
    assert sorted(c.instrument_token for c in five) == sorted([RELIANCE, INFY])
    assert all(c.start == t0 and c.ticks == 36 for c in five)  # every tick so far, merged


def test_history_folded_into_a_forming_candle_keeps_its_origin():
    t0 = at_ist(DAY, time(11, 0))
    engine = CandleEngine([1, 15], grace_s=2.0, instruments={RELIANCE: ("RELIANCE", "NSE")})
    engine.update(Tick(RELIANCE, 1000.0, t0 + 180.5, 5000))  # 11:03, first tick
    minutes = [Candle(RELIANCE, 1, t0 + 60 * m, 990.0 + m, 995.0 + m, 985.0 + m, 991.0 + m,
                      100, None, 4, closed=True, origin=HISTORY) for m in range(3)]
    engine.insert_history(RELIANCE, minutes)
    assert assert_same(engine) >= 2
    (c,) = engine.forming_batch(15).candles(closed=False)
    assert (c.start, c.origin, c.symbol, c.exchange) == (t0, HISTORY, "RELIANCE", "NSE")
