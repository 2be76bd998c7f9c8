"""Candle engine speed and memory: `python bench/engine.py`.

Prints, each beside a baseline run in the same process (ratios hold on a noisy machine):
- streaming ticks/s on one core, 500 and 9000 instruments, one interval and all seven named,
  fed in 500-tick frames as the decoder hands them over, and one interval with the feed-clock
  guard on (`now=time.time`, as a live session runs it); baseline: a bare loop that only keeps
  each instrument's last price (the least any consumer of ticks does);
- batch rebuild ticks/s; baseline: pandas groupby + resample of the same ticks to 1-minute OHLCV;
- resident memory per candle held in history; baseline: the same candles as Python objects.
Targets (issue 2): streaming >= 1,000,000 ticks/s (one interval), >= 500,000 (seven);
batch >= 5,000,000 ticks/s; <= 200 bytes per held candle.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from datetime import date
from datetime import time as dtime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livecli.core.batch import rebuild_arrays
from livecli.core.candles import Candle
from livecli.core.engine import CandleEngine
from livecli.core.history import CandleHistory
from livecli.core.intervals import NAMED_MINUTES
from livecli.core.ticks import TickColumns
from livecli.core.timeutil import at_ist

FRAME = 500


def ticks(instruments: int, n: int, seed: int = 1) -> TickColumns:
    """`n` full-mode ticks of `instruments` NSE stocks at ~2 ticks/s each from 09:15."""
    rng = np.random.default_rng(seed)
    tokens = (np.arange(instruments, dtype=np.int64) + 1000) * 256 + 1
    tok = tokens[rng.integers(0, instruments, n)]
    span = n / (instruments * 2.0)
    t = np.floor(at_ist(date(2025, 1, 6), dtime(9, 15)) + np.sort(rng.random(n)) * span)
    price = 1000 + rng.integers(-400, 400, n) * 0.05
    inc = rng.integers(0, 3, n) * rng.integers(1, 200, n)
    vol = np.empty(n, np.int64)
    # cumulative volume per instrument, in arrival order
    order = np.argsort(tok, kind="stable")
    cs = np.cumsum(inc[order])
    g = tok[order]
    first = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    base = np.repeat(np.r_[0, cs[first[1:] - 1]], np.diff(np.r_[first, n]))
    vol[order] = cs - base
    high = np.maximum.accumulate(price)  # a day high that only rises (per feed, close enough)
    low = np.minimum.accumulate(price)
    oi = np.full(n, -1, np.int64)
    return TickColumns(tok, t, price, vol, high, low, oi)


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def frames(cols: TickColumns) -> list[TickColumns]:
    """500-tick frames of numpy columns, as the decoder hands them to the engine."""
    return [
        TickColumns(*(np.ascontiguousarray(getattr(cols, f)[i:i + FRAME]) for f in FIELDS))
        for i in range(0, len(cols.token), FRAME)
    ]


FIELDS = ("token", "time", "price", "volume", "day_high", "day_low", "oi")


def streaming() -> None:
    for instruments, n in ((500, 1_000_000), (9000, 3_000_000)):
        fs = frames(ticks(instruments, n))

        def baseline(fs=fs) -> None:
            last: dict[int, float] = {}
            for f in fs:
                for tok, p in zip(f.token.tolist(), f.price.tolist(), strict=True):
                    last[tok] = p

        base = best_of(baseline)
        for label, ivs, now in (("1 interval", [1], None), ("7 intervals", list(NAMED_MINUTES), None),
                                ("1 interval, guarded by the wall clock", [1], time.time)):
            def run(ivs=ivs, fs=fs, now=now) -> None:
                e = CandleEngine(ivs, now=now)
                for f in fs:
                    e.update_columns(f)

            t = best_of(run)
            print(f"streaming {instruments} instruments, {label}: livecli {n / t:,.0f} ticks/s, "
                  f"last-price loop {n / base:,.0f} ticks/s, ratio {base / t:.2f}x")


def batch() -> None:
    import pandas as pd

    n = 2_000_000
    cols = ticks(500, n)
    t = best_of(lambda: rebuild_arrays(cols, [1]))

    def pandas_resample() -> None:
        df = pd.DataFrame({
            "token": cols.token, "price": cols.price, "volume": cols.volume,
            "time": pd.to_datetime(cols.time, unit="s", utc=True),
        })
        df["dv"] = df.groupby("token")["volume"].diff().fillna(0)
        g = df.set_index("time").groupby("token").resample("1min")
        g["price"].ohlc().join(g["dv"].sum())

    base = best_of(pandas_resample, repeat=2)
    print(f"batch rebuild, 500 instruments, {n:,} ticks: livecli {n / t:,.0f} ticks/s, "
          f"pandas groupby/resample {n / base:,.0f} ticks/s, ratio {base / t:.2f}x")


def rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory() -> None:
    instruments, per = 2000, 500
    proto = Candle(738561, 1, 0, 100.5, 101.0, 99.5, 100.25, 1234, None, 7)
    gc.collect()
    before = rss()
    rings = []
    for k in range(instruments):
        h = CandleHistory(k, 1, per)
        for i in range(per):
            proto.start = i * 60
            proto.close = 100.0 + i * 0.05 + k  # distinct floats, as real candles are
            h.append(proto)
        rings.append(h)
    gc.collect()
    held = rss() - before
    n = instruments * per
    objs_before = rss()
    objs = [Candle(k, 1, i * 60, 100.5 + i, 101.0 + i, 99.5 + i, 100.25 + i, 1234 + i, None, 7)
            for k in range(instruments // 4) for i in range(per)]
    objs_bytes = (rss() - objs_before) / len(objs)
    print(f"memory: livecli {held / n:.0f} bytes per held candle ({n:,} candles), "
          f"Candle objects {objs_bytes:.0f} bytes each, ratio {objs_bytes / (held / n):.1f}x")
    del rings, objs


if __name__ == "__main__":
    # memory first: resident size is only meaningful before big arrays come and go
    which = sys.argv[1:] or ["memory", "streaming", "batch"]
    for name in which:
        globals()[name]()
