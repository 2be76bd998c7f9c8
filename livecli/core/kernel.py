"""The streaming engine's compiled kernel: a frame's ticks applied one by one, at C speed.

Why it exists: the vectorised frame path (fold.py) costs a fixed few dozen numpy calls a frame,
and on a slow core that is as much as a plain Python loop over a 500-tick frame; frames that
repeat instruments need sorts and segment reductions on top. Applying the ticks in arrival
order, one at a time, is also the definition the other paths are held to (`_tick`): compiled,
that loop is exact by construction and needs no waves, groups or segments.

The kernel is numba's (`njit`, cached on disk; it keeps the GIL, so a reader of the engine on
another thread sees what it saw with the numpy path). numba is loaded only by `load()`, which a
session calls on a thread of its own when its `stream.engine` setting asks for it (by default from
500 instruments: the import and a cached load take about half a second of a core and 110 MB
(bench/engine.py load), the first compile on a machine a few seconds), so no command waits for it
and the engine keeps using the numpy path until `loaded()` returns the kernel. Where numba is
absent (or `stream.engine` is "numpy"), the numpy path is the only one.

`run_frame` is `CandleEngine._tick` applied to ticks pos..n-1 in order, minus what the engine's
frame step has already decided column-wise (ticks ahead of the clock, after the close, or late
by the feed's clock are in `drop`; each tick's day, session open and minute are given). It
stops before the first tick whose clock reaches `next_due` (a close is due: the engine closes,
in Python, and calls it again from there) and returns (that position, the clock, the earliest
due time of the minutes it opened).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_kernel: Callable[..., tuple[int, float, float]] | None = None
_failed: str | None = None


def loaded() -> Callable[..., tuple[int, float, float]] | None:
    """The kernel if `load()` has made it, else None (never imports anything)."""
    return _kernel


def failed() -> str | None:
    """Why the kernel could not be made (numba absent or refusing), or None."""
    return _failed


def load() -> Callable[..., tuple[int, float, float]] | None:
    """Import numba and make the kernel (compiled once per machine, then read from the cache);
    None where numba is absent or refuses. Any number of calls: two at once may both compile,
    and either result serves."""
    global _kernel, _failed
    if _kernel is None and _failed is None:
        try:
            fn = _compile()
            _warm(fn)
        except Exception as exc:  # no numba, or one that cannot compile here
            _failed = f"{type(exc).__name__}: {exc}"
        else:
            _kernel = fn
    return _kernel


def _warm(fn: Callable[..., Any]) -> None:
    """Call the kernel once on empty columns, so its compiled code is loaded before a frame
    needs it (the first call of a cached function reads it from disk)."""
    import numpy as np

    i8, f8, b1 = np.zeros(1, np.int64), np.zeros(1, np.float64), np.zeros(1, np.bool_)
    o1 = np.zeros(1, np.int8)
    cols = (i8, f8, f8, i8, f8, f8, i8, i8, i8, i8, f8, b1)
    st = (i8, i8, i8, f8, f8, f8, b1)
    lvl = (b1, i8, f8, f8, f8, f8, i8, i8, i8, b1, o1)
    fn(0, 0, *cols, 0.0, np.inf, 0.0, *st, *lvl, *lvl, np.zeros(4, np.int64))


def _compile() -> Callable[..., tuple[int, float, float]]:
    import math

    from numba import njit

    nan = math.nan

    @njit(cache=True, error_model="numpy")
    def run_frame(pos, n, sl, t, p, v, hi, lo, oi, day, open_s, mstart, cl, drop,
                  clock, next_due, grace,
                  st_day, st_early, st_lv, st_lp, st_dh, st_dl, st_fp,
                  c_has, c_start, c_open, c_high, c_low, c_close, c_vol, c_oi, c_ticks, c_part,
                  c_org,
                  p_has, p_start, p_open, p_high, p_low, p_close, p_vol, p_oi, p_ticks, p_part,
                  p_org,
                  counts):  # trades, book-only, bad, late (an older day)
        i = pos
        while i < n:
            ci = cl[i]
            if ci > clock:
                clock = ci
            if clock >= next_due:
                return i, clock, next_due
            if drop[i]:
                i += 1
                continue
            s = sl[i]
            ti = t[i]
            pi = p[i]
            vi = v[i]
            d = day[i]
            os_ = open_s[i]
            ms = mstart[i]
            first = d != st_day[s]
            if first:
                if st_day[s] > d:  # an older day than the one in progress: its candles are gone
                    counts[3] += 1
                    i += 1
                    continue
                st_day[s] = d
                st_early[s] = os_ + 60
                st_lv[s] = -1
                st_lp[s] = nan
                st_dh[s] = nan
                st_dl[s] = nan
                st_fp[s] = ti >= os_ + 60
            dv = 0
            if vi >= 0:
                lv = st_lv[s]
                if lv >= 0:
                    if vi < lv:
                        counts[2] += 1
                        i += 1
                        continue
                    if vi == lv and not first:
                        st_lp[s] = pi
                        counts[1] += 1
                        i += 1
                        continue
                    dv = vi - lv
                elif ti < st_early[s]:
                    dv = vi
                st_lv[s] = vi
            elif pi == st_lp[s] and not first:
                counts[1] += 1
                i += 1
                continue
            st_lp[s] = pi
            part = first and st_fp[s]
            # Which open minute the tick goes to: 0 the newest (cur), 1 the older one (prev).
            if c_has[s] and c_start[s] == ms:
                b = 0
            elif p_has[s] and p_start[s] == ms:
                b = 1
            else:
                if not c_has[s]:
                    b = 0
                elif ms > c_start[s]:  # the newest becomes the older (that one closed already)
                    p_start[s] = c_start[s]
                    p_open[s] = c_open[s]
                    p_high[s] = c_high[s]
                    p_low[s] = c_low[s]
                    p_close[s] = c_close[s]
                    p_vol[s] = c_vol[s]
                    p_oi[s] = c_oi[s]
                    p_ticks[s] = c_ticks[s]
                    p_part[s] = c_part[s]
                    p_org[s] = c_org[s]
                    p_has[s] = True
                    c_has[s] = False
                    b = 0
                else:
                    b = 1
                if b == 0:
                    c_has[s] = True
                    c_start[s] = ms
                    c_open[s] = pi
                    c_high[s] = pi
                    c_low[s] = pi
                    c_close[s] = pi
                    c_vol[s] = 0
                    c_oi[s] = -1
                    c_ticks[s] = 0
                    c_part[s] = part
                else:
                    p_has[s] = True
                    p_start[s] = ms
                    p_open[s] = pi
                    p_high[s] = pi
                    p_low[s] = pi
                    p_close[s] = pi
                    p_vol[s] = 0
                    p_oi[s] = -1
                    p_ticks[s] = 0
                    p_part[s] = part
                due = ms + 60 + grace
                if due < next_due:
                    next_due = due
            if b == 0:
                bh, bl, bc, bv, bo, bt, bp = c_high, c_low, c_close, c_vol, c_oi, c_ticks, c_part
            else:
                bh, bl, bc, bv, bo, bt, bp = p_high, p_low, p_close, p_vol, p_oi, p_ticks, p_part
            if pi > bh[s]:
                bh[s] = pi
            elif pi < bl[s]:
                bl[s] = pi
            if part:
                bp[s] = True
            hii = hi[i]
            loi = lo[i]
            if not first:
                dh = st_dh[s]
                if hii > dh:
                    if hii > bh[s]:
                        bh[s] = hii
                    st_dh[s] = hii
                elif dh != dh:
                    st_dh[s] = hii
                dl = st_dl[s]
                if loi < dl:
                    if loi < bl[s]:
                        bl[s] = loi
                    st_dl[s] = loi
                elif dl != dl:
                    st_dl[s] = loi
            else:
                st_dh[s] = hii
                st_dl[s] = loi
            bc[s] = pi
            bv[s] += dv
            bt[s] += 1
            if oi[i] >= 0:
                bo[s] = oi[i]
            counts[0] += 1
            i += 1
        return i, clock, next_due

    return run_frame
