"""Rebuilding candles from a table of recorded ticks, vectorised with numpy.

The streaming engine decides tick by tick; this module takes the same decisions for a whole
recording at once, so that a file of millions of ticks rebuilds in seconds. Each sequential rule
of CANDLES.md has a vectorised equivalent:

* the feed's clock is the running maximum of tick times, so "late" (rule 9) is a comparison with
  `np.maximum.accumulate`; given the times the ticks were received (on the clock the live
  guard used), a tick stamped more than `max_ahead_s` after its receipt is "future", as in the
  streaming engine, and takes no part in that maximum. A recording has no wall clock of its
  own, so without receipt times there is no such guard;
* the last good cumulative volume is the running maximum of volumes per instrument and day (a bad,
  falling volume never raises it), computed with one global accumulate over group-offset keys;
* "the day high moved since the previous trade" compares each trade's day high with the running
  maximum of earlier trades' day highs in its group.

1-minute candles come from grouping trades by (instrument, minute); every longer interval is
derived from them (`livecli.core.derive`), exactly as the streaming engine folds them.
Clean recordings (one day, every tick a trade, nothing dropped) take a leaner path with the same
answer (`livecli.core.batch_fast`); the general path below takes everything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from livecli.core.batch_fast import fast_one_minute, token_codes
from livecli.core.candles import Candle
from livecli.core.derive import NO_OI, CandleArrays, derive, session_offsets
from livecli.core.engine import synthetic_between
from livecli.core.intervals import ONE_MINUTE, Interval, parse_interval
from livecli.core.sessions import Session
from livecli.core.ticks import TickColumns
from livecli.core.timeutil import DAY_S, IST_OFFSET_S

_VOL_BITS = 41  # cumulative volumes below 2**40 (10^12 shares), group ids below 2**22


@dataclass(slots=True)
class BatchCounters:
    ticks: int = 0
    trades: int = 0
    book_only: int = 0
    late: int = 0
    bad: int = 0
    after_close: int = 0
    future: int = 0


@dataclass(slots=True)
class BatchResult:
    """Closed candles per interval (minutes -> arrays sorted by token, start) and the counts."""

    candles: dict[int, CandleArrays]
    counters: BatchCounters

    def to_candles(self, names: Mapping[int, tuple[str, str]] | None = None) -> list[Candle]:
        out: list[Candle] = []
        for minutes in sorted(self.candles):
            out.extend(self.candles[minutes].to_candles(minutes, names))
        return out


def _group_running_max_excl(values: np.ndarray, counts: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per group, the maximum of the values before each row (-1 at a group's first row).

    `values` are ints >= -1; groups are contiguous, `counts` long each. Cumulative volumes
    usually only rise, and then the running maximum is simply the previous value; otherwise one
    accumulate over keys offset by the group number keeps groups apart without a Python loop.
    """
    prev = np.empty_like(values)
    prev[0] = -1
    prev[1:] = values[:-1]
    prev[first] = -1
    if not np.any(values < prev):
        return prev
    offset = np.repeat(np.arange(len(counts), dtype=np.int64) << _VOL_BITS, counts)
    run = np.maximum.accumulate(offset + (values + 1))
    out = np.empty_like(run)
    out[0] = 0
    out[1:] = run[:-1]
    out -= offset + 1
    out[first] = -1
    return out


def _group_running_extreme_excl(values: np.ndarray, first: np.ndarray, lowest: bool) -> np.ndarray:
    """Per group, the NaN-skipping max (or min) of the values before each row; NaN if none."""
    n = len(values)
    idx = np.arange(n)
    valid = ~np.isnan(values)
    # Forward fill inside each group: the position of the last value seen (itself at a start).
    last = np.maximum.accumulate(np.where(valid | first, idx, 0))
    prev = np.empty(n, np.float64)
    prev[0] = np.nan
    prev[1:] = values[last[:-1]]
    prev[first] = np.nan
    # A day high only rises (a day low only falls): then the last value is the running extreme.
    with np.errstate(invalid="ignore"):
        monotone = not np.any(valid & (values > prev if lowest else values < prev))
    if monotone:
        return prev
    import pandas as pd  # rare: out-of-order day highs in a recording

    gid = np.cumsum(first)
    s = pd.Series(values)
    run = s.groupby(gid).cummin() if lowest else s.groupby(gid).cummax()
    run = run.groupby(gid).ffill().to_numpy()
    out = np.empty(n, np.float64)
    out[0] = np.nan
    out[1:] = run[:-1]
    out[first] = np.nan
    return out


def _factorize(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..G-1 in ascending key order, and the sorted distinct keys (hash-based: O(n))."""
    import pandas as pd

    codes, uniques = pd.factorize(key, sort=True)
    return codes.astype(np.int64), np.asarray(uniques, np.int64)


def _stable_argsort(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Stable argsort of small non-negative codes."""
    # numpy's stable sort is a radix sort for 16-bit keys: ten times faster than for 64-bit.
    narrow = np.uint16 if n_codes <= 0xFFFF else np.uint32
    return np.argsort(codes.astype(narrow), kind="stable")


def rebuild_arrays(
    cols: TickColumns,
    intervals: Iterable[Interval | str | int] = (ONE_MINUTE,),
    *,
    exchanges: Mapping[int, str] | None = None,
    sessions: Mapping[str, Session] | None = None,
    grace_s: float = 2.0,
    received: Sequence[float] | np.ndarray | None = None,
    max_ahead_s: float = 5.0,
    fast_path: bool = True,
) -> BatchResult:
    """Candles of every interval from ticks in arrival order (the streaming engine's answer).

    `received`: per tick, `now()` as the live engine saw it when the tick arrived; a tick more
    than `max_ahead_s` ahead of it is dropped and counted in `counters.future`.
    `fast_path=False` always takes the general path (same answer; tests and benches compare).
    """
    ivs = sorted({parse_interval(i) for i in intervals} | {ONE_MINUTE})
    tok = np.asarray(cols.token, np.int64)
    t = np.asarray(cols.time, np.float64)
    p = np.asarray(cols.price, np.float64)
    v = np.asarray(cols.volume, np.int64)
    hi = np.asarray(cols.day_high, np.float64)
    lo = np.asarray(cols.day_low, np.float64)
    oi = np.asarray(cols.oi, np.int64)
    counters = BatchCounters(ticks=len(tok))
    if len(tok) == 0:
        return BatchResult({iv.minutes: CandleArrays.empty() for iv in ivs}, counters)

    future: np.ndarray | None = None
    if received is not None:
        future = t > np.asarray(received, np.float64) + float(max_ahead_s)
        counters.future = int(future.sum())
    if fast_path and not counters.future:
        fast = fast_one_minute(tok, t, p, v, hi, lo, oi, exchanges=exchanges, sessions=sessions,
                               grace_s=grace_s)
        if fast is not None:  # a clean recording: every tick a trade, none dropped
            counters.trades = len(tok)
            return BatchResult(_with_longer(fast, ivs, exchanges, sessions), counters)
    return _rebuild_general(tok, t, p, v, hi, lo, oi, future if counters.future else None,
                            counters, ivs, exchanges=exchanges, sessions=sessions,
                            grace_s=grace_s)


def _with_longer(
    m1: CandleArrays,
    ivs: list[Interval],
    exchanges: Mapping[int, str] | None,
    sessions: Mapping[str, Session] | None,
) -> dict[int, CandleArrays]:
    """The 1-minute candles and every longer interval derived from them."""
    out = {1: m1}
    for iv in ivs:
        if iv.minutes > 1:
            out[iv.minutes] = derive(m1, iv.minutes, exchanges, sessions)
    return out


def _rebuild_general(
    tok: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    v: np.ndarray,
    hi: np.ndarray,
    lo: np.ndarray,
    oi: np.ndarray,
    future: np.ndarray | None,
    counters: BatchCounters,
    ivs: list[Interval],
    *,
    exchanges: Mapping[int, str] | None,
    sessions: Mapping[str, Session] | None,
    grace_s: float,
) -> BatchResult:
    """Every rule of CANDLES.md, for any recording (`future`: rows the live guard dropped)."""
    if future is None:
        future = np.zeros(len(t), np.bool_)
        clock = np.maximum.accumulate(t)
    else:
        clock = np.maximum.accumulate(np.where(future, -np.inf, t))
    d_lo, d_hi = (int(np.floor((float(x) + IST_OFFSET_S) / DAY_S)) for x in (t.min(), t.max()))
    one_day = d_lo == d_hi
    # One day (the usual recording): the day is a number, not a column.
    day: np.ndarray | int = d_lo if one_day else np.floor((t + IST_OFFSET_S) / DAY_S).astype(
        np.int64)
    # One day: instruments get codes from a lookup table (no hashing), and when they share one
    # session its open and close are numbers too.
    coded = token_codes(tok) if one_day else None
    open_off: np.ndarray | int
    close_off: np.ndarray | int
    if coded is not None:
        open_u, close_u = session_offsets(coded[1], exchanges, sessions)
        if open_u.min() == open_u.max() and close_u.min() == close_u.max():
            open_off, close_off = int(open_u[0]), int(close_u[0])
        else:
            open_off, close_off = np.take(open_u, coded[0]), np.take(close_u, coded[0])
    else:
        open_off, close_off = session_offsets(tok, exchanges, sessions)
    base = day * DAY_S - IST_OFFSET_S
    open_s = base + open_off
    close_s = base + close_off

    after = (t > close_s) & ~future
    te = np.maximum(t, open_s)
    # te >= open_s, so truncating the (correctly rounded) quotient is the floor, and cheaper.
    mstart = open_s + ((te - open_s) / 60).astype(np.int64) * 60
    mstart = np.where(mstart >= close_s, close_s - 60, mstart)
    late = ~after & ~future & (mstart + 60 + grace_s <= clock)
    counters.after_close = int(after.sum())
    counters.late = int(late.sum())
    dropped = after | late | future
    early = t < open_s + 60  # before the end of the first minute: volume counts from zero

    # Group by (instrument, day), arrival order kept within a group (stable sort). Dropped rows
    # sort into a last group of their own and are cut off, so each column is gathered once.
    if coded is not None:  # one day: the instrument's code is the group
        codes, group_tok = coded
        n_groups = len(group_tok)
    else:
        codes, uniques = _factorize((tok << 20) | (np.asarray(day) & 0xFFFFF))
        n_groups = len(uniques)
        group_tok = uniques >> 20
    n_drop = int(dropped.sum())
    if n_drop:
        codes = np.where(dropped, n_groups, codes)
    order = _stable_argsort(codes, n_groups + 1)
    n = len(t) - n_drop
    if n == 0:
        return BatchResult({iv.minutes: CandleArrays.empty() for iv in ivs}, counters)
    src = order[:n]  # per sorted row, its row in the recording
    counts = np.bincount(codes, minlength=n_groups + 1)[:n_groups]
    tok = np.repeat(group_tok, counts)
    # Gather narrow types where the values allow: the minute as 32-bit seconds from the first
    # (made whole seconds again only for the candles). np.take: cheaper than fancy indexing.
    m0 = int(mstart.min())
    p, v = np.take(p, src), np.take(v, src)
    mstart = np.take((mstart - m0).astype(np.int32), src)
    has_hl = not (np.isnan(hi).all() and np.isnan(lo).all())
    has_oi = bool((oi >= 0).any())
    if has_hl:
        hi, lo = np.take(hi, src), np.take(lo, src)
    else:  # no day high/low anywhere (rule 6 has nothing to say): placeholders, never read
        hi = lo = np.empty(0)
    oi = np.take(oi, src) if has_oi else np.empty(0, np.int64)
    starts = np.cumsum(counts) - counts
    first = np.zeros(n, np.bool_)
    first[starts[counts > 0]] = True

    # Rule 7: a cumulative volume below the last good one is a bad tick.
    lg = _group_running_max_excl(v, counts, first)
    bad = (v >= 0) & (lg >= 0) & (v < lg)
    counters.bad = int(bad.sum())
    if counters.bad:
        ok = ~bad
        tok, p, v = tok[ok], p[ok], v[ok]
        mstart, src, lg, first = mstart[ok], src[ok], lg[ok], first[ok]
        if has_hl:
            hi, lo = hi[ok], lo[ok]
        if has_oi:
            oi = oi[ok]
        n = len(tok)

    # Rule 5: what is a trade.
    prev_p = np.empty(n, np.float64)
    prev_p[0] = np.nan
    prev_p[1:] = p[:-1]
    prev_p[first] = np.nan
    has_vol = v >= 0
    if has_vol.all():
        trade = v > lg
        trade |= first
    else:
        trade = first | np.where(has_vol, v > lg, p != prev_p)
    # The volume a tick adds: over the last good one; with none yet (`early`, the row's own,
    # is read only there), all of it inside the first minute, else none; none without a volume.
    dv = v - lg
    no_lg = np.flatnonzero(lg < 0)
    dv[no_lg] = np.where(early[src[no_lg]], v[no_lg], 0)
    if not has_vol.all():
        dv[~has_vol] = 0
    # The first tick of the day came after the first minute: its candles are partial.
    first_partial = first.copy()
    first_at = np.flatnonzero(first)
    first_partial[first_at] = ~early[src[first_at]]
    counters.trades = int(trade.sum())
    counters.book_only = n - counters.trades

    if counters.book_only:
        tr = trade
        tok, p = tok[tr], p[tr]
        mstart, dv, first, first_partial = mstart[tr], dv[tr], first[tr], first_partial[tr]
        if has_hl:
            hi, lo = hi[tr], lo[tr]
        if has_oi:
            oi = oi[tr]
    m = len(tok)

    # Rule 6: a day high (low) above (below) every earlier trade's shows a trade we never saw.
    if has_hl:
        dh_before = _group_running_extreme_excl(hi, first, lowest=False)
        dl_before = _group_running_extreme_excl(lo, first, lowest=True)
        with np.errstate(invalid="ignore"):
            row_high = np.where(hi > dh_before, np.maximum(p, hi), p)
            row_low = np.where(lo < dl_before, np.minimum(p, lo), p)
    else:
        row_high = row_low = p

    # 1-minute candles: group trades by (instrument, minute), arrival order within.
    if m > 1 and np.any((tok[1:] == tok[:-1]) & (mstart[1:] < mstart[:-1])):
        # Some instrument's ticks went back in time: group its minutes by sorting.
        o2 = np.lexsort((mstart, tok))
        tok, p, mstart = tok[o2], p[o2], mstart[o2]
        if has_oi:
            oi = oi[o2]
        row_high, row_low, dv, fp = row_high[o2], row_low[o2], dv[o2], first_partial[o2]
    else:
        fp = first_partial
    new = np.empty(m, np.bool_)
    new[0] = True
    new[1:] = (tok[1:] != tok[:-1]) | (mstart[1:] != mstart[:-1])
    f = np.flatnonzero(new)
    last = np.empty_like(f)
    last[:-1] = f[1:] - 1
    last[-1] = m - 1
    if has_oi:  # the last open interest seen in the candle
        pos = np.where(oi >= 0, np.arange(m), -1)
        lpos = np.maximum.reduceat(pos, f)
        c_oi = np.where(lpos >= f, oi[np.maximum(lpos, 0)], NO_OI)
    else:
        c_oi = np.full(len(f), NO_OI, np.int64)
    m1 = CandleArrays(
        tok[f],
        mstart[f].astype(np.int64) + m0,
        p[f],
        np.maximum.reduceat(row_high, f),
        np.minimum.reduceat(row_low, f),
        p[last],
        np.add.reduceat(dv, f),
        c_oi,
        np.diff(np.append(f, m)),
        np.logical_or.reduceat(fp, f),
        np.zeros(len(f), np.bool_),
    )
    return BatchResult(_with_longer(m1, ivs, exchanges, sessions), counters)


def rebuild(
    cols: TickColumns,
    intervals: Iterable[Interval | str | int] = (ONE_MINUTE,),
    instruments: Mapping[int, tuple[str, str]] | None = None,
    *,
    sessions: Mapping[str, Session] | None = None,
    grace_s: float = 2.0,
    fill_gaps: bool = False,
) -> list[Candle]:
    """Closed candles of every interval asked for, as `Candle` objects (interval, token, start)."""
    names = dict(instruments or {})
    exchanges = {tok: ex for tok, (_, ex) in names.items()}
    res = rebuild_arrays(cols, intervals, exchanges=exchanges, sessions=sessions, grace_s=grace_s)
    wanted = {parse_interval(i).minutes for i in intervals}
    candles = [c for c in res.to_candles(names) if c.interval_min in wanted]
    return fill_candle_gaps(candles) if fill_gaps else candles


def fill_candle_gaps(candles: list[Candle]) -> list[Candle]:
    """Add rule-10 synthetic candles between real candles of the same series and day."""
    out: list[Candle] = []
    prev: Candle | None = None
    for c in sorted(candles, key=lambda c: (c.interval_min, c.instrument_token, c.start)):
        if (
            prev is not None
            and prev.instrument_token == c.instrument_token
            and prev.interval_min == c.interval_min
        ):
            out.extend(synthetic_between(prev, c))
        out.append(c)
        prev = c
    return out
