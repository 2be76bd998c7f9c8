"""A deliberately simple, independent reading of CANDLES.md, for tests only.

It builds every interval straight from the ticks (no 1-minute folding, no heaps, no vectors),
one tick at a time, with plain dicts. Written from the specification, not from the engine, so
that agreement between the two means something. Per instrument, ticks are assumed to arrive in
time order (Kite sends them so); the engine's behaviour for disorder within one instrument is
pinned by its own tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

IST = 19_800
DAY = 86_400
SESSIONS = {1: (9 * 3600 + 15 * 60, 15 * 3600 + 30 * 60)}  # segment -> (open, close) seconds
DEFAULT_SESSION = SESSIONS[1]
CDS_MCX = {3: (9 * 3600, 17 * 3600), 6: (9 * 3600, 17 * 3600), 7: (9 * 3600, 23 * 3600 + 1800)}


@dataclass
class OTick:
    token: int
    time: float
    price: float
    volume: int | None = None
    high: float | None = None
    low: float | None = None
    oi: int | None = None


def session(token: int) -> tuple[int, int]:
    return CDS_MCX.get(token & 0xFF, DEFAULT_SESSION)


def oracle(ticks: list[OTick], intervals: list[int], grace: float = 2.0,
           sessions: dict[int, tuple[int, int]] | None = None) -> dict:
    """{(token, minutes, start): (open, high, low, close, volume, oi, ticks, partial)}.

    `sessions`: (open, close) seconds after IST midnight for some tokens, instead of their own.
    """
    clock = -math.inf
    inst: dict[int, dict] = {}
    candles: dict[tuple[int, int, int], list] = {}
    for tk in ticks:
        clock = max(clock, tk.time)
        day = math.floor((tk.time + IST) / DAY)
        midnight = day * DAY - IST
        o, c = (sessions or {}).get(tk.token) or session(tk.token)
        open_t, close_t = midnight + o, midnight + c
        if tk.time > close_t:
            continue  # after the close: counted, not candled
        t = max(tk.time, open_t)  # before the open: folds into the first candle
        minute = open_t + int((t - open_t) // 60) * 60
        if minute >= close_t:
            minute = close_t - 60  # the close second belongs to the last candle
        if clock >= minute + 60 + grace:
            continue  # late
        s = inst.get(tk.token)
        first = s is None or s["day"] != day
        if first:
            s = inst[tk.token] = {
                "day": day, "vol": None, "price": None, "high": None, "low": None,
                "partial": tk.time >= open_t + 60,
            }
        # volume
        if tk.volume is not None and s["vol"] is not None and tk.volume < s["vol"]:
            continue  # bad tick
        if tk.volume is not None:
            if s["vol"] is None:
                trade = True
                added = tk.volume if tk.time < open_t + 60 else 0
            else:
                trade = tk.volume > s["vol"]
                added = tk.volume - s["vol"]
            s["vol"] = tk.volume
        else:
            trade = tk.price != s["price"]
            added = 0
        trade = trade or first
        s["price"] = tk.price
        if not trade:
            continue
        high, low = tk.price, tk.price
        if not first and tk.high is not None and s["high"] is not None and tk.high > s["high"]:
            high = max(high, tk.high)
        if not first and tk.low is not None and s["low"] is not None and tk.low < s["low"]:
            low = min(low, tk.low)
        if tk.high is not None and (s["high"] is None or tk.high > s["high"]):
            s["high"] = tk.high
        if tk.low is not None and (s["low"] is None or tk.low < s["low"]):
            s["low"] = tk.low
        for minutes in intervals:
            span = minutes * 60
            start = open_t + (minute - open_t) // span * span
            key = (tk.token, minutes, start)
            cd = candles.get(key)
            if cd is None:
                cd = candles[key] = [tk.price, high, low, tk.price, 0, None, 0, False]
            cd[1] = max(cd[1], high)
            cd[2] = min(cd[2], low)
            cd[3] = tk.price
            cd[4] += added
            if tk.oi is not None:
                cd[5] = tk.oi
            cd[6] += 1
            if first and s["partial"]:
                cd[7] = True
    return {k: tuple(v) for k, v in candles.items()}
