"""Candle history for GET /candles: any whole-minute interval, as `livecli candles` gives.

An interval the session builds comes from `LiveSession.get_candles` as it stands. Any other
whole-minute interval is derived from the session's 1-minute candles with the same code that
`livecli candles --interval 45min` uses (`livecli.core.derive`, anchored at the session open,
CANDLES.md rule 2); such a candle is `closed` only when every minute in it is closed and the
feed's clock has passed its end by the grace, so a half-built 45-minute candle never reads as
final. Derived history reaches as far back as the 1-minute history kept in memory
(`[stream] history` minutes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from livecli.core.candles import Candle
from livecli.core.intervals import ONE_MINUTE, Interval
from livecli.core.timeutil import DAY_S, IST_OFFSET_S, iso, parse_instant

if TYPE_CHECKING:
    import pandas as pd

    from livecli.core.sessions import Session


def candle_dicts(df: pd.DataFrame) -> list[dict[str, Any]]:
    """`LiveSession.get_candles`'s frame back as `Candle.to_dict()` dicts (JSON-ready)."""
    out = []
    for row in df.to_dict("records"):
        oi = row.get("oi")
        row["start"] = iso(row["start"].timestamp())
        row["oi"] = None if oi is None or (isinstance(oi, float) and math.isnan(oi)) else int(oi)
        for k in ("instrument_token", "volume", "ticks"):
            row[k] = int(row[k])
        for k in ("open", "high", "low", "close"):
            row[k] = float(row[k])
        for k in ("partial", "synthetic", "closed"):
            row[k] = bool(row[k])
        out.append(row)
    return out


def to_candle(d: Mapping[str, Any]) -> Candle:
    return Candle(int(d["instrument_token"]), int(str(d["interval"]).removesuffix("min")),
                  int(parse_instant(d["start"])), d["open"], d["high"], d["low"], d["close"],
                  d["volume"], d["oi"], d["ticks"], d["partial"], d["synthetic"], d["closed"],
                  d["symbol"], d["exchange"], str(d.get("origin") or "live"))


def history(session: Any, symbol: str, iv: Interval, count: int, include_current: bool, *,
            sessions: Mapping[str, Session], feed_clock: float | None, grace_s: float
            ) -> tuple[list[dict[str, Any]], bool]:
    """The newest `count` candles of `symbol` (oldest first) and whether they were derived."""
    if iv in session.intervals:
        df = session.get_candles(symbol, iv.name, count=count, include_current=include_current)
        return candle_dicts(df), False
    from livecli.core.derive import CandleArrays, derive
    from livecli.core.sessions import session_for

    minutes = candle_dicts(session.get_candles(symbol, ONE_MINUTE.name, count=1_000_000,
                                               include_current=True))
    if not minutes or count <= 0:
        return [], True
    m1 = [to_candle(d) for d in minutes]
    tok, sym, ex = m1[0].instrument_token, m1[0].symbol, m1[0].exchange
    arr = derive(CandleArrays.from_candles(m1), iv.minutes, exchanges={tok: ex}, sessions=sessions)
    derived = arr.to_candles(iv.minutes, {tok: (sym, ex)})
    if derived and derived[0].start < m1[0].start:
        # Its bucket began before the oldest minute held (the in-memory history is bounded, and
        # a warm start fills it): the minutes before may have fallen out. Not shown half-made.
        derived = derived[1:]
    open_minutes = [c.start for c in m1 if not c.closed]
    newest = max(c.start for c in m1)
    ses = session_for(ex, dict(sessions))
    out = []
    for c in derived:
        midnight = c.start - (c.start + IST_OFFSET_S) % DAY_S
        end = min(c.end, midnight + ses.close_s)  # the day's last candle ends at the close
        # Over when a later minute has begun or the feed's clock passed the end by the grace;
        # final when, besides, every minute in it is closed.
        over = newest >= end or (feed_clock is not None and feed_clock >= end + grace_s)
        c.closed = over and not any(c.start <= m < end for m in open_minutes)
        if c.closed or include_current:
            out.append(c.to_dict())
    return out[-count:], True
