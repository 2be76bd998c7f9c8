"""Forming candles as arrays indexed by instrument slot, and the vectorised per-frame update.

The columnar engine (livecli/core/engine.py) holds, per instrument slot, the day's trade state
(`InstState`: last good cumulative volume, last price, day high/low as of the last trade) and
up to two open 1-minute candles (`Level`: the newest minute, and the one before it while it
waits out the grace). A decoded frame's ticks that fall in their instrument's open minute are
applied here with numpy, a few array operations per frame instead of a Python step per tick;
everything else (a first tick, a new minute or day, a late tick) is the engine's slow path.

A frame may hold several ticks of one instrument. They are applied in waves: the first tick of
each instrument in the frame, then the second, and so on, each wave touching distinct slots, so
every tick sees exactly the state the ticks before it left (CANDLES.md rules 5-7 are sequential
per instrument). Kite's frames hold one snapshot per instrument: one wave.
"""

from __future__ import annotations

import numpy as np

from livecli.core.slots import grow

NO_OI = -1


class Level:
    """One open candle per slot (`has` says whether there is one)."""

    __slots__ = ("close", "due", "has", "high", "low", "oi", "open", "partial", "start", "ticks",
                 "volume")

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

    def pop(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        """(start, open, high, low, close, volume, oi, ticks, partial) of `idx`; now empty."""
        out = (self.start[idx], self.open[idx], self.high[idx], self.low[idx], self.close[idx],
               self.volume[idx], self.oi[idx], self.ticks[idx], self.partial[idx])
        self.has[idx] = False
        self.due[idx] = np.inf
        return out

    def move(self, s: int, to: Level) -> None:
        """Move slot `s`'s candle into `to` (the newest minute becomes the older one)."""
        for k in ("start", "open", "high", "low", "close", "volume", "oi", "ticks", "partial"):
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


def waves(slots: np.ndarray, scratch: np.ndarray) -> list[np.ndarray] | None:
    """Positions of `slots` split so that each part holds a slot at most once, in order.

    None when the slots are already distinct (the usual frame: one wave, no sort). `scratch`
    is an int array at least as long as the highest slot + 1 (its contents are overwritten).
    """
    n = len(slots)
    ar = np.arange(n)
    scratch[slots] = ar
    if (scratch[slots] == ar).all():
        return None
    order = np.argsort(slots, kind="stable")
    ss = slots[order]
    first = np.empty(n, np.bool_)
    first[0] = True
    np.not_equal(ss[1:], ss[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    rank = np.empty(n, np.int64)
    rank[order] = ar - np.repeat(starts, np.diff(np.append(starts, n)))
    by_rank = np.argsort(rank, kind="stable")
    counts = np.bincount(rank)
    return np.split(by_rank, np.cumsum(counts)[:-1])


def apply_fast(st: InstState, cur: Level, sl: np.ndarray, t: np.ndarray, p: np.ndarray,
               v: np.ndarray, hi: np.ndarray, lo: np.ndarray, oi: np.ndarray
               ) -> tuple[int, int, int]:
    """Apply ticks of distinct slots, each inside its slot's open minute `cur`.

    Returns (trades, book-only, bad). The rules are the engine's slow path's, per tick.
    """
    lv = st.lv[sl]
    hasv = v >= 0
    if hasv.all() and (lv >= 0).all():  # full and quote ticks of instruments with volume
        bad = v < lv
        trade = v > lv
        n_bad = int(bad.sum())
        n_trade = int(trade.sum())
        book = len(sl) - n_bad - n_trade
        dv = v - lv
        np.maximum(lv, v, out=lv)
        st.lv[sl] = lv
        if n_bad:
            ok = ~bad
            st.lp[sl[ok]] = p[ok]
        else:
            st.lp[sl] = p
    else:
        known = lv >= 0
        lp = st.lp[sl]
        bad = hasv & known & (v < lv)
        tv = hasv & ~bad & (~known | (v > lv))
        tp = ~hasv & (p != lp)
        trade = tv | tp
        n_bad = int(bad.sum())
        n_trade = int(trade.sum())
        book = len(sl) - n_bad - n_trade
        dv = np.where(hasv & known, v - lv, np.where(hasv & (t < st.early_end[sl]), v, 0))
        st.lv[sl[tv]] = v[tv]
        ok = ~bad
        st.lp[sl[ok]] = p[ok]
    if not n_trade:
        return 0, book, n_bad
    if n_trade != len(sl):
        sl, p, hi, lo, oi, dv = sl[trade], p[trade], hi[trade], lo[trade], oi[trade], dv[trade]
    dh = st.dh[sl]
    dl = st.dl[sl]
    with np.errstate(invalid="ignore"):
        # Rule 6: a day high above the one seen at the previous trade widens the candle.
        wh = hi > dh
        wl = lo < dl
    nh = np.maximum(cur.high[sl], p)
    nl = np.minimum(cur.low[sl], p)
    if wh.any():
        nh = np.where(wh, np.maximum(nh, hi), nh)
    if wl.any():
        nl = np.where(wl, np.minimum(nl, lo), nl)
    cur.high[sl] = nh
    cur.low[sl] = nl
    st.dh[sl] = np.fmax(dh, hi)  # NaN-skipping: the first known day high is taken as is
    st.dl[sl] = np.fmin(dl, lo)
    cur.close[sl] = p
    cur.volume[sl] += dv
    cur.ticks[sl] += 1
    has_oi = oi >= 0
    if has_oi.any():
        cur.oi[sl[has_oi]] = oi[has_oi]
    return n_trade, book, n_bad
