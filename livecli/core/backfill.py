"""Folding closed 1-minute candles from Kite's history into candles the engine already holds.

The live engine builds candles from ticks as they come; a warm start (the minutes before the
session began) and a gap repair (the minutes a disconnect cost) bring closed 1-minute candles
from the historical API instead, in the middle of what the engine holds. These are the pure
parts of putting them in: merging minute lists (history wins for the minutes it is given) and
folding minutes into the longer candle of a bucket, exactly as the engine folds live minutes
(CANDLES.md rule 2 anchoring, "One answer everywhere"). The engine's `insert_history` is the one
method that applies them to its state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from livecli.core.candles import ORIGIN_CODE, Candle


def merge_minutes(held: Iterable[Candle], given: Iterable[Candle]) -> list[Candle]:
    """`held` and `given` as one list sorted by start; a minute in both is `given`'s."""
    by_start = {c.start: c for c in held}
    for c in given:
        by_start[c.start] = c
    return [by_start[s] for s in sorted(by_start)]


def bucket_start(minute_start: int, interval_min: int, day_open: int) -> int:
    """The start of the `interval_min` candle holding the minute (anchored at the session open)."""
    span = interval_min * 60
    return day_open + (minute_start - day_open) // span * span


def fold(minutes: Sequence[Candle], interval_min: int, start: int, *, closed: bool) -> Candle:
    """One `interval_min` candle from its minutes (sorted, non-empty, real: no synthetic)."""
    first = minutes[0]
    out = Candle(
        first.instrument_token, interval_min, start, first.open, first.high, first.low,
        first.close, 0, None, 0, False, False, closed, first.symbol, first.exchange, first.origin,
    )
    for m in minutes:
        if m.high > out.high:
            out.high = m.high
        if m.low < out.low:
            out.low = m.low
        out.close = m.close
        out.volume += m.volume
        out.ticks += m.ticks
        if m.oi is not None:
            out.oi = m.oi
        if m.partial:
            out.partial = True
        if ORIGIN_CODE[m.origin] > ORIGIN_CODE[out.origin]:
            out.origin = m.origin
    return out


def copy_values(dst: Candle, src: Candle) -> None:
    """Make `dst` hold `src`'s content in place (a forming candle the engine's heap refers to)."""
    dst.open, dst.high, dst.low, dst.close = src.open, src.high, src.low, src.close
    dst.volume, dst.oi, dst.ticks = src.volume, src.oi, src.ticks
    dst.partial, dst.synthetic, dst.origin = src.partial, src.synthetic, src.origin
