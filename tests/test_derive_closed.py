"""When a derived candle is closed: every minute in it closed, and its whole interval over.

"Over" is judged by the recording (core/derive.py's docstring): a closed minute of the same
exchange on the same day ends at or after the candle's end. Property tests compare derive()
with a by-hand oracle on random minutes of several instruments and exchanges, and check that
derivation from some instruments plus the store's clocks equals derivation from all of them;
the edge tests pin the cases a trader meets.
"""

from __future__ import annotations

from datetime import date, datetime, time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecli.core.candles import Candle
from livecli.core.derive import CandleArrays, derive
from livecli.core.timeutil import IST, at_ist

INFY, TCS, CRUDE = 408065, 2953217, 60000263  # NSE, NSE, MCX (segment byte 7)
EXCHANGE = {INFY: "NSE", TCS: "NSE", CRUDE: "MCX"}
HOURS = {"NSE": (time(9, 15), time(15, 30)), "MCX": (time(9, 0), time(23, 30))}
DAYS = (date(2025, 1, 6), date(2025, 1, 7))


def minute(tok: int, d: date, hm: str, *, closed: bool = True, synthetic: bool = False,
           price: float = 100.0) -> Candle:
    t = int(at_ist(d, time.fromisoformat(hm)))
    return Candle(tok, 1, t, price, price + 1, price - 1, price, 10, None, 1,
                  synthetic=synthetic, closed=closed)


def closed_by_start(minutes: list[Candle], interval: int, tokens=None, **kw) -> dict:
    got = derive(CandleArrays.from_candles(minutes), interval, **kw)
    return {
        (int(t), datetime.fromtimestamp(int(s), IST).strftime("%m-%d %H:%M")): bool(c)
        for t, s, c in zip(got.token, got.start, got.closed, strict=True)
        if tokens is None or int(t) in tokens
    }


# --- the oracle --------------------------------------------------------------------------------
def clocks_by_hand(minutes: list[Candle]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for c in minutes:
        if c.closed and not c.synthetic:
            d = datetime.fromtimestamp(c.start, IST).date()
            key = (EXCHANGE[c.instrument_token], int(at_ist(d, time(0, 0))))
            out[key] = max(out.get(key, c.start + 60), c.start + 60)
    return out


def oracle_closed(minutes: list[Candle], interval: int) -> dict[tuple[int, int], bool]:
    clocks = clocks_by_hand(minutes)
    out: dict[tuple[int, int], bool] = {}
    for c in minutes:
        if c.synthetic:
            continue
        d = datetime.fromtimestamp(c.start, IST).date()
        ex = EXCHANGE[c.instrument_token]
        open_at = at_ist(d, HOURS[ex][0])
        close_at = at_ist(d, HOURS[ex][1])
        bucket = int(open_at + (c.start - open_at) // (interval * 60) * interval * 60)
        end = min(bucket + interval * 60, close_at)
        over = end <= clocks.get((ex, int(at_ist(d, time(0, 0)))), float("-inf"))
        key = (c.instrument_token, bucket)
        out[key] = out.get(key, True) and c.closed and over
    return out


@st.composite
def recordings(draw) -> list[Candle]:
    out = []
    for tok in (INFY, TCS, CRUDE):
        open_t, close_t = HOURS[EXCHANGE[tok]]
        for d in DAYS[: draw(st.integers(1, 2))]:
            first = int(at_ist(d, open_t)) // 60
            last = int(at_ist(d, close_t)) // 60 - 1
            # A recording reaches some minute of the day; the instrument trades in some of them.
            reach = draw(st.integers(first, last))
            picked = draw(st.sets(st.integers(first, reach), max_size=40))
            for m in sorted(picked):
                kind = draw(st.sampled_from(["closed"] * 8 + ["forming", "synthetic"]))
                out.append(Candle(tok, 1, m * 60, 1.0, 2.0, 0.5, 1.5, 3, None, 1,
                                  synthetic=kind == "synthetic", closed=kind != "forming"))
    return out


INTERVALS = st.sampled_from([2, 3, 5, 7, 10, 15, 30, 45, 60, 75, 375])
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(recordings(), INTERVALS)
def test_closed_matches_the_hand_oracle(minutes, interval):
    got = derive(CandleArrays.from_candles(minutes), interval, exchanges=EXCHANGE)
    have = {(int(t), int(s)): bool(c) for t, s, c in zip(got.token, got.start, got.closed,
                                                         strict=True)}
    assert have == oracle_closed(minutes, interval)


@SETTINGS
@given(recordings(), INTERVALS, st.sets(st.sampled_from([INFY, TCS, CRUDE]), min_size=1))
def test_some_instruments_with_the_stores_clocks_equal_all_of_them(minutes, interval, tokens):
    whole = derive(CandleArrays.from_candles(minutes), interval, exchanges=EXCHANGE)
    some = derive(CandleArrays.from_candles([c for c in minutes if c.instrument_token in tokens]),
                  interval, exchanges=EXCHANGE, clocks=clocks_by_hand(minutes))
    keep = np.flatnonzero(np.isin(whole.token, list(tokens)))
    want = whole.take(keep)
    for name in ("token", "start", "open", "high", "low", "close", "volume", "ticks", "closed"):
        assert getattr(some, name).tolist() == getattr(want, name).tolist(), name


def test_without_the_exchanges_map_the_segment_names_the_exchange():
    d = DAYS[0]
    m = [minute(INFY, d, "09:15"), minute(CRUDE, d, "09:40")]
    # CRUDE (MCX) moving on says nothing about NSE: INFY's 5-minute candle is not over.
    assert closed_by_start(m, 5) == {(INFY, "01-06 09:15"): False, (CRUDE, "01-06 09:40"): False}


# --- edges ---------------------------------------------------------------------------------------
def test_a_candle_holding_the_minutes_before_a_stream_stopped_is_not_closed():
    d = DAYS[0]
    m = [minute(INFY, d, "09:15"), minute(INFY, d, "09:16")]
    assert closed_by_start(m, 5) == {(INFY, "01-06 09:15"): False}
    # The stream had got to 09:17 when it stopped: that minute forming, the candle still open.
    assert closed_by_start([*m, minute(INFY, d, "09:17", closed=False)], 5) == {
        (INFY, "01-06 09:15"): False}
    # Once a minute ending at 09:20 is closed, the interval is over.
    assert closed_by_start([*m, minute(INFY, d, "09:19")], 5) == {(INFY, "01-06 09:15"): True}


def test_a_forming_minute_keeps_its_candle_open_whatever_the_clock():
    d = DAYS[0]
    m = [minute(INFY, d, "09:15"), minute(INFY, d, "09:16", closed=False),
         minute(TCS, d, "09:15"), minute(TCS, d, "09:40")]
    assert closed_by_start(m, 5, {INFY}) == {(INFY, "01-06 09:15"): False}


def test_an_illiquid_instruments_candle_closes_when_its_exchange_moves_on():
    d = DAYS[0]
    quiet = [minute(INFY, d, "09:16")]
    assert closed_by_start(quiet, 5) == {(INFY, "01-06 09:15"): False}
    busy = [minute(TCS, d, hm) for hm in ("09:15", "09:18", "09:21")]
    assert closed_by_start(quiet + busy, 5, {INFY}) == {(INFY, "01-06 09:15"): True}
    # Only the whole store knows: from INFY's minutes alone, the store's clocks say so.
    clocks = {("NSE", int(at_ist(d, time(0, 0)))): int(at_ist(d, time(9, 22)))}
    assert closed_by_start(quiet, 5, clocks=clocks) == {(INFY, "01-06 09:15"): True}
    # Another exchange moving on proves nothing.
    assert closed_by_start([*quiet, minute(CRUDE, d, "11:00")], 5, {INFY}) == {
        (INFY, "01-06 09:15"): False}


def test_the_last_candle_of_the_day_is_over_at_the_close():
    d = DAYS[0]
    m = [minute(INFY, d, "15:16"), minute(INFY, d, "15:28")]
    assert closed_by_start(m, 60) == {(INFY, "01-06 15:15"): False}  # 15:29 still to come
    m.append(minute(INFY, d, "15:29"))
    assert closed_by_start(m, 60) == {(INFY, "01-06 15:15"): True}  # cut at 15:30
    assert closed_by_start(m, 375) == {(INFY, "01-06 09:15"): True}


def test_one_day_never_closes_another():
    m = [minute(INFY, DAYS[0], "15:16"), minute(INFY, DAYS[1], "09:15"),
         minute(INFY, DAYS[1], "10:30")]
    got = closed_by_start(m, 60)
    assert got == {(INFY, "01-06 15:15"): False, (INFY, "01-07 09:15"): True,
                   (INFY, "01-07 10:15"): False}


def test_synthetic_minutes_neither_count_nor_move_the_clock():
    d = DAYS[0]
    m = [minute(INFY, d, "09:15"), minute(INFY, d, "09:19", synthetic=True)]
    assert closed_by_start(m, 5) == {(INFY, "01-06 09:15"): False}


def test_one_minute_candles_keep_their_own_flag():
    d = DAYS[0]
    m = [minute(INFY, d, "09:15"), minute(INFY, d, "09:16", closed=False)]
    assert closed_by_start(m, 1) == {(INFY, "01-06 09:15"): True, (INFY, "01-06 09:16"): False}


def test_arrays_without_closed_are_all_closed_and_survive_take():
    a = CandleArrays(*(np.zeros(3, np.int64) for _ in range(9)), np.zeros(3, np.bool_),
                     np.zeros(3, np.bool_))
    assert a.closed.tolist() == [True, True, True]
    b = a.take(np.array([0, 2]))
    assert b.closed.tolist() == [True, True] and len(CandleArrays.empty().closed) == 0
