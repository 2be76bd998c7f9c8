"""Benchmark: exporting a million stored candles, and deriving longer intervals from them.

Builds a store with ~1,000,000 1-minute candles (2,700 instruments x 375 minutes, one NSE day)
through the real StoreWriter, then times, in this one process, best of --repeat runs:

* export to Parquet and CSV through livecli's path (CandleStoreReader -> candle_table ->
  write_candles), beside pandas' read_sql of the same rows + to_parquet / to_csv;
* derive(5min) over the 1-minute candles, as candles per second;
* `candles_from_store` at 5min end to end (read + derive).

Targets: export within 1.5x of the pandas baseline, derivation >= 2,000,000 candles/s.

    .venv/bin/python bench/export.py [--instruments 2700] [--repeat 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import date
from datetime import time as dtime
from pathlib import Path

import numpy as np

from livecli.core.candles import Candle
from livecli.core.derive import derive
from livecli.core.intervals import Interval
from livecli.core.timeutil import at_ist
from livecli.store.export import candle_table, write_candles
from livecli.store.query import CandleQuery, TimeRange, candles_from_store
from livecli.store.reader import CandleStoreReader
from livecli.store.writer import StoreWriter

MINUTES = 375


def build(db: Path, instruments: int) -> float:
    """Write the store through StoreWriter; returns the seconds it took."""

    rng = np.random.default_rng(7)
    t0 = int(at_ist(date(2025, 1, 6), dtime(9, 15)))
    starts = (t0 + 60 * np.arange(MINUTES)).tolist()
    started = time.perf_counter()
    w = StoreWriter(db, flush_interval_s=0.5)
    w.register_instruments({(100_000 + i) * 256 + 1: (f"SYM{i:04d}", "NSE")
                            for i in range(instruments)})
    for i in range(instruments):
        tok = (100_000 + i) * 256 + 1
        close = 100 + rng.random() * 1000 + np.cumsum(rng.normal(0, 0.5, MINUTES))
        opn = np.r_[close[0], close[:-1]]
        hi = np.maximum(opn, close) + rng.random(MINUTES)
        lo = np.minimum(opn, close) - rng.random(MINUTES)
        vol = rng.integers(1, 10_000, MINUTES).tolist()
        w.put_candles([
            Candle(tok, 1, s, o, h, lo_, c, v, None, v % 50 + 1, closed=True)
            for s, o, h, lo_, c, v in zip(starts, opn.tolist(), hi.tolist(), lo.tolist(),
                                          close.tolist(), vol, strict=True)
        ])
    ok = w.stop(timeout=600)
    if not ok:
        sys.exit(f"building the store failed: {w.error}")
    return time.perf_counter() - started


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instruments", type=int, default=2700)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="build the store in this folder and keep it")
    args = ap.parse_args()
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        db = folder / "bench.db"
        if not db.exists():
            secs = build(db, args.instruments)
            n = args.instruments * MINUTES
            print(f"store write (StoreWriter): {n:,} candles in {secs:.2f} s, {n / secs:,.0f} candles/s")
        out = Path(tmp)
        sql = ("SELECT instrument_token, interval_min, start, open, high, low, close, volume, oi, "
               "ticks, partial, synthetic FROM candles WHERE interval_min = 1 AND closed = 1")

        def read_livecli():
            with CandleStoreReader(db) as r:
                return r.one_minute(), r.symbols()

        def read_pandas():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                return pd.read_sql(sql, conn)

        read_livecli()  # warm the page cache for both sides
        t_read, (m1, names) = best(read_livecli, args.repeat)
        t_pread, frame = best(read_pandas, args.repeat)
        rows = len(m1)
        print(f"read {rows:,} rows: livecli {t_read:.2f} s, pandas read_sql {t_pread:.2f} s, "
              f"ratio {t_read / t_pread:.2f}x")

        for fmt in ("parquet", "csv"):
            target = out / f"livecli.{fmt}"

            def ours(fmt=fmt, target=target):
                arrays, nm = read_livecli()
                table = candle_table(arrays, 1, nm)
                return write_candles(table, target, fmt, force=True)

            def theirs(fmt=fmt):
                df = read_pandas()
                if fmt == "parquet":
                    df.to_parquet(out / "pandas.parquet", index=False)
                else:
                    df.to_csv(out / "pandas.csv", index=False)

            t_ours, res = best(ours, args.repeat)
            t_theirs, _ = best(theirs, args.repeat)
            print(f"export {fmt}: livecli {t_ours:.2f} s, pandas read_sql+to_{fmt} "
                  f"{t_theirs:.2f} s, ratio {t_ours / t_theirs:.2f}x  ({res.rows:,} rows)")

        t_derive, d5 = best(lambda: derive(m1, 5), args.repeat)
        print(f"derive 5min: {rows / t_derive:,.0f} candles/s ({rows:,} -> {len(d5):,} in "
              f"{t_derive:.3f} s)")
        exchanges = {tok: ex for tok, (_, ex) in names.items()}
        t_derive_ex, _ = best(lambda: derive(m1, 45, exchanges=exchanges), args.repeat)
        print(f"derive 45min (per-instrument exchanges): {rows / t_derive_ex:,.0f} candles/s")
        q = CandleQuery(interval=Interval(5), time_range=TimeRange())
        t_q, res5 = best(lambda: candles_from_store(db, q), args.repeat)
        print(f"candles_from_store 5min (read + derive): {t_q:.2f} s, {len(res5.arrays):,} candles")
        del frame


if __name__ == "__main__":
    main()
