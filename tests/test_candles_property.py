"""Property tests: streaming == batch == derived from 1-minute == the simple oracle.

CANDLES.md, "One answer everywhere", over random tick streams: many instruments interleaved,
bad volumes, late ticks, pre-open and after-close ticks, day-high moves, indices without volume,
a currency contract with its own session, and streams that run into the next day.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecli.core.intervals import NAMED_MINUTES
from tests.oracle import oracle
from tests.streams import (
    as_dict,
    batch,
    derived_from_minutes,
    make_ticks,
    stream,
    streams,
    to_oracle,
)

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
