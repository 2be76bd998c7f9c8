"""Batch rebuild against its peers: `python bench/batch.py`.

The same 2,000,000 recorded ticks, at 500 and at 9000 instruments, made into 1-minute OHLCV
candles by livecli's rebuild (`rebuild_arrays`: every CANDLES.md rule), by polars `group_by`
and by pandas `groupby` on floored time (volume as the per-instrument difference of the
cumulative day volume). Every tick is a trade, none is late or bad and no day high moves
between snapshots, so all three must give the same candles: checked before timing (the run
stops if they do not). Such a clean recording takes livecli's fast path; the general path (what
a recording with any bad, late or book-only tick takes) is timed beside it, checked equal.
Printed: ticks/s of each, in one process, best of 5 interleaved runs.
Targets (issue 15): livecli >= 1.2x polars and >= 2x pandas at 500 and 9000 instruments.
"""

from __future__ import annotations

import gc
import sys
import time
from datetime import date
from datetime import time as dtime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livecli.core.batch import rebuild_arrays
from livecli.core.ticks import TickColumns
from livecli.core.timeutil import at_ist

N = 2_000_000
OPEN = at_ist(date(2025, 1, 6), dtime(9, 15))


def ticks(instruments: int, n: int = N, seed: int = 3) -> TickColumns:
    """`n` trades of `instruments` stocks over the session, in arrival order."""
    rng = np.random.default_rng(seed)
    tokens = (np.arange(instruments, dtype=np.int64) + 1000) * 256 + 1
    # Every instrument trades in the first minute (its volume then counts from zero, rule 7).
    tok = np.r_[tokens, tokens[rng.integers(0, instruments, n - instruments)]]
    t = np.floor(OPEN + np.r_[np.zeros(instruments),
                              np.sort(rng.random(n - instruments)) * 6 * 3600])
    price = 1000 + rng.integers(-400, 400, n) * 0.05
    inc = rng.integers(1, 200, n)  # every tick a trade: the volume always rises
    order = np.argsort(tok, kind="stable")
    cs = np.cumsum(inc[order])
    g = tok[order]
    first = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    base = np.repeat(np.r_[0, cs[first[1:] - 1]], np.diff(np.r_[first, n]))
    vol = np.empty(n, np.int64)
    vol[order] = cs - base
    nan = np.full(n, np.nan)
    return TickColumns(tok, t, price, vol, nan, nan, np.full(n, -1, np.int64))


def livecli(cols: TickColumns):
    return rebuild_arrays(cols, [1]).candles[1]


def livecli_general(cols: TickColumns):
    """The general path (what any recording with a bad, late or book-only tick takes)."""
    return rebuild_arrays(cols, [1], fast_path=False).candles[1]


def polars_group_by(cols: TickColumns):
    import polars as pl

    df = pl.DataFrame({"token": cols.token, "time": cols.time, "price": cols.price,
                       "volume": cols.volume})
    return (
        df.with_columns(
            minute=(pl.col("time") // 60 * 60).cast(pl.Int64),
            dv=pl.col("volume").diff().over("token").fill_null(pl.col("volume")),
        )
        .group_by("token", "minute")
        .agg(open=pl.col("price").first(), high=pl.col("price").max(),
             low=pl.col("price").min(), close=pl.col("price").last(),
             volume=pl.col("dv").sum(), ticks=pl.len())
        .sort("token", "minute")
    )


def pandas_groupby(cols: TickColumns):
    import pandas as pd

    df = pd.DataFrame({"token": cols.token, "time": cols.time, "price": cols.price,
                       "volume": cols.volume})
    df["minute"] = (df["time"] // 60 * 60).astype(np.int64)
    df["dv"] = df.groupby("token")["volume"].diff().fillna(df["volume"]).astype(np.int64)
    return df.groupby(["token", "minute"], sort=True).agg(
        open=("price", "first"), high=("price", "max"), low=("price", "min"),
        close=("price", "last"), volume=("dv", "sum"), ticks=("price", "size"),
    ).reset_index()


def agree(cols: TickColumns, label: str) -> None:
    mine = livecli(cols)
    pl_ = polars_group_by(cols)
    pd_ = pandas_groupby(cols)
    gen = livecli_general(cols)
    for name in ("token", "start", "open", "high", "low", "close", "volume", "ticks", "partial"):
        if not np.array_equal(getattr(gen, name), getattr(mine, name)):
            raise SystemExit(f"{label}: livecli's fast and general paths differ in {name}")
    for name, other in (("polars", pl_), ("pandas", pd_)):
        pairs = (("token", mine.token), ("minute", mine.start), ("open", mine.open),
                 ("high", mine.high), ("low", mine.low), ("close", mine.close),
                 ("volume", mine.volume), ("ticks", mine.ticks))
        for col, ours in pairs:
            if not np.array_equal(other[col].to_numpy(), ours):
                raise SystemExit(f"{label}: livecli and {name} differ in {col}")
    print(f"  {label}: livecli == polars == pandas ({len(mine):,} candles)")


def main() -> None:
    for instruments in (500, 9000):
        cols = ticks(instruments)
        label = f"{instruments} instruments, {N:,} ticks"
        agree(cols, label)
        best = {"livecli": np.inf, "polars": np.inf, "pandas": np.inf, "general": np.inf}
        fns = {"livecli": livecli, "polars": polars_group_by, "pandas": pandas_groupby,
               "general": livecli_general}
        for _ in range(5):
            for name, fn in fns.items():
                gc.collect()
                t0 = time.perf_counter()
                fn(cols)
                best[name] = min(best[name], time.perf_counter() - t0)
        lv, pl_, pd_ = (N / best[k] for k in ("livecli", "polars", "pandas"))
        print(f"batch {label}: livecli {lv:,.0f} ticks/s, polars group_by {pl_:,.0f} "
              f"({best['polars'] / best['livecli']:.2f}x), pandas groupby {pd_:,.0f} "
              f"({best['pandas'] / best['livecli']:.2f}x); livecli's general path "
              f"{N / best['general']:,.0f} ({best['pandas'] / best['general']:.2f}x pandas)")


if __name__ == "__main__":
    main()
