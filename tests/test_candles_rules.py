"""CANDLES.md rule by rule: one small, readable case per edge, checked on every candle path.

Each case feeds a handful of ticks and states the candles CANDLES.md says they make. `paths()`
runs the streaming engine (tick by tick), the batch rebuild and, for longer intervals, the
derivation from 1-minute candles, and each must give the stated answer.
"""

from __future__ import annotations

import math
from datetime import date, time

import pytest

from livecli.core.batch import rebuild, rebuild_arrays
from livecli.core.engine import CandleEngine
from livecli.core.history import CandleHistory
from livecli.core.intervals import parse_interval
from livecli.core.sessions import EQUITY
from livecli.core.ticks import Tick, TickColumns
from livecli.core.timeutil import at_ist, iso
from livecli.errors import IntervalError
from tests.streams import derived_from_minutes

# Every test on both of the engine's paths: numpy, and the compiled kernel.
pytestmark = pytest.mark.usefixtures("engine_kernel")

D = date(2025, 1, 6)
RELIANCE, NIFTY, USDINR, INFY = 738561, 256265, 412675, 408065


def at(h: int, m: int, s: float = 0) -> float:
    return at_ist(D, time(h, m, int(s))) + (s - int(s))


def tk(t: float, price: float, volume: int | None = None, token: int = RELIANCE, **kw) -> Tick:
    return Tick(token, price, t, volume, kw.get("high"), kw.get("low"), kw.get("oi"))


def paths(ticks: list[Tick], minutes: int) -> list[list[tuple]]:
    """The candles of `minutes` from each path, as (start ISO, o, h, l, c, v, ticks, partial)."""
    engine = CandleEngine([minutes])
    live = []
    engine.on_close(live.append)
    for t in ticks:
        engine.update(t)
    engine.close_all()
    rebuilt = rebuild(TickColumns.from_ticks(ticks), [1, minutes])
    one = [c for c in live if c.interval_min == 1]
    results = [
        [c for c in live if c.interval_min == minutes],
        [c for c in rebuilt if c.interval_min == minutes],
        derived_from_minutes(one, minutes),
    ]
    return [
        sorted((iso(c.start)[11:19], c.open, c.high, c.low, c.close, c.volume, c.ticks, c.partial)
               for c in r)
        for r in results
    ]


def one_answer(ticks: list[Tick], minutes: int = 1) -> list[tuple]:
    live, rebuilt, derived = paths(ticks, minutes)
    assert live == rebuilt == derived
    return live


# --- rule 2: buckets, anchoring, labels ------------------------------------------------------
def test_tick_exactly_at_a_boundary_opens_the_next_candle():
    got = one_answer([tk(at(10, 0, 59.5), 100, 10), tk(at(10, 1, 0), 101, 20)])
    assert [c[0] for c in got] == ["10:00:00", "10:01:00"]
    assert got[1][1] == 101


@pytest.mark.parametrize(
    ("minutes", "starts"),
    [
        (10, ["09:15:00", "09:25:00", "09:35:00"]),
        (30, ["09:15:00", "09:45:00", "10:15:00"]),
        (60, ["09:15:00", "10:15:00", "11:15:00"]),
        (5, ["09:15:00", "09:20:00", "09:25:00"]),
        (15, ["09:15:00", "09:30:00", "09:45:00"]),
        (3, ["09:15:00", "09:18:00", "09:21:00"]),
    ],
)
def test_intervals_are_anchored_at_the_0915_open(minutes, starts):
    span = minutes * 60
    ticks = [tk(at(9, 15) + k * span + 30, 100 + k, 10 * (k + 1)) for k in range(3)]
    assert [c[0] for c in one_answer(ticks, minutes)] == starts


def test_last_60_minute_candle_is_cut_at_the_close():
    engine = CandleEngine([60])
    closed = []
    engine.on_close(closed.append)
    engine.update(tk(at(15, 16), 100, 10))
    engine.advance(at(15, 30, 1.9))
    assert [c.interval_min for c in closed] == [1]  # the 15:16 minute closed, not the hour
    engine.advance(at(15, 30, 2))
    hour = [c for c in closed if c.interval_min == 60]
    assert len(hour) == 1 and iso(hour[0].start) == "2025-01-06T15:15:00+05:30"


# --- rule 3: close second, pre-open, after close ----------------------------------------------
def test_tick_at_the_close_second_belongs_to_the_last_candle():
    # (first seen at 15:29: its volume is the baseline, the candle partial; rule 7)
    got = one_answer([tk(at(15, 29, 10), 100, 10), tk(at(15, 30, 0), 105, 30)])
    assert got == [("15:29:00", 100, 105, 100, 105, 20, 2, True)]


def test_pre_open_ticks_fold_into_the_first_candle_and_count_the_auction():
    got = one_answer([tk(at(9, 7, 30), 99, 5000), tk(at(9, 15, 20), 100, 5100)])
    assert got == [("09:15:00", 99, 100, 99, 100, 5100, 2, False)]


def test_ticks_after_the_close_are_counted_not_candled():
    ticks = [tk(at(15, 29), 100, 10), tk(at(15, 30, 1), 120, 50), tk(at(15, 45), 130, 90)]
    assert one_answer(ticks) == [("15:29:00", 100, 100, 100, 100, 0, 1, True)]
    engine = CandleEngine()
    engine.update_columns(TickColumns.from_ticks(ticks))
    assert engine.counters.after_close == 2
    assert rebuild_arrays(TickColumns.from_ticks(ticks)).counters.after_close == 2


# --- rule 5: only trades move OHLC ------------------------------------------------------------
def test_a_book_only_tick_changes_nothing():
    # same cumulative volume, a different last price (a quote update): not a trade
    got = one_answer([tk(at(10, 0, 1), 100, 10), tk(at(10, 0, 2), 90, 10), tk(at(10, 0, 3), 101, 11)])
    assert got == [("10:00:00", 100, 101, 100, 101, 1, 2, True)]


def test_indices_without_volume_trade_on_a_price_change():
    ticks = [tk(at(10, 0, 1), 22000, token=NIFTY), tk(at(10, 0, 2), 22000, token=NIFTY),
             tk(at(10, 0, 3), 22010, token=NIFTY), tk(at(10, 0, 4), 21990, token=NIFTY)]
    assert one_answer(ticks) == [("10:00:00", 22000, 22010, 21990, 21990, 0, 3, True)]


# --- rule 6: day high and low between snapshots -----------------------------------------------
def test_a_day_high_that_moved_between_snapshots_raises_the_candle_high():
    ticks = [
        tk(at(10, 0, 1), 100, 10, high=104, low=95),
        tk(at(10, 1, 1), 101, 20, high=104, low=95),  # day high unchanged: high is the trade
        tk(at(10, 2, 1), 102, 30, high=107, low=95),  # a trade at 107 happened unseen
        tk(at(10, 3, 1), 99, 40, high=107, low=93),  # and one at 93
    ]
    got = one_answer(ticks)
    assert [(c[0], c[2], c[3]) for c in got] == [
        ("10:00:00", 100, 100), ("10:01:00", 101, 101), ("10:02:00", 107, 102), ("10:03:00", 99, 93),
    ]
    assert one_answer(ticks, 5) == [("10:00:00", 100, 107, 93, 99, 30, 4, True)]


def test_the_first_ticks_day_high_is_not_this_candles():
    # The morning's high of 110 came before we saw the instrument: not in this candle.
    got = one_answer([tk(at(11, 0, 5), 100, 500, high=110, low=90)])
    assert got[0][2:4] == (100, 100)


# --- rule 7: volume, partial, bad ticks, open interest ----------------------------------------
def test_first_tick_after_the_first_minute_is_the_baseline_and_the_candles_are_partial():
    ticks = [tk(at(9, 40, 10), 100, 70_000), tk(at(9, 40, 20), 101, 70_500),
             tk(at(9, 41, 5), 102, 71_000)]
    assert one_answer(ticks) == [
        ("09:40:00", 100, 101, 100, 101, 500, 2, True),
        ("09:41:00", 102, 102, 102, 102, 500, 1, False),
    ]
    # Every interval's first candle is partial; the derived one too.
    assert one_answer(ticks, 10) == [("09:35:00", 100, 102, 100, 102, 1000, 3, True)]


def test_first_tick_within_the_first_minute_counts_volume_from_zero():
    got = one_answer([tk(at(9, 15, 40), 100, 12_000), tk(at(9, 15, 50), 101, 12_600)])
    assert got == [("09:15:00", 100, 101, 100, 101, 12_600, 2, False)]


def test_volume_going_down_is_a_bad_tick_ignored_and_counted():
    ticks = [tk(at(10, 0, 1), 100, 1000), tk(at(10, 0, 2), 150, 900), tk(at(10, 0, 3), 101, 1100)]
    assert one_answer(ticks)[0][1:6] == (100, 101, 100, 101, 100)
    engine = CandleEngine()
    for t in ticks:
        engine.update(t)
    assert engine.counters.bad == 1
    assert rebuild_arrays(TickColumns.from_ticks(ticks)).counters.bad == 1


def test_open_interest_is_the_last_value_seen():
    ticks = [tk(at(10, 0, 1), 100, 10, oi=500), tk(at(10, 0, 2), 101, 20, oi=520),
             tk(at(10, 1, 2), 102, 30, oi=510)]
    engine = CandleEngine([5])
    closed = []
    engine.on_close(closed.append)
    for t in ticks:
        engine.update(t)
    engine.close_all()
    assert [(c.interval_min, c.oi) for c in closed] == [(1, 520), (1, 510), (5, 510)]
    assert [c.oi for c in rebuild(TickColumns.from_ticks(ticks), [1, 5])] == [520, 510, 510]


# --- rules 8 and 9: closing on the feed's clock, late ticks -----------------------------------
def test_a_candle_closes_on_time_without_a_new_tick():
    engine = CandleEngine()
    closed = []
    engine.on_close(closed.append)
    engine.update(tk(at(10, 0, 5), 100, 10))
    engine.advance(at(10, 1, 1.999))
    assert closed == []
    engine.advance(at(10, 1, 2))  # end 10:01:00 + grace 2 s
    assert len(closed) == 1 and closed[0].closed and iso(closed[0].start).endswith("10:00:00+05:30")


def test_another_instruments_tick_moves_the_clock_for_all():
    engine = CandleEngine()
    closed = []
    engine.on_close(closed.append)
    engine.update(tk(at(10, 0, 5), 100, 10, token=USDINR))  # illiquid
    engine.update(tk(at(10, 1, 3), 2500, 10))  # a liquid name's tick at 10:01:03
    assert [c.instrument_token for c in closed] == [USDINR]


def test_a_late_tick_is_ignored_and_its_volume_arrives_with_the_next():
    ticks = [
        tk(at(10, 0, 10), 100, 1000),
        tk(at(10, 1, 5), 2500, 10, token=NIFTY),  # moves the clock past 10:01:02
        tk(at(10, 0, 50), 150, 1200),  # late: its minute closed
        tk(at(10, 1, 10), 101, 1300),
    ]
    got = [c for c in one_answer(ticks) if c[1] < 1000]
    assert got == [("10:00:00", 100, 100, 100, 100, 0, 1, True),
                   ("10:01:00", 101, 101, 101, 101, 300, 1, False)]
    engine = CandleEngine()
    engine.update_columns(TickColumns.from_ticks(ticks))
    assert engine.counters.late == 1
    assert rebuild_arrays(TickColumns.from_ticks(ticks)).counters.late == 1


def test_a_tick_within_the_grace_still_counts():
    ticks = [tk(at(10, 0, 10), 100, 1000), tk(at(10, 1, 1), 2500, token=NIFTY),
             tk(at(10, 0, 59), 103, 1200)]
    got = [c for c in one_answer(ticks) if c[1] < 1000]
    assert got == [("10:00:00", 100, 103, 100, 103, 200, 2, True)]


def test_out_of_order_ticks_of_one_instrument_agree_on_every_path():
    # Kite sends an instrument's ticks in order; if not, streaming and batch still agree.
    ticks = [tk(at(10, 1, 0.5), 22000, token=NIFTY), tk(at(10, 0, 59.5), 21990, token=NIFTY),
             tk(at(10, 1, 1), 22005, token=NIFTY)]
    assert one_answer(ticks) == [("10:00:00", 21990, 21990, 21990, 21990, 0, 1, False),
                                 ("10:01:00", 22000, 22005, 22000, 22005, 0, 2, True)]


# --- rule 10: gap filling ---------------------------------------------------------------------
def _filled(ticks: list[Tick], disconnect_at: float | None = None) -> list[tuple]:
    engine = CandleEngine(fill_gaps=True)
    closed = []
    engine.on_close(closed.append)
    for t in ticks:
        if disconnect_at is not None and t.time > disconnect_at >= engine.clock:
            engine.mark_disconnect(disconnect_at)
        engine.update(t)
    engine.close_all()
    return [(iso(c.start)[11:16], c.close, c.volume, c.synthetic) for c in closed]


def test_gaps_between_real_candles_are_filled_flat_when_asked():
    ticks = [tk(at(10, 0, 5), 100, 10), tk(at(10, 3, 5), 104, 20)]
    assert _filled(ticks) == [("10:00", 100, 0, False), ("10:01", 100, 0, True),
                              ("10:02", 100, 0, True), ("10:03", 104, 10, False)]
    # the batch path fills the same way
    rebuilt = rebuild(TickColumns.from_ticks(ticks), [1], fill_gaps=True)
    assert [(iso(c.start)[11:16], c.close, c.volume, c.synthetic) for c in rebuilt] == _filled(ticks)
    # and not at all unless asked
    assert len(rebuild(TickColumns.from_ticks(ticks), [1])) == 2


def test_gaps_are_never_filled_across_a_disconnect_or_a_day():
    ticks = [tk(at(10, 0, 5), 100, 10), tk(at(10, 3, 5), 104, 20)]
    assert [s for *_, s in _filled(ticks, disconnect_at=at(10, 1, 30))] == [False, False]
    next_day = at(10, 0) + 86_400
    two_days = [tk(at(15, 28, 5), 100, 10), tk(next_day, 104, 20)]
    assert [s for *_, s in _filled(two_days)] == [False, False]


# --- the engine as a component ----------------------------------------------------------------
def test_a_failing_callback_never_reaches_the_engine_or_the_others():
    engine = CandleEngine()
    seen = []

    def boom(c):
        raise RuntimeError("strategy bug")

    engine.on_close(boom)
    engine.on_close(seen.append)
    engine.update(tk(at(10, 0, 5), 100, 10))
    engine.update(tk(at(10, 2, 5), 101, 20))
    assert len(seen) == 1
    assert engine.counters.callback_errors == 1
    assert "strategy bug" in engine.counters.last_callback_error


def test_history_is_bounded_per_instrument_and_interval():
    engine = CandleEngine([5], history=3)
    for k in range(20):
        engine.update(tk(at(10, 0) + 60 * k + 1, 100 + k, 10 * (k + 1)))
    engine.close_all()
    assert [c.close for c in engine.history(RELIANCE, 1)] == [117, 118, 119]
    assert [iso(c.start)[11:16] for c in engine.history(RELIANCE, 5)] == ["10:05", "10:10", "10:15"]
    ring = CandleHistory(RELIANCE, 1, capacity=500)
    assert ring.capacity == 500 and CandleEngine().history_size == 500


def test_forming_candles_show_the_current_state_of_every_interval():
    engine = CandleEngine([5, 15])
    for k, (m, s, px, vol) in enumerate([(10, 1, 100, 10), (11, 1, 103, 20), (12, 30, 99, 35)]):
        engine.update(tk(at(10, m, s), px, vol))
        assert engine.counters.trades == k + 1
    five = engine.forming(RELIANCE, "5min")
    assert (iso(five.start)[11:16], five.open, five.high, five.low, five.close, five.volume) == (
        "10:10", 100, 103, 99, 99, 25)
    assert not five.closed
    fifteen = engine.forming(RELIANCE, "15min")
    assert (iso(fifteen.start)[11:16], fifteen.volume, fifteen.partial) == ("10:00", 25, True)
    one = engine.forming(RELIANCE, "1min")
    assert iso(one.start)[11:16] == "10:12" and one.volume == 15


def test_several_intervals_at_once_close_in_end_then_interval_order():
    engine = CandleEngine(["15min", "5min", "1min"])
    closed = []
    engine.on_close(closed.append)
    for k in range(16):
        engine.update(tk(at(9, 15) + 60 * k + 1, 100 + k, 10 * (k + 1)))
    engine.advance(at(9, 30, 2))
    assert [(c.interval_min, iso(c.start)[11:16]) for c in closed][-3:] == [
        (1, "09:29"), (5, "09:25"), (15, "09:15")]


# --- rule 4: intervals ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "minutes"),
    [("1min", 1), ("5min", 5), ("45min", 45), ("75min", 75), ("minute", 1), ("5minute", 5),
     ("60minute", 60), ("1m", 1), ("5m", 5), ("1h", 60), ("2h", 120), ("10", 10), (" 15MIN ", 15)],
)
def test_interval_forms(text, minutes):
    assert parse_interval(text).minutes == minutes


@pytest.mark.parametrize("text", ["", "5s", "abc", "0min", "1.5min", "-5min", "min5"])
def test_malformed_intervals_list_the_accepted_forms(text):
    with pytest.raises(IntervalError, match="1min, 3min, 5min"):
        parse_interval(text)


def test_an_interval_longer_than_the_session_is_refused():
    EQUITY.check_interval(parse_interval("375min"))
    with pytest.raises(IntervalError, match="longer than the NSE session"):
        EQUITY.check_interval(parse_interval("376min"))


def test_update_returns_the_minute_candle_the_tick_changed():
    engine = CandleEngine([5])
    c = engine.update(tk(at(9, 15, 20), 100, 10))
    assert (iso(c.start)[11:16], c.open, c.close, c.volume, c.closed) == ("09:15", 100, 100, 10, False)
    c = engine.update(tk(at(9, 15, 40), 103, 25))
    assert (c.high, c.close, c.volume, c.ticks) == (103, 103, 25, 2)
    assert engine.update(tk(at(9, 15, 41), 90, 25)) is None  # book only
    assert engine.update(tk(at(9, 15, 42), 90, 20)) is None  # bad: volume went down
    c = engine.update(tk(at(9, 7), 99, 30))  # a pre-open straggler folds into 09:15
    assert iso(c.start)[11:16] == "09:15" and c.low == 99
    c.close = -1  # a copy: the engine's own candle is untouched
    assert engine.forming(RELIANCE, 1).close == 99


# --- rule 8: the feed's clock cannot be poisoned ----------------------------------------------
POISON = at_ist(date(2100, 1, 1), time(9, 30))  # the packet of issue 9


class Wall:
    """A clock the test sets, standing in for time.time() (or the stand-in's market clock)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _a_day(minutes: int = 64) -> list[Tick]:
    """RELIANCE and INFY every 15 s from 09:15 for `minutes` minutes, cumulative volumes rising."""
    out = []
    for k in range(minutes * 4):
        t = at(9, 15) + 15 * k + 3
        out.append(tk(t, 2500 + (k % 7) * 0.05, 1000 + 10 * k, high=2600, low=2400))
        out.append(tk(t + 1, 1500 - (k % 5) * 0.05, 2000 + 20 * k, token=INFY, high=1600, low=1400))
    return out


def _keyed(candles) -> dict:
    return {(c.instrument_token, c.interval_min, c.start):
            (c.open, c.high, c.low, c.close, c.volume, c.oi, c.ticks, c.partial) for c in candles}


def _feed(engine: CandleEngine, wall: Wall, ticks: list[Tick], frame: int) -> list:
    """Feed `ticks` in frames, the wall clock just behind each frame's newest honest tick."""
    closed = []
    engine.on_close(closed.append)
    for i in range(0, len(ticks), frame):
        chunk = ticks[i:i + frame]
        wall.t = max([wall.t] + [t.time + 0.3 for t in chunk if t.time < POISON])
        if frame == 1:
            engine.update(chunk[0])
        else:
            engine.update_columns(TickColumns.from_ticks(chunk))
    engine.close_all()
    return closed


@pytest.mark.parametrize("frame", [1, 7])
def test_a_packet_stamped_2100_moves_nothing_and_every_candle_stays_exact(frame):
    good = _a_day()
    i = next(k for k, t in enumerate(good) if t.time >= at(9, 31))
    poisoned = [*good[:i], tk(POISON, 99_999, 10**9, high=99_999, low=1), *good[i:]]
    from tests.oracle import OTick, oracle

    want = oracle([OTick(t.instrument_token, t.time, t.last_price, t.volume_traded, t.day_high,
                         t.day_low, t.oi) for t in good], [1, 5])
    # Unguarded (now=None, as before): the clock jumps to 2100 and 48 of 64 minutes are lost.
    old = _feed(CandleEngine([5]), Wall(0), poisoned, frame)
    day_minutes = [c for c in old if c.interval_min == 1 and c.start < at(15, 30)]
    assert len([c for c in day_minutes if c.instrument_token == RELIANCE]) == 16
    # Guarded: every candle is the oracle's over the ticks without it, on every path.
    wall = Wall(at(9, 15))
    engine = CandleEngine([5], now=wall)
    assert _keyed(_feed(engine, wall, poisoned, frame)) == want
    c = engine.counters
    assert (c.future, c.late, c.bad, c.ticks) == (1, 0, 0, len(poisoned))
    assert engine.tick_clock == good[-1].time
    received = [wall.t] * len(poisoned)  # any receipt time of that day: the 2100 tick is ahead
    res = rebuild_arrays(TickColumns.from_ticks(poisoned), [1, 5], received=received)
    assert _keyed(res.to_candles()) == want
    assert (res.counters.future, res.counters.late) == (1, 0)


def test_a_tick_ahead_within_the_open_minute_is_refused_on_the_fast_path_too():
    wall = Wall(at(10, 0, 10))
    engine = CandleEngine(now=wall)
    engine.update(tk(at(10, 0, 5), 100, 10))  # opens the 10:00 minute: the fast path's target
    assert engine.update(tk(at(10, 0, 15.5), 150, 900)) is None  # 5.5 s ahead, same minute
    f = engine.forming(RELIANCE)
    assert (f.high, f.close, f.volume, f.ticks) == (100, 100, 0, 1)
    assert engine.clock == engine.tick_clock == at(10, 0, 5) and engine.counters.future == 1
    c = engine.update(tk(at(10, 0, 15), 101, 30))  # exactly 5 s ahead: a good tick
    assert (c.high, c.close, c.volume, c.ticks) == (101, 101, 20, 2)
    assert engine.clock == at(10, 0, 15) and engine.counters.future == 1


@pytest.mark.parametrize("ahead", [5.0, 0.0, 0.25])
@pytest.mark.parametrize("frames", [False, True])
def test_max_ahead_s_is_a_bound_that_is_allowed_and_not_a_hair_more(ahead, frames):
    now = at(11, 0, 0)
    limit = now + ahead
    ticks = [tk(math.nextafter(limit, math.inf), 99, 5, token=INFY), tk(limit, 100, 10),
             tk(math.nextafter(limit, math.inf), 101, 20)]
    engine = CandleEngine(now=lambda: now, max_ahead_s=ahead)
    if frames:
        engine.update_columns(TickColumns.from_ticks(ticks))
    else:
        for t in ticks:
            engine.update(t)
    assert engine.clock == limit and engine.counters.future == 2 and engine.last_limit == limit
    assert engine.tokens() == [RELIANCE]  # a refused tick leaves no trace, not even a state
    assert engine.forming(RELIANCE).close == 100


def test_a_wall_clock_stepped_back_still_bounds_every_tick():
    wall = Wall(at(10, 0, 20))
    engine = CandleEngine(now=wall)
    engine.update(tk(at(10, 0, 24), 100, 10))  # 4 s ahead: good
    wall.t = at(10, 0, 10)  # the machine's clock is stepped back 10 s (NTP)
    assert engine.update(tk(at(10, 0, 22), 101, 20)) is None  # not newer, but 12 s ahead of now
    assert engine.update(tk(at(10, 0, 15), 102, 30)).close == 102  # within the bound: good
    assert engine.counters.future == 1 and engine.clock == engine.tick_clock == at(10, 0, 24)


def test_ltp_and_quote_ticks_stamped_at_receipt_mix_with_full_ones_and_a_poisoned_one():
    from livecli.kite.codec import decode_frame, encode_frame, encode_full, encode_ltp, encode_quote

    def full(token, price, volume, ts):
        return encode_full(token, price, 1, price, volume, 0, 0, price, price, price, price,
                           int(ts), 0, 0, 0, int(ts), [], [])

    def quote(token, price, volume):
        return encode_quote(token, price, 1, price, volume, 0, 0, price, price, price, price)

    wall = Wall(0)
    engine = CandleEngine(now=wall)
    received = []
    cols = []
    frames = [  # (received at, packets): Kite stamps full packets; ltp/quote ones are ours
        (at(10, 0, 4.5), [full(INFY, 1500, 100, at(10, 0, 3)), quote(RELIANCE, 2500, 50),
                          encode_ltp(NIFTY, 22000), full(INFY, 1600, 10**6, POISON),
                          full(INFY, 1501, 120, at(10, 0, 4))]),
        (at(10, 0, 40.2), [encode_ltp(NIFTY, 22010), quote(RELIANCE, 2501, 70),
                           full(INFY, 1499, 130, at(10, 0, 39)),
                           full(INFY, 1700, 140, at(10, 0, 40.2) + 60)]),  # a minute ahead
        (at(10, 1, 3.1), [full(INFY, 1502, 150, at(10, 1, 2)), encode_ltp(NIFTY, 21990),
                          quote(RELIANCE, 2499, 90)]),
    ]
    for at_s, packets in frames:
        frame = decode_frame(encode_frame(packets), at_s)
        wall.t = at_s + 0.05  # livecli reads the clock a moment after the frame arrived
        c = frame.columns()
        engine.update_columns(c)
        cols.append(c)
        received += [wall.t] * len(c)
    engine.close_all()
    got = {(t, iso(c.start)[11:16]): (c.open, c.high, c.low, c.close, c.volume, c.ticks)
           for t in (RELIANCE, INFY, NIFTY) for c in engine.history(t)}
    assert got == {
        (RELIANCE, "10:00"): (2500, 2501, 2500, 2501, 20, 2),
        (RELIANCE, "10:01"): (2499, 2499, 2499, 2499, 20, 1),
        (INFY, "10:00"): (1500, 1501, 1499, 1499, 30, 3),
        (INFY, "10:01"): (1502, 1502, 1502, 1502, 20, 1),
        (NIFTY, "10:00"): (22000, 22010, 22000, 22010, 0, 2),
        (NIFTY, "10:01"): (21990, 21990, 21990, 21990, 0, 1),
    }
    assert (engine.counters.future, engine.counters.late) == (2, 0)
    # The rebuild, given the same receipt times, takes the same decisions.
    allcols = TickColumns(*([x for c in cols for x in getattr(c, f)] for f in (
        "token", "time", "price", "volume", "day_high", "day_low", "oi")))
    res = rebuild_arrays(allcols, [1], received=received)
    assert _keyed(res.to_candles()) == _keyed(
        [c for t in (RELIANCE, INFY, NIFTY) for c in engine.history(t)])
    assert res.counters.future == 2


def test_without_now_nothing_is_ever_ahead_and_a_past_day_replays_unchanged():
    import time as _time

    day = _a_day(20)
    plain = CandleEngine([5])
    want = _keyed(_feed(plain, Wall(0), day, 5))
    assert len(want) == 2 * (20 + 4)  # every minute and every 5 minutes of both
    # A recorded day replayed today, guarded by the real wall clock: a past time is never ahead.
    replay = CandleEngine([5], now=_time.time)
    assert _keyed(_feed(replay, Wall(0), day, 5)) == want
    assert replay.counters.future == plain.counters.future == 0
    assert replay.counters == plain.counters


def test_advance_never_moves_the_clock_past_now_plus_max_ahead():
    wall = Wall(at(10, 0, 30))
    engine = CandleEngine(now=wall)
    closed = []
    engine.on_close(closed.append)
    engine.update(tk(at(10, 0, 5), 100, 10))
    engine.advance(POISON)  # e.g. a clock a session computed from a poisoned packet
    assert engine.clock == at(10, 0, 35) and closed == []
    wall.t = at(10, 0, 57)
    engine.advance(POISON)
    assert engine.clock == at(10, 1, 2) and len(closed) == 1  # 10:00 closed on time, not before
    assert engine.tick_clock == at(10, 0, 5)  # advance() is not a tick
    engine.update(tk(at(10, 1, 1), 101, 20))  # in flight: its minute is open, not late
    assert engine.counters.late == 0
    assert (engine.tick_clock, engine.clock) == (at(10, 1, 1), at(10, 1, 2))
    engine.close_all()  # the end of a replay closes everything, whatever the wall clock says
    assert len(closed) == 2 and engine.clock == math.inf


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_max_ahead_s_must_be_a_number_of_seconds(bad):
    with pytest.raises(ValueError, match="max_ahead_s"):
        CandleEngine(now=lambda: 0.0, max_ahead_s=bad)


def test_a_candle_waiting_out_the_grace_is_readable_until_it_closes():
    """Rule 8's grace: for its 2 s after a boundary the old minute is neither forming nor closed;
    a reader (a chart) must still find it, or every boundary shows a hole."""
    engine = CandleEngine([5], grace_s=2.0)
    closed = []
    engine.on_close(closed.append)
    engine.update(tk(at(9, 15, 10), 100.0, 10))
    engine.update(tk(at(9, 16, 0.5), 101.0, 20))  # the next minute, inside the grace
    assert not closed
    waiting = engine.awaiting_close(RELIANCE, 1)
    assert [(c.start, c.close, c.volume) for c in waiting] == [(at(9, 15), 100.0, 10)]
    assert engine.forming(RELIANCE, 1).start == at(9, 16)
    assert engine.awaiting_close(RELIANCE, 5) == []  # 09:15-09:20 still forms
    engine.update(tk(at(9, 16, 3), 102.0, 30))  # the grace is over: 09:15 closes
    assert [c.start for c in closed] == [at(9, 15)]
    assert engine.awaiting_close(RELIANCE, 1) == []
