"""The stand-in's instruments, market model and clock, without sockets."""

from __future__ import annotations

import csv
import io
from datetime import date, time
from pathlib import Path

import numpy as np
import pytest

from livecli.core.sessions import session_for
from livecli.core.timeutil import at_ist, day_of, day_start
from livecli.errors import UsageError
from livecli.sim.clock import SimClock, parse_sim_date, parse_start
from livecli.sim.market import CHUNK_S, Market
from livecli.sim.universe import (
    CSV_COLUMNS,
    NIFTY_50,
    NIFTY_BANK,
    builtin_universe,
    instruments_csv,
    synthetic_universe,
)

MOCKS = Path(__file__).resolve().parents[2] / "shared" / "kite-mocks"
DAY = date(2025, 12, 10)  # a Wednesday
D = day_of(DAY)
RELIANCE, INFY, GANGOTRI = 738561, 408065, 3419393


@pytest.fixture(scope="module")
def universe():
    return builtin_universe(DAY)


@pytest.fixture(scope="module")
def market(universe):
    return Market(universe, seed=1)


# --- universe ----------------------------------------------------------------------------------
def test_builtin_universe_uses_real_tokens_and_segment_bytes(universe):
    by_sym = {i.tradingsymbol: i for i in universe}
    assert by_sym["RELIANCE"].instrument_token == 738561
    assert by_sym["INFY"].instrument_token == 408065
    assert by_sym["TCS"].instrument_token == 2953217
    assert by_sym["HDFCBANK"].instrument_token == 341249
    assert by_sym["NIFTY 50"].instrument_token == NIFTY_50 == 256265
    assert by_sym["NIFTY BANK"].instrument_token == NIFTY_BANK == 260105
    assert by_sym["RELIANCE"].exchange_token == 2885
    segs = {i.segment: i.instrument_token & 0xFF for i in universe}
    assert segs == {"NSE": 1, "INDICES": 9, "NFO-FUT": 2, "CDS-FUT": 3, "MCX-FUT": 7}
    assert sum(1 for i in universe if i.segment == "NSE") >= 50
    assert len({i.instrument_token for i in universe}) == len(universe)
    assert by_sym["NIFTY 50"].exchange == "NSE" and by_sym["NIFTY 50"].is_index
    # Monthly contracts are named for the simulated month, as Kite names them.
    assert "NIFTY25DECFUT" in by_sym and "CRUDEOIL25DECFUT" in by_sym
    assert by_sym["USDINR25DECFUT"].tick_size == 0.0025
    assert by_sym["NIFTY25DECFUT"].expiry == date(2025, 12, 30)  # last Tuesday
    assert builtin_universe(date(2025, 12, 31))[-6].tradingsymbol == "NIFTY26JANFUT"


def test_instrument_csv_has_kites_columns_and_formats(universe):
    text = instruments_csv(universe)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    rel = next(r for r in rows if r["tradingsymbol"] == "RELIANCE")
    assert rel == {
        "instrument_token": "738561", "exchange_token": "2885", "tradingsymbol": "RELIANCE",
        "name": "RELIANCE INDUSTRIES", "last_price": "0.0", "expiry": "", "strike": "0.0",
        "tick_size": "0.05", "lot_size": "1", "instrument_type": "EQ", "segment": "NSE",
        "exchange": "NSE",
    }
    fut = next(r for r in rows if r["tradingsymbol"] == "NIFTY25DECFUT")
    assert fut["expiry"] == "2025-12-30" and fut["segment"] == "NFO-FUT"


def test_instrument_csv_matches_the_kite_mock_header_and_rows():
    if not MOCKS.is_dir():
        pytest.skip("../shared/kite-mocks is absent (a user's clone has none)")
    mock = (MOCKS / "instruments_nse.csv").read_text().splitlines()
    ours = instruments_csv(builtin_universe(DAY)).splitlines()
    assert ours[0] == mock[0]
    # A row for an instrument both lists hold is formatted like Kite's (ADANIPORTS, same token).
    mock_row = next(r for r in mock if r.startswith("3861249,"))
    our_row = next(r for r in ours if r.startswith("3861249,"))
    assert our_row == mock_row


def test_synthetic_universe_is_large_valid_and_distinct():
    syn = synthetic_universe(10_000)
    toks = [i.instrument_token for i in syn]
    assert len(set(toks)) == 10_000
    assert all(t & 0xFF == 1 for t in toks)
    builtin = {i.instrument_token for i in builtin_universe(DAY)}
    assert not builtin & set(toks)
    assert synthetic_universe(5) == synthetic_universe(5)
    rates = np.array([i.rate for i in syn])
    assert (rates >= 1.0).any() and (rates < 0.1).any()


# --- market ------------------------------------------------------------------------------------
def _sig(b):
    return (b.time_ms.tolist(), b.price.tolist(), b.volume.tolist(), b.oi.tolist())


def test_same_seed_same_ticks_regardless_of_query_order(universe, market):
    full = market.day_ticks(RELIANCE, D)
    fresh = Market(universe, seed=1)
    # Ask the fresh market for a late slice first: chunks are generated in another order.
    t0 = at_ist(DAY, time(14, 0))
    late = fresh.ticks_between(RELIANCE, t0, t0 + 600)[0]
    i = int(np.searchsorted(full.time_ms, late.time_ms[0]))
    assert _sig(full.slice(i, i + len(late))) == _sig(late)
    assert _sig(fresh.day_ticks(RELIANCE, D)) == _sig(full)


def test_chunks_made_many_at_once_equal_chunks_made_one_by_one(universe):
    # The warm-up makes many instruments' chunks in one vectorised pass, a subscription one at
    # a time: which of them made a chunk must never change what it holds.
    ins = universe + synthetic_universe(30, seed=4)
    alone, together = Market(ins, seed=3), Market(ins, seed=3)
    plan = together.plan(RELIANCE, D)
    toks = [i.instrument_token for i in ins]
    assert together.prepare(toks, plan.open_ms / 1000 + 5, batch=16) >= len(toks)
    assert together.prepare(toks, plan.open_ms / 1000 + 1900, batch=16) >= 6 * len(toks)
    # The day's last chunk of quiet names (it must end on the close target) and of futures (OI).
    last = [GANGOTRI, 5001473, 4419329, 1707521, *(i.instrument_token for i in universe
                                                   if i.has_oi and i.exchange == "NFO")]
    assert together.prepare(last, plan.close_ms / 1000 - 1, batch=4) > 0
    fields = ("time_ms", "price", "ltq", "volume", "turnover", "high", "low", "ltt_ms", "oi",
              "oi_high", "oi_low", "seq")
    for tok, ks in [*((t, (0, 3, 6)) for t in toks), *((t, (plan.n_chunks - 1,)) for t in last)]:
        for k in ks:  # 3: made only on the way, for its end state
            a, b = alone._chunk(alone.plan(tok, D), k), together._chunk(together.plan(tok, D), k)
            for f in fields:
                assert np.array_equal(getattr(a, f), getattr(b, f)), (tok, k, f)


def test_a_tape_that_meets_unmade_chunks_makes_them_in_batches_and_the_same(universe,
                                                                          monkeypatch):
    # A loaded machine's warm-up fell behind; the tapes then made 3000 instruments' next chunk
    # one by one, the link fell silent for seconds and the client's clock rightly moved on
    # (half the ticks of the 9000-instrument load test late). Now a tape makes what it meets
    # in vectorised batches, and what it encodes is the same as chunks made one at a time.
    from livecli.sim import chunkgen
    from livecli.sim.tape import build_tape

    ins = universe + synthetic_universe(300, seed=4)
    subs = [(i.instrument_token, "full") for i in ins]
    plan = Market(ins, seed=3).plan(RELIANCE, D)
    boundary = plan.open_ms / 1000 + CHUNK_S  # the stretch crosses into the second chunk
    lazy = Market(ins, seed=3)
    for tok, _ in subs:  # the first chunk exists, as the warm-up left it; the second does not
        lazy._chunk(lazy.plan(tok, D), 0)
    fresh = Market(ins, seed=3)
    fresh.prepare([t for t, _ in subs], boundary - 30)
    sizes: list[int] = []
    real = chunkgen.generate
    monkeypatch.setattr(chunkgen, "generate", lambda seed, specs: sizes.append(len(specs))
                        or real(seed, specs))
    tape = build_tape(fresh, subs, frozenset(), boundary - 30, boundary + 30, 1)
    assert tape is not None and len(tape) > len(subs)
    assert sum(sizes) == len(ins) and len(sizes) < len(ins) / 10, sizes  # batches, not one each
    monkeypatch.setattr(chunkgen, "generate", real)
    want = build_tape(lazy, subs, frozenset(), boundary - 30, boundary + 30, 1)
    assert want is not None
    assert tape.packets.data == want.packets.data
    assert np.array_equal(tape.packets.time_ms, want.packets.time_ms)


def test_the_warm_up_generates_ahead_of_the_links_when_they_are_behind_the_clock(universe):
    # On a loaded machine the links fell minutes behind the stand-in's clock; a warm-up that
    # followed the clock made chunks nobody needed yet, pushed out of the cache the ones the
    # links were about to read, and every tape made them again, one link silent for seconds.
    import time as wall

    from livecli.sim.warmup import Warmup

    ins = universe + synthetic_universe(50, seed=4)
    m = Market(ins, seed=3)
    plan = m.plan(RELIANCE, D)
    open_s = plan.open_ms // 1000
    clock = SimClock(DAY, speed=1, start=parse_start("11:00"), real=lambda: 0.0)
    behind = open_s + 90  # where the links are: the day's first chunk
    w = Warmup(m, clock, demand=lambda: behind).start()
    try:
        deadline = wall.monotonic() + 30
        toks = [i.instrument_token for i in ins]
        while not all((t, D, 0) in m._chunks for t in toks):
            assert wall.monotonic() < deadline, "the links' chunk not made"
            w._stop.wait(0.02)
        # The next chunk too (within AHEAD_S of the links), and nothing at the clock's 11:00.
        while not all((t, D, 1) in m._chunks for t in toks):
            assert wall.monotonic() < deadline, "the links' next chunk not made"
            w._stop.wait(0.02)
    finally:
        w.stop()
    at_clock = (clock.now() - open_s) // CHUNK_S
    assert not any(k[2] >= at_clock for k in m._chunks), "made at the clock, ahead of the links"


def test_history_reads_leave_the_live_chunks_in_the_cache(universe):
    # A stream of 9000 instruments warms up from the stand-in's historical API, instrument by
    # instrument, five days each: every read cached its days' chunks and pushed out the next
    # chunks the warm-up had made for the links. At the next chunk edge each link's tape made
    # 3000 instruments' chunk itself (2.5 CPU-s each, 8.6 s of silence on a loaded machine)
    # and the session rightly called the ticks that then came late.
    ins = universe + synthetic_universe(20, seed=4)
    toks = [i.instrument_token for i in ins]
    m = Market(ins, seed=3, cache_chunks=2 * len(ins) + 10)
    plan = m.plan(RELIANCE, D)
    now = plan.open_ms / 1000 + 3 * CHUNK_S + 100
    m.prepare(toks, now)
    m.prepare(toks, now + CHUNK_S)  # the next chunk, as the warm-up makes it ahead
    for tok in toks:  # the links read their current chunks: each one is hot
        m.ticks_between(tok, now - 1, now)
    live = {k for k in m._chunks if k[1] == D}
    carries = set(m._carries)
    hot = dict(m._hot)
    fresh = Market(ins, seed=3)
    for tok in (RELIANCE, INFY, GANGOTRI):
        for day in (D - 1, D - 2, D):
            got = m.day_ticks(tok, day, None if day < D else now)
            want = fresh.day_ticks(tok, day, None if day < D else now)
            assert (got is None) == (want is None)
            if got is not None:
                assert np.array_equal(got.time_ms, want.time_ms)
                assert np.array_equal(got.price, want.price)
                assert np.array_equal(got.volume, want.volume)
    assert live <= set(m._chunks), "history pushed the live chunks out"
    assert set(m._carries) == carries and m._hot == hot


def test_different_seed_different_ticks(universe, market):
    other = Market(universe, seed=2)
    a, b = market.day_ticks(RELIANCE, D), other.day_ticks(RELIANCE, D)
    assert a.price[:200].tolist() != b.price[:200].tolist()


def test_ticks_are_a_plausible_trading_day(universe, market):
    s = session_for("NSE")
    for ins in universe:
        b = market.day_ticks(ins.instrument_token, D)
        sess = session_for(ins.exchange)
        open_ms, close_ms = sess.open_at(D) * 1000, sess.close_at(D) * 1000
        assert b.time_ms[0] == open_ms, ins.tradingsymbol  # the auction prints at the open
        assert (b.time_ms < close_ms).all() and (np.diff(b.time_ms) >= 0).all()
        assert (b.price >= 1).all()
        assert (np.diff(b.volume) >= 0).all()
        assert (b.high >= b.price).all() and (b.low <= b.price).all()
        assert b.high[-1] == b.price.max() and b.low[-1] == b.price.min()
        assert b.open_ticks == b.price[0]
        if ins.has_oi:
            assert (b.oi > 0).all() and (b.oi_high >= b.oi).all() and (b.oi_low <= b.oi).all()
        else:
            assert (b.oi == 0).all()
        # Daily move stays sane (no runaway walk).
        assert 0.8 < b.price[-1] / b.price[0] < 1.25, ins.tradingsymbol
    assert s.length_s == 22_500


def test_liquid_names_tick_often_illiquid_rarely(market):
    rel = market.day_ticks(RELIANCE, D)
    gan = market.day_ticks(GANGOTRI, D)
    per_s_rel = len(rel) / 22_500
    assert 1.5 < per_s_rel <= 2.0
    gaps = np.diff(gan.time_ms) / 1000
    assert 10 < float(np.median(gaps)) < 90
    # Never more than 2 ticks in one second for a liquid name.
    sec = rel.time_ms // 1000
    assert np.bincount(sec - sec[0]).max() <= 3


def test_prices_lie_on_the_tick_grid_and_prev_close_is_yesterdays_last(universe, market):
    yesterday = market.prev_trading_day(D)
    for sym in ("RELIANCE", "NIFTY 50", "USDINR25DECFUT"):
        ins = next(i for i in universe if i.tradingsymbol == sym)
        b = market.day_ticks(ins.instrument_token, D)
        y = market.day_ticks(ins.instrument_token, yesterday)
        assert b.prev_close_ticks == y.price[-1]
        prices = b.price / ins.ticks_per_unit
        assert np.allclose(np.round(prices / ins.tick_size), prices / ins.tick_size)


def test_weekends_and_outside_hours_have_no_ticks(market):
    sat = day_of(date(2025, 12, 13))
    assert market.day_ticks(RELIANCE, sat) is None
    assert market.prev_trading_day(day_of(date(2025, 12, 15))) == day_of(date(2025, 12, 12))
    pre = at_ist(DAY, time(9, 14, 59))
    assert market.ticks_between(RELIANCE, pre - 3600, pre) == []
    assert market.last_tick(RELIANCE, pre) is None
    after = at_ist(DAY, time(16, 0))
    assert market.ticks_between(RELIANCE, after, after + 3600) == []
    last = market.last_tick(RELIANCE, after)
    assert last is not None and last.time_ms[0] < session_for("NSE").close_at(D) * 1000
    # MCX trades into the evening.
    mcx = next(i for i in market.instruments if i.exchange == "MCX").instrument_token
    assert market.ticks_between(mcx, after, after + 60)


def test_ticks_between_is_exclusive_inclusive_and_chunk_seamless(market):
    full = market.day_ticks(INFY, D)
    open_s = session_for("NSE").open_at(D)
    a, b = open_s + CHUNK_S - 7.5, open_s + CHUNK_S + 7.5  # spans a chunk boundary
    blk = market.ticks_between(INFY, a, b)[0]
    want = (full.time_ms > a * 1000) & (full.time_ms <= b * 1000)
    assert blk.time_ms.tolist() == full.time_ms[want].tolist()
    assert blk.volume.tolist() == full.volume[want].tolist()
    t = int(full.time_ms[100]) / 1000
    assert market.ticks_between(INFY, t, t + 0.0005) == []
    assert market.ticks_between(INFY, t - 0.001, t)[0].time_ms[-1] == full.time_ms[100]


def test_tick_columns_feed_the_candle_engine(universe, market):
    from livecli.core.batch import rebuild

    b = market.day_ticks(RELIANCE, D)
    cols = market.tick_columns([b])
    candles = rebuild(cols, ["1min"], {RELIANCE: ("RELIANCE", "NSE")})
    assert len(candles) == 375
    assert candles[0].start == session_for("NSE").open_at(D)
    assert sum(c.volume for c in candles) == int(b.volume[-1])
    assert candles[-1].close == b.price[-1] / 20
    assert not any(c.partial for c in candles)


# --- clock -------------------------------------------------------------------------------------
def test_clock_runs_at_speed_from_the_open():
    fake = [100.0]
    c = SimClock(DAY, speed=60, real=lambda: fake[0])
    assert c.now() == at_ist(DAY, time(9, 15))
    fake[0] += 2.5
    assert c.now() == at_ist(DAY, time(9, 17, 30))
    assert c.real_seconds_until(at_ist(DAY, time(9, 18, 30))) == pytest.approx(1.0)
    c2 = SimClock(DAY, speed=1, start=parse_start("14:00"), real=lambda: 0.0)
    assert c2.now() == at_ist(DAY, time(14, 0))


def test_sim_date_today_weekend_and_given():
    sat_noon = day_start(day_of(date(2025, 12, 13))) + 12 * 3600
    d, note = parse_sim_date(None, now_s=sat_noon)
    assert d == date(2025, 12, 12) and "weekend" in note and "Friday" in note
    wed = day_start(D) + 3600
    assert parse_sim_date(None, now_s=wed)[0] == DAY
    assert parse_sim_date("2025-12-13")[0] == date(2025, 12, 13)  # given: used as it is
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        parse_sim_date("13/12/2025")
    with pytest.raises(UsageError):
        parse_start("25:00")
    with pytest.raises(UsageError):
        SimClock(DAY, speed=0)
