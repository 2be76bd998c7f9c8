"""The columnar engine's closed-candle paths: batches equal the per-candle callbacks, the history
ring keeps its cap, and candles from elsewhere (a warm start from Kite's history, a repaired
minute) go into the history by start, replacing what was held."""

from __future__ import annotations

from datetime import date
from datetime import time as dtime

import pytest

from livecli.core.candles import Candle
from livecli.core.engine import CandleEngine
from livecli.core.ticks import Tick
from livecli.core.timeutil import at_ist

# Every test on both of the engine's paths: numpy, and the compiled kernel.
pytestmark = pytest.mark.usefixtures("engine_kernel")

INFY, TCS = 408065, 2953217
DAY = date(2025, 1, 6)


def at(h: int, m: int, s: float = 0.0) -> float:
    return at_ist(DAY, dtime(h, m)) + s


def feed(engine: CandleEngine, minutes: int, token: int = INFY) -> None:
    for k in range(minutes):
        engine.update(Tick(token, 100.0 + k, at(10, k, 5), 10 * (k + 1)))
        engine.update(Tick(TCS, 200.0 + k, at(10, k, 6), 20 * (k + 1)))
    engine.advance(at(10, minutes, 5))


def test_batches_carry_the_candles_the_per_candle_callbacks_get():
    engine = CandleEngine([1, 5])
    one, batches = [], []
    engine.on_close(one.append)
    engine.on_close_batch(batches.append)
    feed(engine, 12)
    engine.close_all()
    from_batches = [c for b in batches for c in b.candles()]
    assert [c.values() for c in from_batches] == [c.values() for c in one]
    assert {c.interval_min for c in one} == {1, 5} and len(one) == 2 * (12 + 3)


def test_the_history_ring_keeps_the_newest_up_to_its_cap():
    engine = CandleEngine(history=4)
    feed(engine, 10)
    got = engine.history(INFY)
    assert [c.close for c in got] == [106.0, 107.0, 108.0, 109.0]
    assert engine.history_ring(INFY, 1).closes(2) == [108.0, 109.0]


def test_insert_closed_puts_history_in_order_and_replaces_a_repaired_minute():
    engine = CandleEngine([1, 5], history=6)
    feed(engine, 3)  # 10:00, 10:01, 10:02 closed live
    start0 = int(at(10, 0))
    older = [Candle(INFY, 1, start0 - 60 * k, 90.0, 91.0, 89.0, 90.5, 7, None, 3, closed=True)
             for k in (3, 2, 1)]  # 09:57-09:59, as Kite's history gives them
    repaired = Candle(INFY, 1, start0 + 60, 95.0, 96.0, 94.0, 95.5, 999, None, 4, closed=True)
    unbuilt = Candle(INFY, 3, start0, 1.0, 1.0, 1.0, 1.0, 1, None, 1, closed=True)
    assert engine.insert_closed([*older, repaired, unbuilt]) == 4
    got = engine.history(INFY)
    assert [c.start - start0 for c in got] == [-180, -120, -60, 0, 60, 120]
    assert got[4].volume == 999 and got[4].close == 95.5  # the repaired minute replaced
    assert got[3].close == 100.0 and got[5].close == 102.0  # the live ones kept
    assert all(c.closed and c.symbol == str(INFY) for c in got)
    # The cap holds: one more live minute pushes out the oldest.
    engine.update(Tick(INFY, 103.0, at(10, 3, 5), 40))
    engine.advance(at(10, 4, 5))
    assert [c.start - start0 for c in engine.history(INFY)] == [-120, -60, 0, 60, 120, 180]
    # Other instruments are untouched.
    assert [c.close for c in engine.history(TCS)] == [200.0, 201.0, 202.0]
