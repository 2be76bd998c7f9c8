"""Random tick streams for property tests, and helpers to run every candle path on them."""

from __future__ import annotations

import random
from datetime import date, time

from hypothesis import strategies as st

from livecli.core.batch import rebuild_arrays
from livecli.core.derive import CandleArrays, derive
from livecli.core.engine import CandleEngine
from livecli.core.ticks import Tick, TickColumns
from livecli.core.timeutil import at_ist
from tests.oracle import OTick

RELIANCE, INFY, NIFTY, USDINR = 738561, 408065, 256265, 412675  # NSE, NSE, index, CDS
DAY = date(2025, 1, 6)  # a Monday
STARTS = {
    "pre-open": at_ist(DAY, time(9, 4)),
    "open": at_ist(DAY, time(9, 14, 50)),
    "midday": at_ist(DAY, time(12, 0, 3)),
    "close": at_ist(DAY, time(15, 24)),
    "overnight": at_ist(DAY, time(15, 20)),  # runs into the next day with a long gap
}

step = st.tuples(
    st.sampled_from([0.0, 0.3, 0.5, 1.0, 1.0, 2.0, 7.0, 30.0, 61.0, 200.0]),  # time gap
    st.sampled_from([0, 0, 1, 5, 20, 100, -3]),  # volume step (-3: a bad tick)
    st.integers(-3, 3),  # price move in ticks
    st.sampled_from([0, 0, 0, 1, 2]),  # day high moves by this many ticks beyond the trade
    st.sampled_from([0.0, 0.0, 0.2, 1.0, 3.0, 70.0]),  # transport delay (70: a late tick)
)

streams = st.fixed_dictionaries(
    {
        "start": st.sampled_from(sorted(STARTS)),
        "instruments": st.lists(
            st.tuples(st.sampled_from([RELIANCE, INFY, NIFTY, USDINR]), st.lists(step, max_size=60)),
            min_size=1, max_size=4, unique_by=lambda x: x[0],
        ),
        "seed": st.integers(0, 2**16),
    }
)


def make_ticks(spec: dict) -> list[Tick]:
    """Ticks in arrival order: each instrument in its own time order, interleaved by arrival."""
    rng = random.Random(spec["seed"])
    start = STARTS[spec["start"]]
    events: list[tuple[float, int, Tick]] = []
    for token, steps in spec["instruments"]:
        t = start + rng.random() * 5
        price = 1000.0 if token != USDINR else 83.0
        tick = 0.05 if token != USDINR else 0.0025
        vol = rng.choice([0, 1000])
        high = low = price
        arrival = t
        for n, (gap, dvol, dpx, hbump, delay) in enumerate(steps):
            t += gap + (86_400 - 6 * 3600 if spec["start"] == "overnight" and n == 20 else 0)
            price = round(max(tick, price + dpx * tick), 4)
            if token == NIFTY:
                volume = None
            else:
                volume = max(0, vol + dvol)
                if dvol >= 0:
                    vol = volume
            high = max(high, price + hbump * tick)
            low = min(low, price - (hbump % 2) * tick)
            arrival = max(arrival, t + delay)
            events.append(
                (arrival, len(events), Tick(token, price, t, volume, round(high, 4), round(low, 4),
                                            (5000 + n) if token == USDINR else None))
            )
    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events]


def to_oracle(ticks: list[Tick]) -> list[OTick]:
    return [OTick(t.instrument_token, t.time, t.last_price, t.volume_traded, t.day_high,
                  t.day_low, t.oi) for t in ticks]


def as_dict(candles) -> dict:
    return {
        (c.instrument_token, c.interval_min, c.start):
        (c.open, c.high, c.low, c.close, c.volume, c.oi, c.ticks, c.partial)
        for c in candles
    }


def stream(ticks: list[Tick], intervals: list[int], frame_sizes: list[int] | None = None):
    """Run the streaming engine over `ticks` (frames of the given sizes); all closed candles."""
    engine = CandleEngine(intervals)
    closed = []
    engine.on_close(closed.append)
    i = 0
    sizes = frame_sizes or [len(ticks) or 1]
    k = 0
    while i < len(ticks):
        n = max(1, sizes[k % len(sizes)])
        chunk = ticks[i : i + n]
        if n == 1:
            engine.update(chunk[0])
        else:
            engine.update_columns(TickColumns.from_ticks(chunk))
        i += n
        k += 1
    engine.close_all()
    return engine, closed


def batch(ticks: list[Tick], intervals: list[int]):
    res = rebuild_arrays(TickColumns.from_ticks(ticks), intervals)
    return res, res.to_candles()


def derived_from_minutes(one_minute, minutes: int):
    arr = derive(CandleArrays.from_candles(list(one_minute)), minutes)
    return arr.to_candles(minutes)
