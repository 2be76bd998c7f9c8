"""Property tests: streaming == batch == derived from 1-minute == the simple oracle.

CANDLES.md, "One answer everywhere", over random tick streams: many instruments interleaved,
bad volumes, late ticks, pre-open and after-close ticks, day-high moves, indices without volume,
a currency contract with its own session, and streams that run into the next day; and the
same streams with ticks stamped in the future among them (rule 8), guarded against a wall clock.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecli.core.batch import rebuild_arrays
from livecli.core.engine import CandleEngine
from livecli.core.intervals import NAMED_MINUTES
from livecli.core.ticks import Tick, TickColumns
from tests.oracle import oracle
from tests.streams import (
    INFY,
    NIFTY,
    RELIANCE,
    STARTS,
    USDINR,
    as_dict,
    batch,
    derived_from_minutes,
    make_ticks,
    stream,
    streams,
    to_oracle,
)

# Every test on both of the engine's paths: numpy, and the compiled kernel.
pytestmark = pytest.mark.usefixtures("engine_kernel")

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(spec=streams, frames=st.lists(st.integers(1, 40), min_size=1, max_size=5))
def test_named_intervals_agree_everywhere(spec, frames):
    ticks = make_ticks(spec)
    intervals = list(NAMED_MINUTES)
    engine, live = stream(ticks, intervals, frames)
    res, rebuilt = batch(ticks, intervals)
    expected = oracle(to_oracle(ticks), intervals)

    assert as_dict(live) == expected
    assert as_dict(rebuilt) == expected
    one_minute = [c for c in live if c.interval_min == 1]
    for minutes in intervals:
        want = {k: v for k, v in expected.items() if k[1] == minutes}
        assert as_dict(derived_from_minutes(one_minute, minutes)) == want
    # Both paths count the same ticks the same way.
    c, b = engine.counters, res.counters
    assert (c.ticks, c.trades, c.late, c.bad, c.after_close) == (
        b.ticks, b.trades, b.late, b.bad, b.after_close)


@SETTINGS
@given(spec=streams, minutes=st.lists(st.integers(2, 375), min_size=1, max_size=3, unique=True))
def test_any_whole_minute_interval_agrees(spec, minutes):
    ticks = make_ticks(spec)
    # 375 minutes is the whole NSE session; the currency session is longer, so any fits.
    intervals = [1, *minutes]
    _, live = stream(ticks, intervals, [7])
    _, rebuilt = batch(ticks, intervals)
    expected = oracle(to_oracle(ticks), intervals)
    assert as_dict(live) == expected
    assert as_dict(rebuilt) == expected
    one_minute = [c for c in live if c.interval_min == 1]
    for m in minutes:
        want = {k: v for k, v in expected.items() if k[1] == m}
        assert as_dict(derived_from_minutes(one_minute, m)) == want


@SETTINGS
@given(spec=streams)
def test_every_candle_is_well_formed(spec):
    ticks = make_ticks(spec)
    _, live = stream(ticks, [1, 5])
    for c in live:
        assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
        assert c.volume >= 0 and c.ticks >= 1 and c.closed and not c.synthetic
    starts = [(c.instrument_token, c.interval_min, c.start) for c in live]
    assert len(starts) == len(set(starts))


# --- rule 8: a tick stamped ahead of the clock never moves the feed's clock -------------------
POISON_2100 = 4_102_444_800.0  # 2100-01-01T05:30:00+05:30
MAX_AHEAD = 5.0

poisons = st.lists(
    st.tuples(
        st.integers(0, 10**6),  # where (modulo the number of frames + 1)
        st.sampled_from([None, 1e-6, 0.5, 6.0, 3_600.0, 86_400.0]),  # beyond the limit (None: 2100)
        st.sampled_from([RELIANCE, INFY, NIFTY, USDINR, 5_633]),  # 5633: a token never seen
        st.sampled_from([0, 10**9]),  # its cumulative volume
        st.booleans(),  # alone in a frame of its own (the per-tick path) or inside a frame
    ),
    min_size=1, max_size=4,
)


def guarded_run(spec, sizes, lag, receipt_stamped, poison_spec):
    """Ticks in frames, each frame with the wall clock at receipt, poisoned ones put in.

    The wall clock at a frame is the newest exchange time so far plus `lag` (never behind a
    good tick by more than max_ahead_s, so no good tick is refused). With `receipt_stamped` the
    index's ticks are stamped at receipt, as ltp and quote packets are.
    Returns (good ticks in arrival order, [(wall, ticks) per frame], number poisoned).
    """
    ticks = make_ticks(spec)
    frames: list[tuple[float, list[Tick]]] = []
    wall = -math.inf
    i = k = 0
    while i < len(ticks):
        n = max(1, sizes[k % len(sizes)])
        chunk = ticks[i:i + n]
        wall = max(wall, max(t.time for t in chunk) + lag)
        if receipt_stamped:
            chunk = [Tick(t.instrument_token, t.last_price, wall, t.volume_traded, t.day_high,
                          t.day_low, t.oi) if t.instrument_token == NIFTY else t for t in chunk]
        frames.append((wall, chunk))
        i += n
        k += 1
    good = [t for _, f in frames for t in f]
    if not frames:
        frames.append((STARTS[spec["start"]], []))
    for where, beyond, token, volume, alone in poison_spec:
        j = where % len(frames)
        w, f = frames[j]
        t = POISON_2100 if beyond is None else w + MAX_AHEAD + beyond
        bad = Tick(token, 123.45, t, None if token == NIFTY else volume, 999.0, 1.0, None)
        if alone:
            frames.insert(j, (w, [bad]))
        else:
            pos = where % (len(f) + 1)
            frames[j] = (w, [*f[:pos], bad, *f[pos:]])
    return good, frames, len(poison_spec)


@SETTINGS
@given(spec=streams, sizes=st.lists(st.integers(1, 40), min_size=1, max_size=5),
       lag=st.sampled_from([0.0, 0.3, 2.0]), receipt_stamped=st.booleans(), poison_spec=poisons)
def test_ticks_from_the_future_leave_every_candle_as_without_them(
        spec, sizes, lag, receipt_stamped, poison_spec):
    good, frames, n_poisoned = guarded_run(spec, sizes, lag, receipt_stamped, poison_spec)
    intervals = [1, 5, 15]
    expected = oracle(to_oracle(good), intervals)

    wall = [0.0]
    engine = CandleEngine(intervals, now=lambda: wall[0], max_ahead_s=MAX_AHEAD)
    live = []
    engine.on_close(live.append)
    for w, f in frames:
        wall[0] = w
        if len(f) == 1:
            engine.update(f[0])
        elif f:
            engine.update_columns(TickColumns.from_ticks(f))
    engine.close_all()
    assert as_dict(live) == expected
    assert engine.counters.future == n_poisoned
    assert engine.tick_clock == max((t.time for t in good), default=-math.inf)

    # The rebuild given the receipt clock takes the same decisions, and counts the same.
    allticks = [t for _, f in frames for t in f]
    received = [w for w, f in frames for _ in f]
    res = rebuild_arrays(TickColumns.from_ticks(allticks), intervals, received=received,
                         max_ahead_s=MAX_AHEAD)
    assert as_dict(res.to_candles()) == expected
    c, b = engine.counters, res.counters
    assert (c.ticks, c.trades, c.late, c.bad, c.after_close, c.future) == (
        b.ticks, b.trades, b.late, b.bad, b.after_close, b.future)
    # And the guard costs honest ticks nothing: without poison, guarded == unguarded.
    _, plain = stream(good, intervals, sizes)
    assert as_dict(plain) == expected
