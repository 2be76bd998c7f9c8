"""The streaming candle engine: ticks in, one at a time, candles out as they form and close.

This is CANDLES.md in code, for the live session. Design choices, and why:

* Only the 1-minute candle is touched per tick. Longer intervals are folded from 1-minute candles
  as those close, so the work per tick does not grow with the number of intervals, and every
  interval agrees with the 1-minute candles by construction ("One answer everywhere").
* The feed's clock (the highest time seen, moved on by `advance()` while the feed is quiet) closes
  candles, through a heap of due times; nothing waits for an instrument's next tick (rule 8).
* The feed's clock is guarded (rule 8): given `now` (the wall clock for Kite, the simulated
  market's clock for the stand-in), a tick stamped more than `max_ahead_s` ahead of `now()` is
  counted in `counters.future` and touches nothing, and `advance()` never goes past that bound
  either. One packet stamped 2100 would otherwise make every later tick late. `now()` is read
  once per call (per frame), and only a tick newer than any before is compared with the bound,
  so the hot loop pays nothing for it. Without `now` nothing is ever ahead: batch rebuilds and
  replays of recorded days behave as they always did.
* `update_columns` runs a single loop over a decoded frame's columns with a fast path for the
  common case (the tick falls in the instrument's open minute): that loop is the hot path.
* Candle-close callbacks are isolated: an exception is counted and kept, never propagated.

Per tick, in order: a tick ahead of the bound is counted and dropped (rule 8); the clock moves;
a tick after the session close is counted and dropped; a tick whose minute has closed is late
(rule 9); a new IST day resets the instrument; a cumulative volume below the last good one is bad
(rule 7); a trade is a volume rise, or for ticks without volume a price different from the
previous accepted tick, or the first tick of the day (rule 5).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from livecli.core import backfill
from livecli.core.candles import ORIGIN_CODE, Candle
from livecli.core.history import CandleHistory
from livecli.core.intervals import ONE_MINUTE, Interval, parse_interval
from livecli.core.sessions import Session, exchange_of_token, session_for
from livecli.core.ticks import Tick, TickColumns
from livecli.core.timeutil import DAY_S, IST_OFFSET_S

CandleCallback = Callable[[Candle], None]

_NAN = math.nan


@dataclass(slots=True)
class EngineCounters:
    """What the engine did with the ticks it was given (for the dashboard and `status`)."""

    ticks: int = 0
    trades: int = 0
    book_only: int = 0
    late: int = 0
    bad: int = 0
    future: int = 0  # stamped more than max_ahead_s ahead of now(): never moved the clock
    after_close: int = 0
    candles_closed: int = 0
    callback_errors: int = 0
    last_callback_error: str | None = None


class _Inst:
    """Per-instrument state for the current IST day."""

    __slots__ = (
        "buckets",
        "ce",
        "close_s",
        "cs",
        "cur",
        "day",
        "dh",
        "dl",
        "early_end",
        "exchange",
        "first_partial",
        "forming",
        "last_real",
        "lp",
        "lv",
        "open_s",
        "session",
        "symbol",
        "token",
    )

    def __init__(self, token: int, symbol: str, exchange: str, session: Session) -> None:
        self.token = token
        self.symbol = symbol
        self.exchange = exchange
        self.session = session
        self.day = -1
        self.open_s = 0
        self.close_s = 0
        self.early_end = 0  # open + 60: a first volume before it counts from zero (rule 7)
        self.cur: Candle | None = None  # the newest open 1-minute candle: the fast path's target
        self.cs = 0  # cur's [start, end); both 0 when there is no cur
        self.ce = 0
        self.buckets: dict[int, Candle] = {}  # every open 1-minute candle, by start
        self.forming: dict[int, Candle] = {}  # longer intervals: interval_min -> forming candle
        self.last_real: dict[int, Candle] = {}  # interval_min -> last closed real candle (gaps)
        self.lv = -1  # last good cumulative volume, -1 while unknown
        self.lp = _NAN  # price of the previous accepted tick
        self.dh = _NAN  # day high / low as of the previous trade
        self.dl = _NAN
        self.first_partial = False

    def start_day(self, day: int) -> None:
        self.day = day
        base = day * DAY_S - IST_OFFSET_S
        self.open_s = base + self.session.open_s
        self.close_s = base + self.session.close_s
        self.early_end = self.open_s + 60
        self.lv = -1
        self.lp = _NAN
        self.dh = _NAN
        self.dl = _NAN
        self.first_partial = False


class CandleEngine:
    """Streaming OHLCV candles for many instruments and intervals at once.

    `intervals`: the intervals to build besides 1 minute (always built). `grace_s`: how far the
    feed's clock must pass a candle's end before it closes. `history`: closed candles kept per
    instrument and interval. `fill_gaps`: emit flat `synthetic` candles between two real candles
    of the same day (never across a disconnect, see `mark_disconnect`). `now`: the clock a tick's
    time may not run ahead of by more than `max_ahead_s` (epoch seconds; None: no guard).
    """

    def __init__(
        self,
        intervals: Iterable[Interval | str | int] = (ONE_MINUTE,),
        *,
        grace_s: float = 2.0,
        history: int = 500,
        fill_gaps: bool = False,
        sessions: Mapping[str, Session] | None = None,
        instruments: Mapping[int, tuple[str, str]] | None = None,
        now: Callable[[], float] | None = None,
        max_ahead_s: float = 5.0,
    ) -> None:
        if not max_ahead_s >= 0:  # NaN too
            raise ValueError(f"max_ahead_s must be a number of seconds >= 0, got {max_ahead_s!r}")
        ivs = sorted({parse_interval(i) for i in intervals} | {ONE_MINUTE})
        for iv in ivs:
            for ses in (sessions or {}).values():
                ses.check_interval(iv)
        self.intervals: tuple[Interval, ...] = tuple(ivs)
        self._longer = tuple(iv.minutes for iv in ivs if iv.minutes > 1)
        self.grace_s = float(grace_s)
        self.history_size = int(history)
        self.fill_gaps = bool(fill_gaps)
        self._sessions = dict(sessions) if sessions else None
        self._names: dict[int, tuple[str, str]] = dict(instruments or {})
        self._states: dict[int, _Inst] = {}
        self._history: dict[tuple[int, int], CandleHistory] = {}
        self._callbacks: list[CandleCallback] = []
        self._due: list[tuple[float, int, int, Candle]] = []
        self._seq = itertools.count()
        self._next_due = math.inf
        self._disconnects: list[float] = []
        self._now = now
        self.max_ahead_s = float(max_ahead_s)
        self.clock = -math.inf
        # The highest time of a tick that was not ahead: the feed's clock without advance().
        self.tick_clock = -math.inf
        # The bound the last update applied: a tick of that frame with a later time was refused
        # (for whoever records or shows the frame's ticks and must decide as the engine did).
        self.last_limit = math.inf
        self.counters = EngineCounters()

    # --- set-up -----------------------------------------------------------------------------
    def register(self, token: int, symbol: str, exchange: str) -> None:
        """Name an instrument; its exchange decides the session its candles are anchored to."""
        self._names[token] = (symbol, exchange)
        st = self._states.get(token)
        if st is not None:
            st.symbol, st.exchange = symbol, exchange

    def on_close(self, fn: CandleCallback) -> None:
        """Call `fn(candle)` for every candle that closes, in (end, interval) order."""
        self._callbacks.append(fn)

    def session_of(self, token: int) -> Session:
        ex = self._names.get(token, ("", exchange_of_token(token)))[1]
        return session_for(ex, self._sessions)

    # --- input --------------------------------------------------------------------------------
    def update(self, tick: Tick) -> Candle | None:
        """Apply one tick; return the 1-minute candle it changed (a copy), or None.

        None means the tick changed no candle: book-only, late, bad, or after the close. The
        longer intervals' forming candles are `forming(token, interval)`; closes go to `on_close`.
        """
        before = self.counters.trades
        v = -1 if tick.volume_traded is None else tick.volume_traded
        hi = _NAN if tick.day_high is None else tick.day_high
        lo = _NAN if tick.day_low is None else tick.day_low
        oi = -1 if tick.oi is None else tick.oi
        tok = tick.instrument_token
        self._run([tok], [tick.time], [tick.last_price], [v], [hi], [lo], [oi])
        if self.counters.trades == before:
            return None
        st = self._states[tok]
        day_open = _day_start(tick.time) + st.session.open_s
        start = day_open + max(0, int((tick.time - day_open) // 60)) * 60
        b = st.buckets.get(min(start, st.close_s - 60))
        return None if b is None else _copy(b)

    def update_columns(self, cols: TickColumns) -> int:
        """Apply a frame of ticks in order; returns how many were trades."""
        before = self.counters.trades
        c = cols.as_lists() if hasattr(cols.token, "tolist") else cols
        self._run(c.token, c.time, c.price, c.volume, c.day_high, c.day_low, c.oi)
        return self.counters.trades - before

    def advance(self, clock: float) -> None:
        """Move the feed's clock on (wall-clock time while the feed is quiet); close what is due.

        Never past `now() + max_ahead_s`: a clock taken from a poisoned tick cannot get in here.
        """
        limit = self.ahead_limit()
        self._advance(limit if clock > limit else clock)

    def ahead_limit(self) -> float:
        """The latest time a tick may carry right now: `now() + max_ahead_s` (inf without now)."""
        return math.inf if self._now is None else self._now() + self.max_ahead_s

    def _advance(self, clock: float) -> None:
        if clock > self.clock:
            self.clock = clock
            if clock >= self._next_due:
                self._close_due()

    def mark_disconnect(self, at: float | None = None) -> None:
        """Record a feed disconnect: gap filling never bridges it."""
        self._disconnects.append(self.clock if at is None else at)

    def _run(self, tokens, times, prices, volumes, highs, lows, ois) -> None:
        # The hot loop. Locals and slot attributes only; anything unusual goes to _slow().
        states = self._states
        clock = self.clock
        self.last_limit = limit = self.ahead_limit()
        seen = self.tick_clock
        # Only a tick above `top` can be ahead of the limit or move the clock: one comparison
        # per tick, as without the guard. (top < seen only if now() went backwards.)
        top = seen if seen < limit else limit
        next_due = self._next_due
        slow = self._slow
        n = trades = book = bad = future = 0
        for tok, t, p, v, hi, lo, oi in zip(tokens, times, prices, volumes, highs, lows, ois, strict=True):
            n += 1
            if t > top:
                if t > limit:  # stamped in the future: it moves nothing and enters no candle
                    future += 1
                    continue
                top = seen = t
                if t > clock:  # (not so if advance() has moved the clock past it)
                    clock = t
                    if clock >= next_due:
                        self.clock = clock
                        self._close_due()
                        next_due = self._next_due
            st = states.get(tok)
            if st is None or not (st.cs <= t < st.ce):
                self.clock = clock
                r = slow(tok, t, p, v, hi, lo, oi)
                next_due = self._next_due
                if r == 1:
                    trades += 1
                elif r == 0:
                    book += 1
                continue
            if v >= 0:
                lv = st.lv
                if lv >= 0:
                    if v <= lv:
                        if v < lv:
                            bad += 1
                            continue
                        st.lp = p
                        book += 1
                        continue
                    dv = v - lv
                else:
                    dv = v if t < st.early_end else 0
                st.lv = v
            elif p == st.lp:
                book += 1
                continue
            else:
                dv = 0
            st.lp = p
            # Never None here (the minute was opened above); annotated, not asserted: hot loop.
            b: Candle = st.cur  # type: ignore[assignment]
            if p > b.high:
                b.high = p
            elif p < b.low:
                b.low = p
            if hi > st.dh:
                if hi > b.high:
                    b.high = hi
                st.dh = hi
            elif st.dh != st.dh:
                st.dh = hi
            if lo < st.dl:
                if lo < b.low:
                    b.low = lo
                st.dl = lo
            elif st.dl != st.dl:
                st.dl = lo
            b.close = p
            b.volume += dv
            b.ticks += 1
            if oi >= 0:
                b.oi = oi
            trades += 1
        self.clock = clock
        self.tick_clock = seen
        c = self.counters
        c.ticks += n
        c.trades += trades
        c.book_only += book
        c.bad += bad
        c.future += future

    def _state(self, tok: int) -> _Inst:
        symbol, exchange = self._names.get(tok, ("", ""))
        if not exchange:
            exchange = exchange_of_token(tok)
        st = _Inst(tok, symbol or str(tok), exchange, session_for(exchange, self._sessions))
        self._states[tok] = st
        return st

    def _slow(self, tok: int, t: float, p: float, v: int, hi: float, lo: float, oi: int) -> int:
        """Everything the fast path does not: returns 1 trade, 0 no trade, -1 dropped."""
        st = self._states.get(tok) or self._state(tok)
        day = math.floor((t + IST_OFFSET_S) / DAY_S)
        ses = st.session
        base = day * DAY_S - IST_OFFSET_S
        open_s = base + ses.open_s
        close_s = base + ses.close_s
        if t > close_s:
            self.counters.after_close += 1
            return -1
        te = open_s if t < open_s else t
        mstart = open_s + int((te - open_s) // 60) * 60
        if mstart >= close_s:  # exactly the close second: the last candle (rule 3)
            mstart = close_s - 60
        if mstart + 60 + self.grace_s <= self.clock:
            self.counters.late += 1
            return -1
        first = day != st.day
        if first:
            if st.day > day:  # an older day than the one in progress: its candles are gone
                self.counters.late += 1
                return -1
            st.start_day(day)
            st.first_partial = t >= st.early_end
        # Volume and trade detection, as in the fast path.
        dv = 0
        if v >= 0:
            lv = st.lv
            if lv >= 0:
                if v < lv:
                    self.counters.bad += 1
                    return -1
                if v == lv and not first:
                    st.lp = p
                    return 0
                dv = v - lv
            else:
                dv = v if t < st.early_end else 0
            st.lv = v
        elif p == st.lp and not first:
            return 0
        st.lp = p
        b = st.buckets.get(mstart)
        if b is None:
            symbol, exchange = st.symbol, st.exchange
            b = Candle(tok, 1, mstart, p, p, p, p, 0, None, 0, False, False, False, symbol, exchange)
            if first and st.first_partial:
                b.partial = True
            st.buckets[mstart] = b
            self._schedule(mstart + 60, b)
            if mstart > st.cs:
                st.cur, st.cs, st.ce = b, mstart, mstart + 60
        else:
            if p > b.high:
                b.high = p
            elif p < b.low:
                b.low = p
            if first and st.first_partial:
                b.partial = True
        if not first:
            if hi > st.dh:
                if hi > b.high:
                    b.high = hi
                st.dh = hi
            elif st.dh != st.dh:
                st.dh = hi
            if lo < st.dl:
                if lo < b.low:
                    b.low = lo
                st.dl = lo
            elif st.dl != st.dl:
                st.dl = lo
        else:
            st.dh = hi
            st.dl = lo
        b.close = p
        b.volume += dv
        b.ticks += 1
        if oi >= 0:
            b.oi = oi
        return 1

    # --- closing ------------------------------------------------------------------------------
    def _schedule(self, end: float, c: Candle) -> None:
        due = end + self.grace_s
        heapq.heappush(self._due, (due, c.interval_min, next(self._seq), c))
        if due < self._next_due:
            self._next_due = due

    def _close_due(self) -> None:
        clock = self.clock
        due = self._due
        while due and due[0][0] <= clock:
            _, minutes, _, c = heapq.heappop(due)
            if minutes == 1:
                self._close_minute(c)
            else:
                self._close_longer(c)
        self._next_due = due[0][0] if due else math.inf

    def _close_minute(self, c: Candle) -> None:
        st = self._states[c.instrument_token]
        st.buckets.pop(c.start, None)
        if st.cur is c:
            st.cur, st.cs, st.ce = None, 0, 0
        c.closed = True
        self._emit(st, c)
        for minutes in self._longer:
            span = minutes * 60
            day_open = _day_start(c.start) + st.session.open_s
            start = day_open + (c.start - day_open) // span * span
            f = st.forming.get(minutes)
            if f is not None and f.start != start:
                # Its end has passed (minutes close in order); close it before starting anew.
                self._close_longer(f)
                f = None
            if f is None:
                f = Candle(
                    c.instrument_token, minutes, start, c.open, c.high, c.low, c.close,
                    c.volume, c.oi, c.ticks, c.partial, False, False, c.symbol, c.exchange,
                    c.origin,
                )
                st.forming[minutes] = f
                close_at = _day_start(start) + st.session.close_s
                self._schedule(min(start + span, close_at), f)
            else:
                merge_into(f, c)

    def _close_longer(self, c: Candle) -> None:
        if c.closed:
            return
        st = self._states[c.instrument_token]
        if st.forming.get(c.interval_min) is c:
            del st.forming[c.interval_min]
        c.closed = True
        self._emit(st, c)

    def _emit(self, st: _Inst, c: Candle) -> None:
        if self.fill_gaps:
            prev = st.last_real.get(c.interval_min)
            st.last_real[c.interval_min] = c
            if prev is not None:
                for g in synthetic_between(prev, c, self._disconnects):
                    self._deliver(g)
        self._deliver(c)

    def _deliver(self, c: Candle) -> None:
        key = (c.instrument_token, c.interval_min)
        h = self._history.get(key)
        if h is None:
            h = self._history[key] = CandleHistory(
                c.instrument_token, c.interval_min, self.history_size, c.symbol, c.exchange
            )
        h.append(c)
        self.counters.candles_closed += 1
        for fn in self._callbacks:
            try:
                fn(c)
            except Exception as exc:  # one callback's failure never reaches the engine or others
                self.counters.callback_errors += 1
                self.counters.last_callback_error = f"{type(exc).__name__}: {exc}"

    # --- history from Kite -----------------------------------------------------------------------
    def insert_history(self, token: int, minutes: Sequence[Candle]) -> list[Candle]:
        """Put closed 1-minute candles from Kite's history into the engine's history.

        The one way history enters the engine (warm start, gap repair; session/warmup.py). Each
        given minute replaces the one held for the same start (the caller gives only minutes it
        wants from history: before the session, or those a disconnect spoiled); a minute still
        open here is skipped (the caller asks again once it closed). Every longer candle holding
        a given minute is rebuilt from the 1-minute candles, the forming one in place. Nothing
        is announced to `on_close` (a strategy must not act at 11:00 on a 09:15 close). Returns
        the candles put in or rebuilt (the store's to keep), 1-minute ones first.
        """
        st = self._states.get(token) or self._state(token)
        # History's minutes are over (Kite serves a minute once it closed): the feed's clock may
        # move to their end (rule 8, never past now() + max_ahead_s), so a tick for one of them
        # that comes after is late rather than opening a second candle for the same minute.
        limit = self.ahead_limit()
        given = [m for m in minutes if m.interval_min == 1 and m.start not in st.buckets
                 and m.start + 60 <= limit]
        if not given:
            return []
        self._advance(max(m.start for m in given) + 60)
        for m in given:
            m.closed = True
            m.symbol, m.exchange = st.symbol, st.exchange
        ring1 = self._ring(st, 1)
        merged = backfill.merge_minutes(ring1, given)
        ring1.replace_all(merged)
        out: list[Candle] = list(given)
        real = [m for m in merged if not m.synthetic]
        open_off = st.session.open_s
        for minutes_n in self._longer:
            touched = sorted({backfill.bucket_start(m.start, minutes_n, _day_start(m.start) + open_off)
                              for m in given})
            ring = self._ring(st, minutes_n)
            rebuilt: list[Candle] = []
            f = st.forming.get(minutes_n)
            for b in touched:
                span = minutes_n * 60
                inside = [m for m in real if b <= m.start < b + span]
                if not inside:
                    continue
                end = min(b + span, _day_start(b) + st.session.close_s)
                if f is not None and f.start == b:
                    backfill.copy_values(f, backfill.fold(inside, minutes_n, b, closed=False))
                    out.append(_copy(f))
                elif end + self.grace_s <= self.clock or (f is not None and f.start > b):
                    rebuilt.append(backfill.fold(inside, minutes_n, b, closed=True))
                elif f is None:
                    f = backfill.fold(inside, minutes_n, b, closed=False)
                    st.forming[minutes_n] = f
                    self._schedule(end, f)
                    out.append(_copy(f))
            if rebuilt:
                ring.replace_all(backfill.merge_minutes(ring, rebuilt))
                out += rebuilt
        return out

    def _ring(self, st: _Inst, minutes: int) -> CandleHistory:
        key = (st.token, minutes)
        h = self._history.get(key)
        if h is None:
            h = self._history[key] = CandleHistory(st.token, minutes, self.history_size,
                                                   st.symbol, st.exchange)
        return h

    # --- reading ------------------------------------------------------------------------------
    def forming(self, token: int, interval: Interval | str | int = ONE_MINUTE) -> Candle | None:
        """The candle still forming for `token` in `interval` (closed=False), or None."""
        iv = parse_interval(interval)
        st = self._states.get(token)
        if st is None:
            return None
        if iv.minutes == 1:
            b = st.cur
            return None if b is None else _copy(b)
        f = st.forming.get(iv.minutes)
        span = iv.seconds
        # The forming minute(s) inside the current longer bucket complete the picture.
        out = _copy(f) if f is not None else None
        for start in sorted(st.buckets):
            m = st.buckets[start]
            mstart = st.open_s + (m.start - st.open_s) // span * span
            if out is None:
                out = _copy(m)
                out.interval_min = iv.minutes
                out.start = mstart
            elif out.start == mstart:
                merge_into(out, m)
            elif mstart > out.start:
                out = _copy(m)
                out.interval_min = iv.minutes
                out.start = mstart
        return out

    def forming_all(self) -> list[Candle]:
        """Every candle still forming, in every interval (for a clean shutdown)."""
        out: list[Candle] = []
        for tok in self._states:
            for iv in self.intervals:
                c = self.forming(tok, iv)
                if c is not None:
                    out.append(c)
        return out

    def history(self, token: int, interval: Interval | str | int = ONE_MINUTE) -> list[Candle]:
        """Closed candles held for `token` in `interval`, oldest first."""
        h = self._history.get((token, parse_interval(interval).minutes))
        return [] if h is None else h.last()

    def history_ring(self, token: int, interval: Interval | str | int) -> CandleHistory | None:
        return self._history.get((token, parse_interval(interval).minutes))

    def tokens(self) -> list[int]:
        return list(self._states)

    def close_all(self) -> list[Candle]:
        """Close everything still forming now (end of a replay); returns what closed."""
        closed: list[Candle] = []
        self._callbacks.append(closed.append)
        try:
            self._advance(math.inf)  # the end of a replay: everything, whatever now() says
        finally:
            self._callbacks.remove(closed.append)
        return closed


def merge_into(f: Candle, c: Candle) -> None:
    """Fold the later candle `c` into `f` (same instrument, f starts no later than c)."""
    if c.high > f.high:
        f.high = c.high
    if c.low < f.low:
        f.low = c.low
    f.close = c.close
    f.volume += c.volume
    if c.oi is not None:
        f.oi = c.oi
    f.ticks += c.ticks
    if c.partial:
        f.partial = True
    if c.origin is not f.origin and ORIGIN_CODE[c.origin] > ORIGIN_CODE[f.origin]:
        f.origin = c.origin


def synthetic_between(prev: Candle, cur: Candle, disconnects: Iterable[float] = ()) -> list[Candle]:
    """Flat candles for the empty buckets between two real candles of the same day (rule 10)."""
    span = prev.interval_min * 60
    if _day_of(prev.start) != _day_of(cur.start):
        return []
    if any(prev.start <= d <= cur.start for d in disconnects):
        return []
    out = []
    start = prev.start + span
    while start < cur.start:
        out.append(
            Candle(
                prev.instrument_token, prev.interval_min, start, prev.close, prev.close,
                prev.close, prev.close, 0, prev.oi, 0, False, True, True, prev.symbol,
                prev.exchange,
            )
        )
        start += span
    return out


def _copy(c: Candle) -> Candle:
    return Candle(
        c.instrument_token, c.interval_min, c.start, c.open, c.high, c.low, c.close, c.volume,
        c.oi, c.ticks, c.partial, c.synthetic, c.closed, c.symbol, c.exchange, c.origin,
    )


def _day_of(epoch_s: float) -> int:
    return math.floor((epoch_s + IST_OFFSET_S) / DAY_S)


def _day_start(epoch_s: float) -> int:
    return _day_of(epoch_s) * DAY_S - IST_OFFSET_S
