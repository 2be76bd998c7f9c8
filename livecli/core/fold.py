"""Forming candles as arrays indexed by instrument slot, and the vectorised per-frame update.

The columnar engine (livecli/core/engine.py) holds, per instrument slot, the day's trade state
(`InstState`: last good cumulative volume, last price, day high/low as of the last trade) and
up to two open 1-minute candles (`Level`: the newest minute, and the one before it while it
waits out the grace). A decoded frame's ticks that fall in their instrument's open minute are
applied here with numpy, a few array operations per frame instead of a Python step per tick;
everything else (a first tick, a new minute or day, a late tick) is the engine's slow path.

A frame may hold several ticks of one instrument (CANDLES.md rules 5-7 are sequential per
instrument). Kite's frames hold one snapshot per instrument: one pass (`apply_wave`). A few
repeats are applied in waves: the first tick of each instrument in the frame, then the second,
and so on, each wave touching distinct slots, so every tick sees exactly the state the ticks
before it left. Many repeats of instruments whose ticks all fall in their open minute take one
sort by slot and segment reductions (`apply_grouped`).
"""

from __future__ import annotations

import numpy as np

from livecli.core.slots import grow

NO_OI = -1


class Level:
    """One open candle per slot (`has` says whether there is one)."""

    __slots__ = ("close", "due", "has", "high", "low", "oi", "open", "origin", "partial", "start",
                 "ticks", "volume")

    def __init__(self) -> None:
        self.has = np.zeros(0, np.bool_)
        self.start = np.zeros(0, np.int64)
        self.open = np.zeros(0, np.float64)
        self.high = np.zeros(0, np.float64)
        self.low = np.zeros(0, np.float64)
        self.close = np.zeros(0, np.float64)
        self.volume = np.zeros(0, np.int64)
        self.oi = np.zeros(0, np.int64)
        self.ticks = np.zeros(0, np.int64)
        self.partial = np.zeros(0, np.bool_)
        self.due = np.zeros(0, np.float64)  # longer intervals: when it closes
        # Longer intervals: the "least live" origin of the minutes folded in (candles.ORIGINS
        # codes; a 1-minute level is always live, history's minutes never enter one).
        self.origin = np.zeros(0, np.int8)

    def ensure(self, n: int) -> None:
        if len(self.has) >= n:
            return
        self.has = grow(self.has, n, False)
        self.start = grow(self.start, n, 0)
        self.open = grow(self.open, n, 0.0)
        self.high = grow(self.high, n, 0.0)
        self.low = grow(self.low, n, 0.0)
        self.close = grow(self.close, n, 0.0)
        self.volume = grow(self.volume, n, 0)
        self.oi = grow(self.oi, n, NO_OI)
        self.ticks = grow(self.ticks, n, 0)
        self.partial = grow(self.partial, n, False)
        self.due = grow(self.due, n, np.inf)
        self.origin = grow(self.origin, n, 0)

    def rows(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        """(start, open, high, low, close, volume, oi, ticks, partial) of `idx` (copies)."""
        return (self.start[idx], self.open[idx], self.high[idx], self.low[idx], self.close[idx],
                self.volume[idx], self.oi[idx], self.ticks[idx], self.partial[idx])

    def pop(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        """`rows(idx)`; those candles are then no longer open."""
        out = self.rows(idx)
        self.has[idx] = False
        self.due[idx] = np.inf
        self.origin[idx] = 0
        return out

    def move(self, s: int, to: Level) -> None:
        """Move slot `s`'s candle into `to` (the newest minute becomes the older one)."""
        for k in ("start", "open", "high", "low", "close", "volume", "oi", "ticks", "partial",
                  "origin"):
            getattr(to, k)[s] = getattr(self, k)[s]
        to.has[s] = True
        self.has[s] = False

    def open_at(self, s: int, start: int, price: float, partial: bool) -> None:
        self.has[s] = True
        self.start[s] = start
        self.open[s] = self.high[s] = self.low[s] = self.close[s] = price
        self.volume[s] = 0
        self.oi[s] = NO_OI
        self.ticks[s] = 0
        self.partial[s] = partial


class InstState:
    """Per slot: the session's offsets and the day's trade state (CANDLES.md rules 5-7)."""

    __slots__ = ("close_off", "day", "dh", "dl", "early_end", "first_partial", "lp", "lv",
                 "open_off", "seen")

    def __init__(self) -> None:
        self.open_off = np.zeros(0, np.int64)  # session open/close, seconds after IST midnight
        self.close_off = np.zeros(0, np.int64)
        self.day = np.zeros(0, np.int64)  # the IST day in progress (-1: none)
        self.early_end = np.zeros(0, np.int64)  # open + 60: a first volume before it counts
        self.lv = np.zeros(0, np.int64)  # last good cumulative volume, -1 while unknown
        self.lp = np.zeros(0, np.float64)  # price of the previous accepted tick
        self.dh = np.zeros(0, np.float64)  # day high / low as of the previous trade
        self.dl = np.zeros(0, np.float64)
        self.first_partial = np.zeros(0, np.bool_)
        self.seen = np.zeros(0, np.bool_)  # had a tick (the old engine's "has a state")

    def ensure(self, n: int) -> None:
        if len(self.day) >= n:
            return
        self.open_off = grow(self.open_off, n, 0)
        self.close_off = grow(self.close_off, n, 0)
        self.day = grow(self.day, n, -1)
        self.early_end = grow(self.early_end, n, 0)
        self.lv = grow(self.lv, n, -1)
        self.lp = grow(self.lp, n, np.nan)
        self.dh = grow(self.dh, n, np.nan)
        self.dl = grow(self.dl, n, np.nan)
        self.first_partial = grow(self.first_partial, n, False)
        self.seen = grow(self.seen, n, False)


def distinct_count(slots: np.ndarray, scratch: np.ndarray) -> int:
    """How many distinct slots `slots` holds, in O(n) (`scratch`: an int array at least as long
    as the highest slot + 1; its contents are overwritten)."""
    ar = np.arange(len(slots))
    scratch[slots] = ar  # each slot keeps its last position
    return int(np.count_nonzero(scratch[slots] == ar))


def first_of_each(slots: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """A mask of each slot's first position in `slots` (O(n), no sort)."""
    ar = np.arange(len(slots))
    scratch[slots[::-1]] = ar[::-1]  # each slot keeps its first position
    return scratch[slots] == ar


def waves(slots: np.ndarray, scratch: np.ndarray, cheap: int = 4) -> list[np.ndarray]:
    """Positions of `slots` split so that each part holds a slot at most once, in order:
    each slot's first tick, then the second of those that have one, and so on. The first
    `cheap` parts without a sort (a frame repeats few instruments), the rest by rank."""
    out: list[np.ndarray] = []
    pos = np.arange(len(slots))
    for _ in range(cheap):
        if not len(pos):
            return out
        first = first_of_each(slots[pos], scratch)
        out.append(pos[first])
        pos = pos[~first]
    if len(pos):
        s = slots[pos]
        n = len(s)
        order = np.argsort(s, kind="stable")
        ss = s[order]
        head = np.empty(n, np.bool_)
        head[0] = True
        np.not_equal(ss[1:], ss[:-1], out=head[1:])
        starts = np.flatnonzero(head)
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
        by_rank = np.argsort(rank, kind="stable")
        counts = np.bincount(rank)
        out.extend(pos[w] for w in np.split(by_rank, np.cumsum(counts)[:-1]))
    return out


def apply_wave(st: InstState, cur: Level, prev: Level, sl: np.ndarray, t: np.ndarray,
               p: np.ndarray, v: np.ndarray, hi: np.ndarray, lo: np.ndarray, oi: np.ndarray,
               day: np.ndarray, open_s: np.ndarray, mstart: np.ndarray, grace_s: float
               ) -> tuple[np.ndarray | None, int, int, int, int, float]:
    """Apply ticks of distinct slots, as the engine's scalar `_tick` would, one each.

    The caller has dropped the ticks after the close and those late by the feed's clock.
    Returns (positions left to the scalar path or None, trades, book-only, bad, late (an
    older day), earliest due of a minute opened). The scalar path takes the rare shapes: a tick
    for the older open minute, a minute older than the newest without an open one, a new day
    while a candle is still open.
    """
    sday = st.day[sl]
    newday = day != sday
    ch = cur.has[sl]
    cs = cur.start[sl]
    in_cur = ch & (cs == mstart)
    n_late = 0
    odd_pos = None
    first = None
    simple = bool(in_cur.all())
    if not simple:
        if newday.any():
            older = day < sday
            n_late = int(np.count_nonzero(older))
            first = newday & ~older
        else:
            older = None
        shift = ch & (mstart > cs)
        ph = prev.has[sl]
        if first is None:
            odd = ~in_cur & ch & ((mstart < cs) | ph)
        else:
            odd = ((~first & ~in_cur & ch & ((mstart < cs) | ph)) | (first & (ch | ph)))
            odd &= ~older
        keep = ~odd if older is None else ~odd & ~older
        if np.count_nonzero(odd):
            odd_pos = np.flatnonzero(odd)
        if not keep.all():
            k = np.flatnonzero(keep)
            sl, t, p, v, hi, lo, oi = sl[k], t[k], p[k], v[k], hi[k], lo[k], oi[k]
            day, open_s, mstart, in_cur, shift = day[k], open_s[k], mstart[k], in_cur[k], \
                shift[k]
            if first is not None:
                first = first[k]
        if first is not None and not first.any():
            first = None
        if not len(sl):
            return odd_pos, 0, 0, 0, n_late, np.inf
    if first is not None:
        fs = sl[first]
        st.day[fs] = day[first]
        st.early_end[fs] = open_s[first] + 60
        st.first_partial[fs] = t[first] >= open_s[first] + 60
        st.lv[fs] = -1
        st.lp[fs] = np.nan
    lv = st.lv[sl]
    hasv = v >= 0
    known = lv >= 0
    if first is None and hasv.all() and known.all():  # ticks with volume, the usual
        bad = v < lv
        trade = v > lv
        n_bad = int(np.count_nonzero(bad))
        n_trade = int(np.count_nonzero(trade))
        dv = v - lv
        st.lv[sl] = np.maximum(lv, v)
    else:
        lp = st.lp[sl]
        bad = hasv & known & (v < lv)
        tv = hasv & ~bad & (~known | (v > lv))
        tp = ~hasv & (p != lp)
        if first is not None:
            tp |= ~hasv & first
        trade = tv | tp
        n_bad = int(np.count_nonzero(bad))
        n_trade = int(np.count_nonzero(trade))
        dv = np.where(hasv & known, v - lv, np.where(hasv & (t < open_s + 60), v, 0))
        st.lv[sl[tv]] = v[tv]
    n_book = len(sl) - n_bad - n_trade
    if n_bad:
        ok = ~bad
        st.lp[sl[ok]] = p[ok]
    else:
        st.lp[sl] = p
    if not n_trade:
        return odd_pos, 0, n_book, n_bad, n_late, np.inf
    if n_trade != len(sl):
        sl, p, hi, lo, oi, dv = sl[trade], p[trade], hi[trade], lo[trade], oi[trade], dv[trade]
        if not simple:
            t, mstart, in_cur, shift, open_s = t[trade], mstart[trade], in_cur[trade], \
                shift[trade], open_s[trade]
            if first is not None:
                first = first[trade]
    due = np.inf
    if not simple:
        opening = ~in_cur
        if opening.any():
            if shift.any():
                ss = sl[shift]
                for name in ("start", "open", "high", "low", "close", "volume", "oi", "ticks",
                             "partial"):
                    getattr(prev, name)[ss] = getattr(cur, name)[ss]
                prev.has[ss] = True
            os_ = sl[opening]
            po = p[opening]
            cur.has[os_] = True
            cur.start[os_] = mstart[opening]
            cur.open[os_] = po
            cur.high[os_] = po
            cur.low[os_] = po
            cur.close[os_] = po
            cur.volume[os_] = 0
            cur.oi[os_] = NO_OI
            cur.ticks[os_] = 0
            if first is None:
                cur.partial[os_] = False
            else:
                cur.partial[os_] = (first & (t >= open_s + 60))[opening]
            due = float(mstart[opening].min()) + 60 + grace_s
    dh = st.dh[sl]
    dl = st.dl[sl]
    with np.errstate(invalid="ignore"):
        # Rule 6: a day high above the one seen at the previous trade widens the candle.
        wh = hi > dh
        wl = lo < dl
    if first is not None:
        wh &= ~first
        wl &= ~first
    nh = np.maximum(cur.high[sl], p)
    nl = np.minimum(cur.low[sl], p)
    if wh.any():
        nh = np.where(wh, np.maximum(nh, hi), nh)
    if wl.any():
        nl = np.where(wl, np.minimum(nl, lo), nl)
    cur.high[sl] = nh
    cur.low[sl] = nl
    # NaN-skipping: the first known day high is taken as is; a first tick of the day resets.
    if first is None:
        st.dh[sl] = np.fmax(dh, hi)
        st.dl[sl] = np.fmin(dl, lo)
    else:
        st.dh[sl] = np.where(first, hi, np.fmax(dh, hi))
        st.dl[sl] = np.where(first, lo, np.fmin(dl, lo))
    cur.close[sl] = p
    cur.volume[sl] += dv
    cur.ticks[sl] += 1
    has_oi = oi >= 0
    if has_oi.any():
        cur.oi[sl[has_oi]] = oi[has_oi]
    return odd_pos, n_trade, n_book, n_bad, n_late, due


def apply_grouped(st: InstState, cur: Level, sl: np.ndarray, t: np.ndarray, p: np.ndarray,
                  v: np.ndarray, hi: np.ndarray, lo: np.ndarray, oi: np.ndarray
                  ) -> tuple[int, int, int] | None:
    """Apply ticks (arrival order) that all fall in their slot's open minute `cur`, several
    per slot: one sort by slot, then segment reductions (`reduceat`) instead of waves.

    Returns (trades, book-only, bad), or None, having changed nothing, when a day high fell or
    a day low rose between two ticks of one slot (then only a sequential pass is exact).
    """
    n = len(sl)
    order = np.argsort(sl, kind="stable")
    s = sl[order]
    gfirst = np.empty(n, np.bool_)
    gfirst[0] = True
    np.not_equal(s[1:], s[:-1], out=gfirst[1:])
    starts = np.flatnonzero(gfirst)
    counts = np.diff(np.append(starts, n))
    us = s[starts]
    p, v, hi, lo, oi = p[order], v[order], hi[order], lo[order], oi[order]
    # Rule 7: the last good cumulative volume before each tick.
    lv0 = st.lv[s]
    run = _group_cummax_int(v, starts, counts)
    prev_run = np.empty(n, np.int64)
    prev_run[0] = -1
    prev_run[1:] = run[:-1]
    prev_run[gfirst] = -1
    lvb = np.maximum(lv0, prev_run)
    okpos = None
    if (v >= 0).all() and (lvb >= 0).all():  # full and quote ticks with a known volume
        bad = v < lvb
        trade = v > lvb
        dv = v - lvb
        n_bad = int(np.count_nonzero(bad))
        n_trade = int(np.count_nonzero(trade))
    else:
        t = t[order]
        ar = np.arange(n)
        gstart = np.repeat(starts, counts)
        hasv = v >= 0
        known = lvb >= 0
        bad = hasv & known & (v < lvb)
        # The price of the previous tick that was not bad (rule 5, ticks without volume).
        okpos = np.maximum.accumulate(np.where(bad, -1, ar))
        prevok = np.empty(n, np.int64)
        prevok[0] = -1
        prevok[1:] = okpos[:-1]
        lpb = np.where(prevok >= gstart, p[np.maximum(prevok, 0)], st.lp[s])
        tv = hasv & ~bad & (~known | (v > lvb))
        tp = ~hasv & (p != lpb)
        trade = tv | tp
        n_bad = int(np.count_nonzero(bad))
        n_trade = int(np.count_nonzero(trade))
        dv = np.where(hasv & known, v - lvb, np.where(hasv & (t < st.early_end[s]), v, 0))
    n_book = n - n_bad - n_trade
    if n_trade:
        ts, tp_, thi, tlo, toi, tdv = s[trade], p[trade], hi[trade], lo[trade], oi[trade], \
            dv[trade]
        m = len(ts)
        tf = np.empty(m, np.bool_)
        tf[0] = True
        np.not_equal(ts[1:], ts[:-1], out=tf[1:])
        f = np.flatnonzero(tf)
        no_day_range = bool(np.isnan(thi).all() and np.isnan(tlo).all())
        if no_day_range:  # ltp-like ticks: nothing can widen the candle (rule 6)
            row_h = row_l = tp_
        else:
            # Rule 6 needs the day high as of the previous trade: the previous trade's, when day
            # highs only rise within the frame (they do: a day high cannot fall).
            ph = _prev_in_group(thi, tf)
            pl = _prev_in_group(tlo, tf)
            with np.errstate(invalid="ignore"):
                if (thi < ph).any() or (tlo > pl).any():
                    return None
                dh0 = st.dh[ts]
                dl0 = st.dl[ts]
                dhb = np.fmax(dh0, ph)
                dlb = np.fmin(dl0, pl)
                row_h = np.where(thi > dhb, np.maximum(tp_, thi), tp_)
                row_l = np.where(tlo < dlb, np.minimum(tp_, tlo), tp_)
        tu = ts[f]
        last = np.append(f[1:] - 1, m - 1)
        cur.high[tu] = np.maximum(cur.high[tu], np.maximum.reduceat(row_h, f))
        cur.low[tu] = np.minimum(cur.low[tu], np.minimum.reduceat(row_l, f))
        cur.close[tu] = tp_[last]
        cur.volume[tu] += np.add.reduceat(tdv, f)
        cur.ticks[tu] += np.diff(np.append(f, m))
        opos = np.maximum.reduceat(np.where(toi >= 0, np.arange(m), -1), f)
        has_oi = opos >= f
        if has_oi.any():
            cur.oi[tu[has_oi]] = toi[opos[has_oi]]
        if not no_day_range:
            st.dh[tu] = np.fmax(st.dh[tu], np.fmax.reduceat(thi, f))
            st.dl[tu] = np.fmin(st.dl[tu], np.fmin.reduceat(tlo, f))
    st.lv[us] = np.maximum(st.lv[us], np.maximum.reduceat(v, starts))
    glast = np.append(starts[1:] - 1, n - 1)
    if okpos is None and n_bad:
        okpos = np.maximum.accumulate(np.where(bad, -1, np.arange(n)))
    if okpos is None:  # no bad tick: the last tick of each slot
        st.lp[us] = p[glast]
    else:
        lastok = okpos[glast]
        some = lastok >= starts
        st.lp[us[some]] = p[lastok[some]]
    return n_trade, n_book, n_bad


def _group_cummax_int(v: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Running maximum within each contiguous group of ints >= -1."""
    if len(starts) == len(v):
        return v
    # Offset each group above every value of the groups before it: one global accumulate.
    off = np.repeat(np.arange(len(starts), dtype=np.int64) << 41, counts)
    return np.maximum.accumulate(off + (v + 1)) - off - 1


def _prev_in_group(x: np.ndarray, gfirst: np.ndarray) -> np.ndarray:
    """The last non-NaN value before each row within its group (NaN if none)."""
    n = len(x)
    ar = np.arange(n)
    valid = ~np.isnan(x)
    lastpos = np.maximum.accumulate(np.where(valid | gfirst, ar, 0))
    out = np.empty(n, np.float64)
    out[0] = np.nan
    out[1:] = x[lastpos[:-1]]
    # A group's first row has nothing before it; and a row whose last valid position fell
    # before its group's start (reset by gfirst, which may be NaN itself) neither.
    out[gfirst] = np.nan
    return out
