"""The streaming candle engine: frames of ticks in, candles out as they form and close.

This is CANDLES.md in code, for the live session, built column-wise so that 9000 instruments
cost a fraction of a core. Design choices, and why:

* State lives in numpy arrays indexed by an instrument slot (livecli/core/slots.py): each
  instrument's open 1-minute candles (livecli/core/fold.py `Level`) and its trade state. A
  decoded frame's ticks that fall in their instrument's open minute (nearly all of them) are
  applied with a few array operations per frame (`fold.apply_wave`), opening new minutes and
  days too; only the rare shapes (a tick for the older open minute, a new day while a candle
  is open) go through `_tick`, one at a time.
* Only the 1-minute candle is touched per tick. Longer intervals are folded from 1-minute candles
  as those close, so the work per tick does not grow with the number of intervals, and every
  interval agrees with the 1-minute candles by construction ("One answer everywhere").
* The feed's clock (the highest time seen, moved on by `advance()` while the feed is quiet)
  closes candles (rule 8). A frame is cut where its running clock reaches the next due time, so
  each tick sees the candles the feed's clock had closed when the link delivered it: lateness
  is decided by arrival order and exchange time (rule 9), never by when the engine got to it.
* Closing a minute closes every instrument's candle of that minute in one array operation, into
  a `ClosedCandles` batch (livecli/core/closed.py) that goes to the columnar history, to
  `on_close_batch` listeners as is, and as `Candle` objects only to `on_close` listeners.
* The feed's clock is guarded (rule 8): given `now` (the wall clock for Kite, the simulated
  market's clock for the stand-in), a tick stamped more than `max_ahead_s` ahead of `now()` is
  counted in `counters.future` and touches nothing, and `advance()` never goes past that bound
  either. `now()` is read once per frame. Without `now` nothing is ever ahead.
* Close callbacks are isolated: an exception is counted and kept, never propagated.

Per tick, in order: a tick ahead of the bound is counted and dropped (rule 8); the clock moves;
a tick after the session close is counted and dropped; a tick whose minute has closed is late
(rule 9); a new IST day resets the instrument; a cumulative volume below the last good one is bad
(rule 7); a trade is a volume rise, or for ticks without volume a price different from the
previous accepted tick, or the first tick of the day (rule 5).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from livecli.core import backfill
from livecli.core import kernel as _kernel
from livecli.core.candles import ORIGIN_CODE, ORIGINS, Candle
from livecli.core.closed import ClosedCandles
from livecli.core.colhistory import ColumnarHistory, HistoryView
from livecli.core.fold import (
    NO_OI,
    InstState,
    Level,
    apply_grouped,
    apply_wave,
    distinct_count,
    first_of_each,
    waves,
)
from livecli.core.intervals import ONE_MINUTE, Interval, parse_interval
from livecli.core.sessions import Session, exchange_of_token, session_for
from livecli.core.slots import SlotMap, grow
from livecli.core.ticks import Tick, TickColumns
from livecli.core.timeutil import DAY_S, IST_OFFSET_S

# Waves this small go through the scalar path: a numpy pass costs more than a few ticks.
SMALL_WAVE = 8

CandleCallback = Callable[[Candle], None]
BatchCallback = Callable[[ClosedCandles], None]

_NAN = math.nan
_INF = math.inf


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


class CandleEngine:
    """Streaming OHLCV candles for many instruments and intervals at once.

    `intervals`: the intervals to build besides 1 minute (always built). `grace_s`: how far the
    feed's clock must pass a candle's end before it closes (0 to 60). `history`: closed candles
    kept per instrument and interval. `fill_gaps`: emit flat `synthetic` candles between two real
    candles of the same day (never across a disconnect, see `mark_disconnect`). `now`: the clock
    a tick's time may not run ahead of by more than `max_ahead_s` (epoch seconds; None: no guard).
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
        kernel: bool | None = None,
    ) -> None:
        if not max_ahead_s >= 0:  # NaN too
            raise ValueError(f"max_ahead_s must be a number of seconds >= 0, got {max_ahead_s!r}")
        if not 0 <= grace_s <= 60:
            # At most two minutes of an instrument are then open at once (fold.Level x 2).
            raise ValueError(f"grace_s must be 0 to 60 seconds, got {grace_s!r}")
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
        self._slots = SlotMap()
        self._symbols: list[str] = []
        self._exchanges: list[str] = []
        self._st = InstState()
        self._cur = Level()  # the newest open minute of each slot: the fast path's target
        self._prev = Level()  # the minute before it, while it waits out the grace
        self._forming = {m: Level() for m in self._longer}
        self._last_real = {iv.minutes: Level() for iv in ivs} if fill_gaps else {}
        self._hist = {iv.minutes: ColumnarHistory(iv.minutes, self.history_size)
                      for iv in ivs}
        self._scratch = np.zeros(0, np.int64)
        self._callbacks: list[CandleCallback] = []
        self._batch_callbacks: list[BatchCallback] = []
        self._next_due = _INF
        self._disconnects: list[float] = []
        self._now = now
        self.max_ahead_s = float(max_ahead_s)
        self.clock = -_INF
        # The highest time of a tick that was not ahead: the feed's clock without advance().
        self.tick_clock = -_INF
        # The bound the last update applied: a tick of that frame with a later time was refused
        # (for whoever records or shows the frame's ticks and must decide as the engine did).
        self.last_limit = _INF
        self.counters = EngineCounters()
        # The compiled kernel (livecli/core/kernel.py): None takes it once someone has loaded
        # it (the session does, on a thread), True loads it now, False keeps the numpy path.
        self._kernel_mode = kernel
        if kernel:
            _kernel.load()
        for tok in self._names:
            self._slot(tok)

    # --- set-up -----------------------------------------------------------------------------
    def register(self, token: int, symbol: str, exchange: str) -> None:
        """Name an instrument; its exchange decides the session its candles are anchored to."""
        self._names[token] = (symbol, exchange)
        s, new = self._slot_new(token)
        if not new:
            self._symbols[s], self._exchanges[s] = symbol or str(token), exchange

    def add_interval(self, interval: Interval | str | int) -> Interval:
        """Build `interval` from now on too (a dashboard's `i` key); returns it.

        Its candles are folded from the 1-minute candles like every other interval's, so the
        closed 1-minute candles held in history make its history (kept, not delivered: the store
        and callbacks saw their minutes already), and those of the bucket in progress seed the
        candle now forming, which closes and is delivered as usual. Anything older than the
        1-minute history is not there to fold. Rare (a key press): it folds in Python.
        """
        iv = parse_interval(interval)
        if iv in self.intervals:
            return iv
        for ses in (self._sessions or {}).values():
            ses.check_interval(iv)
        m, span, g = iv.minutes, iv.seconds, self.grace_s
        n = len(self._slots)
        f = Level()
        f.ensure(n)
        self._forming[m] = f
        self._hist[m] = ColumnarHistory(m, self.history_size)
        if self.fill_gaps:
            self._last_real[m] = Level()
            self._last_real[m].ensure(n)
        self.intervals = tuple(sorted({*self.intervals, iv}))
        self._longer = tuple(i.minutes for i in self.intervals if i.minutes > 1)
        st = self._st
        done: list[Candle] = []
        for s_ in range(n):
            tok = int(self._slots.tokens[s_])
            bucket: Candle | None = None
            end = 0.0
            for c in self.history(tok, 1):
                if c.synthetic:
                    continue
                day0 = (c.start + IST_OFFSET_S) // DAY_S * DAY_S - IST_OFFSET_S
                dopen = day0 + int(st.open_off[s_])
                start = dopen + (c.start - dopen) // span * span
                if bucket is not None and bucket.start == start:
                    merge_into(bucket, c)
                    continue
                if bucket is not None:
                    done.append(bucket)
                bucket = dataclasses.replace(c)
                bucket.interval_min, bucket.start = m, start
                end = min(start + span, day0 + int(st.close_off[s_]))
            if bucket is None:
                continue
            # Minutes still open (not yet closed, so not folded) of a later bucket: it ended.
            later = any(lv.has[s_] and lv.start[s_] >= end for lv in (self._prev, self._cur))
            if later or end + g <= self.clock:
                done.append(bucket)
                continue
            _set_level(f, s_, bucket, end + g)
            self._next_due = min(self._next_due, end + g)
        for c in done:
            c.closed = True
        self.insert_closed(done)
        return iv

    def on_close(self, fn: CandleCallback) -> None:
        """Call `fn(candle)` for every candle that closes, in (end, interval) order."""
        self._callbacks.append(fn)

    def on_close_batch(self, fn: BatchCallback) -> None:
        """Call `fn(batch)` with each `ClosedCandles` batch, in (end, interval) order.

        No `Candle` object is made for it: the cheap way to take 9000 candles at a minute's end.
        """
        self._batch_callbacks.append(fn)

    def session_of(self, token: int) -> Session:
        ex = self._names.get(token, ("", exchange_of_token(token)))[1]
        return session_for(ex, self._sessions)

    def _slot(self, token: int) -> int:
        return self._slot_new(token)[0]

    def _slot_new(self, token: int) -> tuple[int, bool]:
        s, new = self._slots.add(token)
        if not new:
            return s, False
        symbol, exchange = self._names.get(token, ("", ""))
        if not exchange:
            exchange = exchange_of_token(token)
        self._symbols.append(symbol or str(token))
        self._exchanges.append(exchange)
        n = s + 1
        st = self._st
        st.ensure(n)
        for lv in (self._cur, self._prev, *self._forming.values(), *self._last_real.values()):
            lv.ensure(n)
        ses = session_for(exchange, self._sessions)
        st.open_off[s], st.close_off[s] = ses.open_s, ses.close_s
        if len(self._scratch) < n:
            self._scratch = grow(self._scratch, n, 0)
        return s, True

    # --- input --------------------------------------------------------------------------------
    def update(self, tick: Tick) -> Candle | None:
        """Apply one tick; return the 1-minute candle it changed (a copy), or None.

        None means the tick changed no candle: book-only, late, bad, or after the close. The
        longer intervals' forming candles are `forming(token, interval)`; closes go to `on_close`.
        """
        before = self.counters.trades
        cols = TickColumns(
            [tick.instrument_token], [tick.time], [tick.last_price],
            [-1 if tick.volume_traded is None else tick.volume_traded],
            [_NAN if tick.day_high is None else tick.day_high],
            [_NAN if tick.day_low is None else tick.day_low],
            [-1 if tick.oi is None else tick.oi],
        )
        self.update_columns(cols)
        if self.counters.trades == before:
            return None
        s = self._slots.get(tick.instrument_token)
        assert s is not None
        start = self._minute_of(s, tick.time)
        for lvl in (self._cur, self._prev):
            if lvl.has[s] and lvl.start[s] == start:
                return self._candle(lvl, s, 1, False)
        return None

    def _minute_of(self, s: int, t: float) -> int:
        day = math.floor((t + IST_OFFSET_S) / DAY_S)
        base = day * DAY_S - IST_OFFSET_S
        open_s = base + int(self._st.open_off[s])
        close_s = base + int(self._st.close_off[s])
        te = open_s if t < open_s else t
        mstart = open_s + int((te - open_s) // 60) * 60
        return close_s - 60 if mstart >= close_s else mstart

    def update_columns(self, cols: TickColumns) -> int:
        """Apply a frame of ticks in order (lists or numpy columns); returns how many were trades."""
        before = self.counters.trades
        tok = np.asarray(cols.token, np.int64)
        n = len(tok)
        self.last_limit = limit = self.ahead_limit()
        if not n:
            return 0
        sl = self._slots.lookup(tok)
        if (sl < 0).any():
            for t_ in np.unique(tok[sl < 0]).tolist():
                self._slot(t_)
            sl = self._slots.lookup(tok)
        self._frame(sl, np.asarray(cols.time, np.float64), np.asarray(cols.price, np.float64),
                    np.asarray(cols.volume, np.int64), np.asarray(cols.day_high, np.float64),
                    np.asarray(cols.day_low, np.float64), np.asarray(cols.oi, np.int64), limit)
        return self.counters.trades - before

    def advance(self, clock: float) -> None:
        """Move the feed's clock on (wall-clock time while the feed is quiet); close what is due.

        Never past `now() + max_ahead_s`: a clock taken from a poisoned tick cannot get in here.
        """
        limit = self.ahead_limit()
        self._advance(limit if clock > limit else clock)

    def ahead_limit(self) -> float:
        """The latest time a tick may carry right now: `now() + max_ahead_s` (inf without now)."""
        return _INF if self._now is None else self._now() + self.max_ahead_s

    def _advance(self, clock: float) -> None:
        if clock > self.clock:
            self.clock = clock
            if clock >= self._next_due:
                self._close_due()

    def mark_disconnect(self, at: float | None = None) -> None:
        """Record a feed disconnect: gap filling never bridges it."""
        self._disconnects.append(self.clock if at is None else at)

    def _frame(self, sl: np.ndarray, t: np.ndarray, p: np.ndarray, v: np.ndarray,
               hi: np.ndarray, lo: np.ndarray, oi: np.ndarray, limit: float) -> None:
        n = len(sl)
        c = self.counters
        c.ticks += n
        fut = t > limit
        n_fut = int(fut.sum())
        if n_fut:
            c.future += n_fut
            tt = np.where(fut, -_INF, t)
        else:
            tt = t
        # The feed's clock as the link delivered each tick: the running maximum of tick times.
        cl = np.maximum.accumulate(tt)
        if cl[0] < self.clock:
            np.maximum(cl, self.clock, out=cl)
        if n_fut < n:
            top = float(tt.max())
            if top > self.tick_clock:
                self.tick_clock = top
        # Where each tick falls (rule 2), from its instrument's session: vectorised, per frame.
        st = self._st
        day = np.floor((t + IST_OFFSET_S) / DAY_S).astype(np.int64)
        base = day * DAY_S - IST_OFFSET_S
        open_s = base + st.open_off[sl]
        close_s = base + st.close_off[sl]
        te = np.maximum(t, open_s)
        mstart = open_s + ((te - open_s) // 60).astype(np.int64) * 60
        np.minimum(mstart, close_s - 60, out=mstart)  # the close second: the last candle
        g = self.grace_s
        # The due time of the minute each tick may open; a tick after the close (rule 3) or
        # whose minute the feed's clock had closed when it arrived (rule 9) is dropped here.
        due = mstart + 60 + g
        after = t > close_s
        late = due <= cl
        if n_fut:
            after &= ~fut
            late &= ~fut
            st.seen[sl[~fut]] = True
        else:
            st.seen[sl] = True
        late &= ~after
        drop = after | late
        n_drop = int(np.count_nonzero(drop))
        if n_drop:
            c.after_close += int(np.count_nonzero(after))
            c.late += int(np.count_nonzero(late))
        if n_fut:
            drop |= fut
            n_drop = int(np.count_nonzero(drop))
        kern = None if self._kernel_mode is False else _kernel.loaded()
        if kern is not None:
            self._run_kernel(kern, sl, t, p, v, hi, lo, oi, day, open_s, mstart, cl, drop)
            return
        due = np.where(drop, _INF, due) if n_drop else due
        pos = 0
        while pos < n:
            c0 = float(cl[pos])
            if c0 > self.clock:
                self.clock = c0
            if self.clock >= self._next_due:
                self._close_due()
            # The segment ends before the first tick whose clock reaches a due time: the next
            # one now, or that of a minute a tick of this segment may have opened.
            k = min(n, max(pos + 1, int(np.searchsorted(cl, self._next_due, side="left"))))
            if k - 1 > pos:
                pm = np.minimum.accumulate(due[pos:k - 1])
                hits = cl[pos + 1:k] >= pm
                if hits.any():
                    k = pos + 1 + int(np.argmax(hits))
            self._segment(sl, t, p, v, hi, lo, oi, cl, drop, day, open_s, mstart, pos, k,
                          n_drop > 0)
            pos = k
        if cl[-1] > self.clock:
            self.clock = float(cl[-1])

    def _run_kernel(self, kern: Callable[..., tuple[int, float, float]], sl: np.ndarray,
                    t: np.ndarray, p: np.ndarray, v: np.ndarray, hi: np.ndarray,
                    lo: np.ndarray, oi: np.ndarray, day: np.ndarray, open_s: np.ndarray,
                    mstart: np.ndarray, cl: np.ndarray, drop: np.ndarray) -> None:
        """The frame through the compiled kernel: tick by tick, stopping where a close is due."""
        st, cur, prev = self._st, self._cur, self._prev
        counts = np.zeros(4, np.int64)
        n = len(sl)
        pos = 0
        while pos < n:
            pos, clock, due = kern(
                pos, n, sl, t, p, v, hi, lo, oi, day, open_s, mstart, cl, drop,
                self.clock, self._next_due, self.grace_s,
                st.day, st.early_end, st.lv, st.lp, st.dh, st.dl, st.first_partial,
                cur.has, cur.start, cur.open, cur.high, cur.low, cur.close, cur.volume, cur.oi,
                cur.ticks, cur.partial, cur.origin,
                prev.has, prev.start, prev.open, prev.high, prev.low, prev.close, prev.volume,
                prev.oi, prev.ticks, prev.partial, prev.origin, counts)
            if clock > self.clock:
                self.clock = clock
            self._next_due = due
            if pos < n:  # a close is due before the tick at pos: close, then go on from it
                self._close_due()
        c = self.counters
        trades, book, bad, late = counts.tolist()
        c.trades += trades
        c.book_only += book
        c.bad += bad
        c.late += late

    def _segment(self, sl: np.ndarray, t: np.ndarray, p: np.ndarray, v: np.ndarray,
                 hi: np.ndarray, lo: np.ndarray, oi: np.ndarray, cl: np.ndarray,
                 drop: np.ndarray, day: np.ndarray, open_s: np.ndarray, mstart: np.ndarray,
                 a: int, b: int, any_drop: bool) -> None:
        """Apply ticks a..b-1, between which no candle closes, in waves of distinct slots."""
        if any_drop:
            idx = np.flatnonzero(~drop[a:b]) + a
            if not len(idx):
                return
            sel: slice | np.ndarray = idx
        else:
            sel = slice(a, b)
        cols = (sl[sel], t[sel], p[sel], v[sel], hi[sel], lo[sel], oi[sel], day[sel],
                open_s[sel], mstart[sel], cl[sel])
        self._apply(cols)

    def _apply(self, cols: tuple[np.ndarray, ...]) -> None:
        """Ticks in arrival order, no close between them: one pass when each instrument comes
        once, waves for a few repeats, a grouped pass for instruments whose every tick falls in
        their open minute; what is left (instruments opening a minute) one wave at a time."""
        while len(cols[0]):
            sl_ = cols[0]
            n = len(sl_)
            distinct = distinct_count(sl_, self._scratch)
            if distinct == n:  # one tick per instrument (Kite's frames): one wave
                self._wave(cols)
                return
            if 4 * distinct > 3 * n:  # a few repeats: waves
                self._waves(cols)
                return
            t_ = cols[1]
            cur = self._cur
            cs = cur.start[sl_]
            in_cur = cur.has[sl_] & (cs <= t_) & (t_ < cs + 60)
            mark = self._scratch
            mark[sl_] = 0
            mark[sl_[~in_cur]] = 1
            pure = in_cur & (mark[sl_] == 0)
            if pure.any():
                every = bool(pure.all())
                got = apply_grouped(self._st, cur, *(cols if every else tuple(
                    c[pure] for c in cols))[:7])
                if got is None:  # a day high that fell between two ticks: waves are exact
                    self._waves(cols)
                    return
                c = self.counters
                c.trades += got[0]
                c.book_only += got[1]
                c.bad += got[2]
                if every:
                    return
                keep = ~pure
                cols = tuple(c_[keep] for c_ in cols)
                continue
            # Every repeated instrument opens a minute here: its first tick, as one wave; the
            # ticks after it then mostly fall in the minute it opened.
            first = first_of_each(sl_, self._scratch)
            self._wave(tuple(c_[first] for c_ in cols))
            rest = ~first
            cols = tuple(c_[rest] for c_ in cols)

    def _waves(self, cols: tuple[np.ndarray, ...]) -> None:
        if distinct_count(cols[0], self._scratch) == len(cols[0]):
            self._wave(cols)
            return
        for w in waves(cols[0], self._scratch):
            if len(w) <= SMALL_WAVE:  # a few repeated instruments: one by one is cheaper
                self._ticks(tuple(c_[w] for c_ in cols))
            else:
                self._wave(tuple(c_[w] for c_ in cols))

    def _ticks(self, cols: tuple[np.ndarray, ...]) -> None:
        sl, t, p, v, hi, lo, oi, _, _, _, cl = cols
        tick = self._tick
        for s, ti, pi, vi, hii, loi, oii, ci in zip(
            sl.tolist(), t.tolist(), p.tolist(), v.tolist(), hi.tolist(), lo.tolist(),
            oi.tolist(), cl.tolist(), strict=True,
        ):
            tick(s, ti, pi, vi, hii, loi, oii, ci)

    def _wave(self, cols: tuple[np.ndarray, ...]) -> None:
        sl, t, p, v, hi, lo, oi, day, open_s, mstart, cl = cols
        odd, tr, bk, bd, late, due = apply_wave(
            self._st, self._cur, self._prev, sl, t, p, v, hi, lo, oi, day, open_s, mstart,
            self.grace_s)
        c = self.counters
        c.trades += tr
        c.book_only += bk
        c.bad += bd
        c.late += late
        if due < self._next_due:
            self._next_due = due
        if odd is not None:
            tick = self._tick
            for s, ti, pi, vi, hii, loi, oii, ci in zip(
                sl[odd].tolist(), t[odd].tolist(), p[odd].tolist(), v[odd].tolist(),
                hi[odd].tolist(), lo[odd].tolist(), oi[odd].tolist(), cl[odd].tolist(),
                strict=True,
            ):
                tick(s, ti, pi, vi, hii, loi, oii, ci)

    def _tick(self, s: int, t: float, p: float, v: int, hi: float, lo: float, oi: int,
              clock: float) -> int:
        """One tick the fast path does not take: returns 1 trade, 0 no trade, -1 dropped."""
        st = self._st
        c = self.counters
        st.seen[s] = True
        day = math.floor((t + IST_OFFSET_S) / DAY_S)
        base = day * DAY_S - IST_OFFSET_S
        open_s = base + int(st.open_off[s])
        close_s = base + int(st.close_off[s])
        if t > close_s:
            c.after_close += 1
            return -1
        te = open_s if t < open_s else t
        mstart = open_s + int((te - open_s) // 60) * 60
        if mstart >= close_s:  # exactly the close second: the last candle (rule 3)
            mstart = close_s - 60
        if mstart + 60 + self.grace_s <= clock:
            c.late += 1
            return -1
        cur_day = int(st.day[s])
        first = day != cur_day
        if first:
            if cur_day > day:  # an older day than the one in progress: its candles are gone
                c.late += 1
                return -1
            st.day[s] = day
            st.early_end[s] = open_s + 60
            st.lv[s] = -1
            st.lp[s] = _NAN
            st.dh[s] = _NAN
            st.dl[s] = _NAN
            st.first_partial[s] = t >= open_s + 60
        early = t < st.early_end[s]
        dv = 0
        if v >= 0:
            lv = int(st.lv[s])
            if lv >= 0:
                if v < lv:
                    c.bad += 1
                    return -1
                if v == lv and not first:
                    st.lp[s] = p
                    c.book_only += 1
                    return 0
                dv = v - lv
            else:
                dv = v if early else 0
            st.lv[s] = v
        elif p == st.lp[s] and not first:
            c.book_only += 1
            return 0
        st.lp[s] = p
        cur, prev = self._cur, self._prev
        part = bool(first and st.first_partial[s])
        if cur.has[s] and cur.start[s] == mstart:
            b = cur
        elif prev.has[s] and prev.start[s] == mstart:
            b = prev
        else:
            if not cur.has[s]:
                b = cur
            elif mstart > cur.start[s]:
                cur.move(s, prev)  # (the older minute closed before this one could open)
                b = cur
            else:
                b = prev
            b.open_at(s, mstart, p, part)
            due = mstart + 60 + self.grace_s
            if due < self._next_due:
                self._next_due = due
        if p > b.high[s]:
            b.high[s] = p
        elif p < b.low[s]:
            b.low[s] = p
        if part:
            b.partial[s] = True
        if not first:
            dh = st.dh[s]
            if hi > dh:
                if hi > b.high[s]:
                    b.high[s] = hi
                st.dh[s] = hi
            elif dh != dh:
                st.dh[s] = hi
            dl = st.dl[s]
            if lo < dl:
                if lo < b.low[s]:
                    b.low[s] = lo
                st.dl[s] = lo
            elif dl != dl:
                st.dl[s] = lo
        else:
            st.dh[s] = hi
            st.dl[s] = lo
        b.close[s] = p
        b.volume[s] += dv
        b.ticks[s] += 1
        if oi >= 0:
            b.oi[s] = oi
        c.trades += 1
        return 1

    # --- closing ------------------------------------------------------------------------------
    def _due_now(self) -> float:
        """The earliest time any open candle closes (inf when none is open)."""
        n = len(self._slots)
        g = self.grace_s
        best = _INF
        for lvl in (self._cur, self._prev):
            h = lvl.has[:n]
            if h.any():
                d = float(lvl.start[:n][h].min()) + 60 + g
                if d < best:
                    best = d
        for f in self._forming.values():
            if n:
                d = float(f.due[:n].min())
                if d < best:
                    best = d
        return best

    def _close_due(self) -> None:
        clock = self.clock
        n = len(self._slots)
        g = self.grace_s
        while True:
            d = self._due_now()
            if d > clock or d == _INF:
                self._next_due = d
                return
            parts = []
            for lvl in (self._prev, self._cur):
                m = lvl.has[:n] & (lvl.start[:n] + 60 + g <= d)
                if m.any():
                    idx = np.flatnonzero(m)
                    parts.append((idx, lvl.pop(idx)))
            if parts:
                if len(parts) == 1:
                    idx, cols = parts[0]
                else:
                    idx = np.concatenate([pp[0] for pp in parts])
                    cols = tuple(np.concatenate([pp[1][k] for pp in parts]) for k in range(9))
                batch = self._batch(1, idx, cols)
                self._emit(batch)
                self._fold(batch)
            for minutes in self._longer:
                f = self._forming[minutes]
                m = f.due[:n] <= d
                if m.any():
                    idx = np.flatnonzero(m)
                    org = f.origin[idx].copy()
                    self._emit(self._batch(minutes, idx, f.pop(idx), org))

    def _batch(self, minutes: int, idx: np.ndarray, cols: tuple[np.ndarray, ...],
               origin: np.ndarray | None = None) -> ClosedCandles:
        start, o, h, lo, c, v, oi, ticks, partial = cols
        return ClosedCandles(minutes, idx, self._slots.tokens[idx], start, o, h, lo, c, v, oi,
                             ticks, partial, np.zeros(len(idx), np.bool_), self._symbols,
                             self._exchanges, origin)

    def _fold(self, m1: ClosedCandles) -> None:
        """Fold closed minutes into the longer intervals' forming candles (rule 2 anchoring)."""
        if not self._longer:
            return
        s = m1.slot
        st = self._st
        day0 = (m1.start + IST_OFFSET_S) // DAY_S * DAY_S - IST_OFFSET_S
        dopen = day0 + st.open_off[s]
        for minutes in self._longer:
            span = minutes * 60
            f = self._forming[minutes]
            b = dopen + (m1.start - dopen) // span * span
            has = f.has[s]
            other = has & (f.start[s] != b)
            if other.any():  # its end has passed (minutes close in order): close it first
                idx = s[other]
                org = f.origin[idx].copy()
                self._emit(self._batch(minutes, idx, f.pop(idx), org))
                has = has & ~other
            new = ~has
            if new.any():
                ns = s[new]
                f.has[ns] = True
                f.start[ns] = b[new]
                f.open[ns] = m1.open[new]
                f.high[ns] = m1.high[new]
                f.low[ns] = m1.low[new]
                f.close[ns] = m1.close[new]
                f.volume[ns] = m1.volume[new]
                f.oi[ns] = m1.oi[new]
                f.ticks[ns] = m1.ticks[new]
                f.partial[ns] = m1.partial[new]
                f.origin[ns] = m1.origins[new]
                f.due[ns] = np.minimum(b[new] + span, day0[new] + st.close_off[ns]) + self.grace_s
            if has.any():
                es = s[has]
                f.high[es] = np.maximum(f.high[es], m1.high[has])
                f.low[es] = np.minimum(f.low[es], m1.low[has])
                f.close[es] = m1.close[has]
                f.volume[es] += m1.volume[has]
                moi = m1.oi[has]
                f.oi[es] = np.where(moi >= 0, moi, f.oi[es])
                f.ticks[es] += m1.ticks[has]
                f.partial[es] |= m1.partial[has]
                f.origin[es] = np.maximum(f.origin[es], m1.origins[has])

    def _emit(self, batch: ClosedCandles) -> None:
        if self.fill_gaps:
            gaps = self._gaps(batch)
            if gaps is not None:
                self._deliver(gaps)
        self._deliver(batch)

    def _gaps(self, batch: ClosedCandles) -> ClosedCandles | None:
        """Rule 10's synthetic candles between each slot's last real candle and this one."""
        minutes = batch.interval_min
        lr = self._last_real[minutes]
        s = batch.slot
        span = minutes * 60
        cand = lr.has[s] & (batch.start - lr.start[s] > span)
        out: list[Candle] = []
        slots: list[int] = []
        for i in np.flatnonzero(cand).tolist():
            k = int(s[i])
            tok = int(batch.token[i])
            oi = int(lr.oi[k])
            prev = Candle(tok, minutes, int(lr.start[k]), 0.0, 0.0, 0.0, float(lr.close[k]), 0,
                          None if oi < 0 else oi, 0, False, False, True, self._symbols[k],
                          self._exchanges[k])
            cur = Candle(tok, minutes, int(batch.start[i]), 0.0, 0.0, 0.0, 0.0, 0, None, 0)
            g = synthetic_between(prev, cur, self._disconnects)
            out.extend(g)
            slots.extend([k] * len(g))
        lr.has[s] = True
        lr.start[s] = batch.start
        lr.close[s] = batch.close
        lr.oi[s] = batch.oi
        if not out:
            return None
        gb = ClosedCandles.from_candles(out, slots, minutes)
        gb.symbols, gb.exchanges = self._symbols, self._exchanges
        return gb

    def _deliver(self, batch: ClosedCandles) -> None:
        h = self._hist[batch.interval_min]
        h.reserve(len(self._slots))
        h.append(batch)
        c = self.counters
        c.candles_closed += len(batch)
        for bfn in self._batch_callbacks:
            try:
                bfn(batch)
            except Exception as exc:  # one callback's failure never reaches the engine or others
                c.callback_errors += 1
                c.last_callback_error = f"{type(exc).__name__}: {exc}"
        if self._callbacks:
            for candle in batch.candles():
                for fn in self._callbacks:
                    try:
                        fn(candle)
                    except Exception as exc:
                        c.callback_errors += 1
                        c.last_callback_error = f"{type(exc).__name__}: {exc}"

    # --- history from elsewhere -------------------------------------------------------------
    def insert_closed(self, candles: Iterable[Candle]) -> int:
        """Put closed candles from elsewhere (Kite's historical API at a warm start, a repaired
        minute) into the history, replacing any held candle of the same instrument, interval and
        start; returns how many were taken. Forming candles are left alone, and no callback is
        called: these candles were not closed by this feed. Intervals not built are skipped."""
        groups: dict[tuple[int, int], list[Candle]] = {}
        for c in candles:
            if c.interval_min in self._hist:
                groups.setdefault((c.instrument_token, c.interval_min), []).append(c)
        taken = 0
        for (tok, minutes), rows in groups.items():
            s = self._slot(tok)
            rows.sort(key=lambda c: c.start)
            batch = ClosedCandles.from_candles(rows, [s] * len(rows), minutes)
            self._hist[minutes].replace(s, batch)
            taken += len(rows)
        return taken

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
        s = self._slot(token)
        # History's minutes are over (Kite serves a minute once it closed): the feed's clock may
        # move to their end (rule 8, never past now() + max_ahead_s), so a tick for one of them
        # that comes after is late rather than opening a second candle for the same minute.
        open_now = {int(lv.start[s]) for lv in (self._prev, self._cur) if lv.has[s]}
        limit = self.ahead_limit()
        given = [m for m in minutes if m.interval_min == 1 and int(m.start) not in open_now
                 and m.start + 60 <= limit]
        if not given:
            return []
        self._advance(max(m.start for m in given) + 60)
        symbol, exchange = self._symbols[s], self._exchanges[s]
        for m in given:
            m.closed = True
            m.symbol, m.exchange = symbol, exchange
        self.insert_closed(given)
        out: list[Candle] = list(given)
        real = [m for m in self.history(token, 1) if not m.synthetic]
        st, g = self._st, self.grace_s
        open_off, close_off = int(st.open_off[s]), int(st.close_off[s])
        for minutes_n in self._longer:
            span = minutes_n * 60
            f = self._forming[minutes_n]
            touched = sorted({backfill.bucket_start(int(m.start), minutes_n,
                                                    _day0(m.start) + open_off) for m in given})
            rebuilt: list[Candle] = []
            for b in touched:
                inside = [m for m in real if b <= m.start < b + span]
                if not inside:
                    continue
                end = min(b + span, _day0(b) + close_off)
                if f.has[s] and int(f.start[s]) == b:
                    c = backfill.fold(inside, minutes_n, b, closed=False)
                    _set_level(f, s, c, end + g)
                    out.append(c)
                elif end + g <= self.clock or (f.has[s] and int(f.start[s]) > b):
                    rebuilt.append(backfill.fold(inside, minutes_n, b, closed=True))
                elif not f.has[s]:
                    c = backfill.fold(inside, minutes_n, b, closed=False)
                    _set_level(f, s, c, end + g)
                    self._next_due = min(self._next_due, end + g)
                    out.append(c)
            if rebuilt:
                self.insert_closed(rebuilt)
                out += rebuilt
        return out

    # --- reading ------------------------------------------------------------------------------
    def _candle(self, lvl: Level, s: int, minutes: int, closed: bool) -> Candle:
        oi = int(lvl.oi[s])
        return Candle(int(self._slots.tokens[s]), minutes, int(lvl.start[s]), float(lvl.open[s]),
                      float(lvl.high[s]), float(lvl.low[s]), float(lvl.close[s]),
                      int(lvl.volume[s]), None if oi < 0 else oi, int(lvl.ticks[s]),
                      bool(lvl.partial[s]), False, closed, self._symbols[s], self._exchanges[s],
                      ORIGINS[int(lvl.origin[s])])

    def forming(self, token: int, interval: Interval | str | int = ONE_MINUTE) -> Candle | None:
        """The candle still forming for `token` in `interval` (closed=False), or None."""
        iv = parse_interval(interval)
        s = self._slots.get(token)
        if s is None or not self._st.seen[s]:
            return None
        if iv.minutes == 1:
            return self._candle(self._cur, s, 1, False) if self._cur.has[s] else None
        f = self._forming.get(iv.minutes)
        out = self._candle(f, s, iv.minutes, False) if f is not None and f.has[s] else None
        span = iv.seconds
        st = self._st
        open_s = int(st.day[s]) * DAY_S - IST_OFFSET_S + int(st.open_off[s])
        # The forming minute(s) inside the current longer bucket complete the picture.
        mins = [self._candle(lvl, s, 1, False) for lvl in (self._prev, self._cur) if lvl.has[s]]
        for m in sorted(mins, key=lambda c: c.start):
            mstart = open_s + (m.start - open_s) // span * span
            if out is None or mstart > out.start:
                out = m
                out.interval_min = iv.minutes
                out.start = mstart
            elif out.start == mstart:
                merge_into(out, m)
        return out

    def forming_batch(self, interval: Interval | str | int = ONE_MINUTE) -> ClosedCandles:
        """Every instrument's forming candle in `interval` as one batch (rows in slot order),
        equal row for row to `forming()`, which makes one `Candle` at a time. What a publisher
        sends each second for 9000 instruments: a few array operations instead of 9000
        objects, so the lock it holds is held for well under a millisecond."""
        iv = parse_interval(interval)
        n = len(self._slots)
        st, cur, prev = self._st, self._cur, self._prev
        s = np.flatnonzero(st.seen[:n])
        if iv.minutes == 1:
            s = s[cur.has[s]]
            return self._batch(1, s, cur.rows(s), cur.origin[s].copy())
        # An interval not built here has no folded minutes: its forming candle is made of the
        # open minutes alone, as forming() makes it.
        f = self._forming.get(iv.minutes)
        span = iv.seconds
        open_s = st.day[s] * DAY_S - IST_OFFSET_S + st.open_off[s]
        # As forming() does: the folded minutes (f), then the minute waiting out the grace and
        # the newest one, oldest first; a minute of a later bucket replaces what came before,
        # a minute of the same bucket merges in.
        base = cur if f is None else f
        has = np.zeros(len(s), np.bool_) if f is None else f.has[s]
        out = list(base.rows(s))
        origin = base.origin[s]
        p_has, c_has = prev.has[s], cur.has[s]
        p_rows = (*prev.rows(s), prev.origin[s])
        c_rows = (*cur.rows(s), cur.origin[s])
        # The older minute is prev's; forming() sorts them anyway, and so does this.
        swap = p_has & c_has & (prev.start[s] > cur.start[s])
        if swap.any():
            p_rows, c_rows = (tuple(np.where(swap, b, a) for a, b in zip(p_rows, c_rows,
                                                                        strict=True)),
                              tuple(np.where(swap, a, b) for a, b in zip(p_rows, c_rows,
                                                                        strict=True)))
        for rows, m_has in ((p_rows, p_has), (c_rows, c_has)):
            m_start, mo, mh, ml, mc, mv, moi, mt, mp, morg = rows
            bucket = open_s + (m_start - open_s) // span * span
            take = m_has & (~has | (bucket > out[0]))
            merge = m_has & has & (bucket == out[0])
            start, o, h, lo, c, v, oi, ticks, partial = out
            out = [
                np.where(take, bucket, start),
                np.where(take, mo, o),
                np.where(take, mh, np.where(merge, np.maximum(h, mh), h)),
                np.where(take, ml, np.where(merge, np.minimum(lo, ml), lo)),
                np.where(take | merge, mc, c),
                np.where(take, mv, np.where(merge, v + mv, v)),
                np.where(take | (merge & (moi >= 0)), moi, oi),
                np.where(take, mt, np.where(merge, ticks + mt, ticks)),
                np.where(take, mp, partial | (merge & mp)),
            ]
            origin = np.where(take, morg, np.where(merge, np.maximum(origin, morg), origin))
            has |= m_has
        keep = np.flatnonzero(has)
        return self._batch(iv.minutes, s[keep], tuple(col[keep] for col in out), origin[keep])

    def awaiting_close(self, token: int, interval: Interval | str | int = ONE_MINUTE
                       ) -> list[Candle]:
        """`token`'s candles of `interval` whose end has passed but whose grace has not, oldest
        first: complete for all the feed has said, neither forming nor in history yet (a chart
        that left them out would show a hole for the grace after every boundary)."""
        iv = parse_interval(interval)
        s = self._slots.get(token)
        if s is None or not self._st.seen[s]:
            return []
        prev = self._candle(self._prev, s, 1, False) if self._prev.has[s] else None
        if iv.minutes == 1:
            return [prev] if prev is not None else []
        f = self._forming.get(iv.minutes)
        if f is None or not f.has[s]:
            return []
        held = self._candle(f, s, iv.minutes, False)
        now = self.forming(token, iv)
        if now is None or now.start <= held.start:
            return []  # it is the forming one
        if prev is not None and prev.start < held.start + iv.seconds:
            merge_into(held, prev)  # its last minute, waiting out the grace too
        return [held]

    def forming_all(self) -> list[Candle]:
        """Every candle still forming, in every interval (for a clean shutdown)."""
        out: list[Candle] = []
        for tok in self.tokens():
            for iv in self.intervals:
                c = self.forming(tok, iv)
                if c is not None:
                    out.append(c)
        return out

    def history(self, token: int, interval: Interval | str | int = ONE_MINUTE) -> list[Candle]:
        """Closed candles held for `token` in `interval`, oldest first."""
        ring = self.history_ring(token, interval)
        return [] if ring is None else ring.last()

    def history_ring(self, token: int, interval: Interval | str | int) -> HistoryView | None:
        minutes = parse_interval(interval).minutes
        s = self._slots.get(token)
        h = self._hist.get(minutes)
        if s is None or h is None or not h.size(s):
            return None
        return HistoryView(h, s, token, self._symbols[s], self._exchanges[s])

    def history_batch(self, token: int, interval: Interval | str | int) -> ClosedCandles | None:
        """Closed candles held for `token` in `interval` as one batch (no objects made)."""
        minutes = parse_interval(interval).minutes
        s = self._slots.get(token)
        h = self._hist.get(minutes)
        if s is None or h is None:
            return None
        return h.closed(s, token, self._symbols, self._exchanges)

    def tokens(self) -> list[int]:
        n = len(self._slots)
        return self._slots.tokens[:n][self._st.seen[:n]].tolist()

    def close_all(self) -> list[Candle]:
        """Close everything still forming now (end of a replay); returns what closed."""
        closed: list[Candle] = []
        self._callbacks.append(closed.append)
        try:
            self._advance(_INF)  # the end of a replay: everything, whatever now() says
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


def _day0(epoch_s: float) -> int:
    """The start (00:00 IST, epoch s) of the day holding `epoch_s`."""
    return int((epoch_s + IST_OFFSET_S) // DAY_S * DAY_S - IST_OFFSET_S)


def _set_level(f: Level, s: int, c: Candle, due: float) -> None:
    """Make `c` slot `s`'s open candle in level `f`, closing at `due`."""
    f.has[s] = True
    f.start[s] = c.start
    f.open[s], f.high[s], f.low[s], f.close[s] = c.open, c.high, c.low, c.close
    f.volume[s] = c.volume
    f.oi[s] = NO_OI if c.oi is None else c.oi
    f.ticks[s], f.partial[s] = c.ticks, c.partial
    f.due[s] = due
    f.origin[s] = ORIGIN_CODE[c.origin]


def _day_of(epoch_s: float) -> int:
    return math.floor((epoch_s + IST_OFFSET_S) / DAY_S)
