"""The batch rebuild's fast path: one sort and one pass per column for clean recordings.

Most recordings are one trading day of one session, in arrival order, where every tick is a
trade (the cumulative volume rises with each tick of an instrument) and no tick is late, after
the close, or carries a day high/low or open interest. For those the CANDLES.md rules reduce to
"group by (instrument, minute)": the candle's volume is its last cumulative volume minus the
previous candle's (or minus the first tick's when the day began before we did). This module
checks those conditions as it goes and answers None the moment one fails, so the general
rebuild (`livecli.core.batch`) takes every other recording, and both give the same candles.

Why it is faster: instruments become small codes through a lookup table (no hashing), a single
stable radix argsort on 16-bit codes orders the rows, only price, volume and the minute (16-bit)
are gathered, and candle volumes come from the cumulative volumes at candle ends instead of a
per-tick difference and a third reduction.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from livecli.core.derive import NO_OI, CandleArrays, session_offsets
from livecli.core.sessions import Session
from livecli.core.timeutil import DAY_S, IST_OFFSET_S

_TABLE_MAX = 1 << 24  # token spans up to this use a lookup table (64 MB of int32 at most)


def token_codes(tok: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per row a code 0..G-1 in token order (16-bit when G allows), and the G distinct tokens.

    A lookup table over the tokens' span instead of hashing; None when the span is too wide.
    """
    tmin, tmax = int(tok.min()), int(tok.max())
    span = tmax - tmin + 1
    if tmin < 0 or span > max(_TABLE_MAX, 4 * len(tok)):
        return None
    rel = tok - tmin
    present = np.zeros(span, np.bool_)
    present[rel] = True  # a scatter: several times cheaper than np.bincount here
    uniq = np.flatnonzero(present)
    table = np.cumsum(present, dtype=np.int32)
    table -= 1
    if len(uniq) <= 0xFFFF:
        return np.take(table.astype(np.uint16), rel), uniq + tmin
    return np.take(table, rel), uniq + tmin


def fast_one_minute(
    tok: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    v: np.ndarray,
    hi: np.ndarray,
    lo: np.ndarray,
    oi: np.ndarray,
    *,
    exchanges: Mapping[int, str] | None,
    sessions: Mapping[str, Session] | None,
    grace_s: float,
) -> CandleArrays | None:
    """1-minute candles of a clean recording (see the module docstring), or None if not clean."""
    n = len(tok)
    if n < 2:
        return None
    t_lo, t_hi = float(t.min()), float(t.max())
    if not (np.isfinite(t_lo) and np.isfinite(t_hi)):
        return None
    day = int(np.floor((t_lo + IST_OFFSET_S) / DAY_S))
    if int(np.floor((t_hi + IST_OFFSET_S) / DAY_S)) != day:
        return None  # several days: the general path groups by (instrument, day)
    if not (np.isnan(hi).all() and np.isnan(lo).all() and oi.max() < 0 and v.min() >= 0):
        return None
    coded = token_codes(tok)
    if coded is None or coded[0].dtype != np.uint16:
        return None
    codes, utok = coded
    open_off, close_off = session_offsets(utok, exchanges, sessions)
    if open_off.min() != open_off.max() or close_off.min() != close_off.max():
        return None  # sessions differ by instrument
    o_s = day * DAY_S - IST_OFFSET_S + int(open_off[0])
    c_s = day * DAY_S - IST_OFFSET_S + int(close_off[0])
    span_min, rem = divmod(c_s - o_s, 60)
    if rem or span_min <= 0 or span_min > 0x7FFF or t_hi > c_s:
        return None  # an after-close tick (rule 9) or a session not made of whole minutes
    # Rule 9, late: with times in arrival order the clock is the tick's own time, and a tick is
    # never a minute and the grace behind its own minute unless it sits exactly on the close.
    in_order = bool((t[1:] >= t[:-1]).all())
    if not in_order or (grace_s <= 0 and t_hi >= c_s):
        return None
    x = t - o_s
    np.maximum(x, 0, out=x)
    x /= 60
    k = x.astype(np.int16)  # te >= open: truncation is the floor
    np.minimum(k, span_min - 1, out=k)
    del x

    order = np.argsort(codes, kind="stable")  # 16-bit codes: numpy's radix sort
    # np.take: a third cheaper than fancy indexing for these gathers.
    starts = np.searchsorted(np.take(codes, order), np.arange(len(utok), dtype=np.uint16))
    ks = np.take(k, order)
    vs = np.take(v, order)
    # Every later tick of an instrument a trade (volume strictly up: no bad or book-only tick).
    up = vs[1:] > vs[:-1]
    up[starts[1:] - 1] = True
    if not up.all():
        return None
    del up
    # Times in arrival order, so each instrument's minutes never go back: a candle ends where
    # the minute or the instrument changes.
    new = np.empty(n, np.bool_)
    np.not_equal(ks[1:], ks[:-1], out=new[1:])
    new[starts] = True
    ps = np.take(p, order)
    f = np.flatnonzero(new)
    del new
    nc = len(f)
    last = np.empty_like(f)
    last[:-1] = f[1:] - 1
    last[-1] = n - 1
    # Candle -> its instrument code, and whether it is the instrument's first candle.
    cand_of_start = np.searchsorted(f, starts)
    gfirst = np.zeros(nc, np.bool_)
    gfirst[cand_of_start] = True
    gcode = np.cumsum(gfirst) - 1
    vl = vs[last]
    base = np.empty(nc, np.int64)
    base[1:] = vl[:-1]
    # The day's first tick: inside the first minute its volume counts from zero (rule 7);
    # later, it is the baseline and its candle is partial.
    early = t[order[starts]] < o_s + 60
    base[cand_of_start] = np.where(early, 0, vs[starts])
    partial = np.zeros(nc, np.bool_)
    partial[cand_of_start] = ~early
    return CandleArrays(
        utok[gcode],
        o_s + ks[f].astype(np.int64) * 60,
        ps[f],
        np.maximum.reduceat(ps, f),
        np.minimum.reduceat(ps, f),
        ps[last],
        vl - base,
        np.full(nc, NO_OI, np.int64),
        np.diff(np.append(f, n)),
        partial,
        np.zeros(nc, np.bool_),
    )
