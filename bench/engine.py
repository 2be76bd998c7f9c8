"""Candle engine speed, boundary cost and memory: `python bench/engine.py [section ...]`.

Sections (all by default), each printed beside a baseline run in the same process (ratios hold
on a noisy machine):
- `streaming`: ticks/s of the columnar engine fed decoded frames (numpy columns), on its
  compiled kernel (livecli/core/kernel.py, what a session runs) and on its numpy path, against a lean
  naive builder (Python lists, a lock per frame, one dict per candle, volume from the cumulative
  day volume), on
    sparse: 9000 instruments, about 0.6 ticks per instrument-minute (most trades open a candle),
    dense: 500 instruments at ~2 ticks/s each, in 500-tick frames of random instruments, and in
    Kite-shaped frames (one snapshot per instrument per frame);
  every input is also rebuilt by `rebuild_arrays`, and the engine's candles must equal it
  (the run stops if they do not);
- `boundary`: the worst and the median frame at 9000 instruments across minute ends, building
  1 and 5 minutes, with closed candles taken as batches (`on_close_batch`, as the session does)
  and, as the baseline, as one `Candle` object each (`on_close`);
- `memory`: resident bytes per closed candle held in history; baseline: `Candle` objects;
- `load`: what loading the kernel costs a fresh interpreter (CPU seconds and RSS), its first
  compile (an empty numba cache) and a load from the cache, beside what importing the engine
  alone costs the same interpreter (a session below 500 instruments pays only that).
Targets (issue 15): streaming >= 2x the naive builder at 500 and 9000 instruments; worst frame
at a boundary <= 20 ms at 9000 instruments, 1 and 5 minutes.
"""

from __future__ import annotations

import gc
import itertools
import os
import sys
import threading
import time
from datetime import date
from datetime import time as dtime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livecli.core.batch import rebuild_arrays
from livecli.core.candles import Candle
from livecli.core.closed import ClosedCandles
from livecli.core.colhistory import ColumnarHistory
from livecli.core.engine import CandleEngine
from livecli.core.ticks import TickColumns
from livecli.core.timeutil import at_ist

FRAME = 500
FIELDS = ("token", "time", "price", "volume", "day_high", "day_low", "oi")
OPEN = at_ist(date(2025, 1, 6), dtime(9, 15))


def _cumulative(tok: np.ndarray, inc: np.ndarray) -> np.ndarray:
    """Per-instrument cumulative volume, in arrival order."""
    n = len(tok)
    order = np.argsort(tok, kind="stable")
    cs = np.cumsum(inc[order])
    g = tok[order]
    first = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    base = np.repeat(np.r_[0, cs[first[1:] - 1]], np.diff(np.r_[first, n]))
    vol = np.empty(n, np.int64)
    vol[order] = cs - base
    return vol


def make_ticks(instruments: int, n: int, span_s: float, seed: int = 1) -> TickColumns:
    """`n` full-mode ticks of `instruments` NSE stocks spread over `span_s` from 09:15."""
    rng = np.random.default_rng(seed)
    tokens = (np.arange(instruments, dtype=np.int64) + 1000) * 256 + 1
    tok = tokens[rng.integers(0, instruments, n)]
    t = np.floor(OPEN + np.sort(rng.random(n)) * span_s)
    price = 1000 + rng.integers(-400, 400, n) * 0.05
    inc = rng.integers(0, 3, n) * rng.integers(1, 200, n)
    vol = _cumulative(tok, inc)
    high = np.maximum.accumulate(price)  # a day high that only rises (per feed, close enough)
    low = np.minimum.accumulate(price)
    return TickColumns(tok, t, price, vol, high, low, np.full(n, -1, np.int64))


def sparse_ticks(instruments: int = 9000, minutes: int = 120) -> TickColumns:
    n = int(0.6 * instruments * minutes)
    return make_ticks(instruments, n, minutes * 60.0)


def dense_ticks(instruments: int = 500, n: int = 1_000_000) -> TickColumns:
    return make_ticks(instruments, n, n / (instruments * 2.0))


def frames(cols: TickColumns, size: int = FRAME) -> list[TickColumns]:
    """Frames of `size` ticks in arrival order, as numpy columns."""
    return [TickColumns(*(np.ascontiguousarray(getattr(cols, f)[i:i + size]) for f in FIELDS))
            for i in range(0, len(cols.token), size)]


def kite_frames(cols: TickColumns) -> tuple[TickColumns, list[TickColumns]]:
    """Kite-shaped frames: one snapshot per instrument that traded, once a second.

    Returns the ticks in the order the frames carry them (the input both paths rebuild) and
    the frames."""
    t = np.asarray(cols.time)
    tok = np.asarray(cols.token)
    # Keep each instrument's last snapshot of each second, as Kite's ticker conflates.
    key = (t.astype(np.int64) - int(OPEN)) * (1 << 32) + (tok & 0xFFFFFFFF)
    by_key = np.argsort(key, kind="stable")  # arrival order kept within a key
    ks = key[by_key]
    last = np.r_[ks[1:] != ks[:-1], True]
    order = np.sort(by_key[last])  # the kept snapshots, in arrival order
    kept = TickColumns(*(np.asarray(getattr(cols, f))[order] for f in FIELDS))
    sec = np.asarray(kept.time)
    cuts = np.flatnonzero(sec[1:] != sec[:-1]) + 1
    bounds = np.r_[0, cuts, len(sec)]
    fs = [TickColumns(*(np.ascontiguousarray(np.asarray(getattr(kept, f))[a:b]) for f in FIELDS))
          for a, b in itertools.pairwise(bounds)]
    return kept, fs


class NaiveBuilder:
    """The lean naive builder: lists, a lock, one dict per candle, 1-minute buckets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forming: dict[int, dict] = {}
        self.last_volume: dict[int, int] = {}
        self.closed: list[dict] = []

    def update(self, cols: TickColumns) -> None:
        forming, last_volume, closed = self.forming, self.last_volume, self.closed
        with self.lock:
            for tok, t, p, v in zip(cols.token.tolist(), cols.time.tolist(),  # type: ignore[union-attr]
                                    cols.price.tolist(), cols.volume.tolist(), strict=True):  # type: ignore[union-attr]
                start = int(t // 60) * 60
                c = forming.get(tok)
                if c is None or c["start"] != start:
                    if c is not None:
                        closed.append(c)
                    c = forming[tok] = {"start": start, "open": p, "high": p, "low": p,
                                        "close": p, "volume": 0, "ticks": 0}
                elif p > c["high"]:
                    c["high"] = p
                elif p < c["low"]:
                    c["low"] = p
                c["close"] = p
                c["ticks"] += 1
                lv = last_volume.get(tok)
                if lv is not None and v > lv:
                    c["volume"] += v - lv
                last_volume[tok] = v


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def best_of_pair(a, b, repeat: int = 5) -> tuple[float, float]:
    """Best times of `a` and `b`, run alternately (a loaded machine then hits both alike)."""
    ta = tb = float("inf")
    for _ in range(repeat):
        ta = min(ta, best_of(a, 1))
        tb = min(tb, best_of(b, 1))
    return ta, tb


def run_engine(fs: list[TickColumns], intervals: list[int], kernel: bool) -> list[ClosedCandles]:
    e = CandleEngine(intervals, kernel=kernel)
    got: list[ClosedCandles] = []
    e.on_close_batch(got.append)
    for f in fs:
        e.update_columns(f)
    e.close_all()
    return got


def check_equal(label: str, cols: TickColumns, fs: list[TickColumns], intervals: list[int]) -> None:
    """The engine's candles, on both paths, equal the batch rebuild's, interval by interval
    (or stop)."""
    want = rebuild_arrays(cols, intervals).candles
    for kernel in (True, False):
        got = run_engine(fs, intervals, kernel)
        for m in intervals:
            mine = [b for b in got if b.interval_min == m]
            if not mine:
                raise SystemExit(f"{label}: the engine closed no {m}min candle")
            a = ClosedCandles.concat(mine).arrays().sorted()
            b = want[m]
            for f in ("token", "start", "open", "high", "low", "close", "volume", "oi", "ticks",
                      "partial", "synthetic"):
                if not np.array_equal(getattr(a, f), getattr(b, f)):
                    raise SystemExit(f"{label}: engine (kernel={kernel}) and batch rebuild "
                                     f"differ in {m}min {f}")
    print(f"  {label}: engine == batch rebuild on both paths ({sum(len(b) for b in got):,} "
          f"candles, intervals {intervals})")


def streaming() -> None:
    sparse = sparse_ticks()
    dense = dense_ticks()
    kept, kite = kite_frames(dense)
    cases = [
        ("sparse, 9000 instruments, 0.6 ticks/instrument-minute", sparse, frames(sparse)),
        ("dense, 500 instruments, 500-tick random frames", dense, frames(dense)),
        ("dense, 500 instruments, Kite-shaped frames", kept, kite),
    ]
    for label, cols, fs in cases:
        n = len(cols.token)
        check_equal(label, cols, fs, [1, 5])

        tokens = np.unique(np.asarray(cols.token)).tolist()

        def naive(fs=fs) -> None:
            b = NaiveBuilder()
            for f in fs:
                b.update(f)

        def made(kernel: bool, tokens=tokens) -> CandleEngine:
            e = CandleEngine([1], kernel=kernel)
            for tok in tokens:  # the session names its instruments before it connects
                e.register(tok, f"S{tok}", "NSE")
            return e

        for kernel in (True, False):  # the compiled kernel a session uses; the numpy path
            ready = iter([made(kernel) for _ in range(5)])  # set up outside the timed runs

            def engine(fs=fs, ready=ready) -> None:
                e = next(ready)
                for f in fs:
                    e.update_columns(f)

            base, t = best_of_pair(naive, engine)
            path = "compiled kernel" if kernel else "numpy path"
            print(f"streaming {label}: livecli ({path}) {n / t:,.0f} ticks/s, lean naive "
                  f"builder {n / base:,.0f} ticks/s, ratio {base / t:.2f}x")


def boundary() -> None:
    """Frames over three minute ends, every one of 9000 instruments trading each minute."""
    instruments = 9000
    span = 5 * 60 + 30
    cols = make_ticks(instruments, instruments * 8, span, seed=7)  # ~1.5 ticks/min each
    # Start every instrument in the first second, so each minute end closes 9000 candles.
    tok0 = (np.arange(instruments, dtype=np.int64) + 1000) * 256 + 1
    first = TickColumns(tok0, np.full(instruments, OPEN), np.full(instruments, 1000.0),
                        np.zeros(instruments, np.int64), np.full(instruments, 1000.0),
                        np.full(instruments, 1000.0), np.full(instruments, -1, np.int64))
    fs = frames(first) + frames(cols)
    for ivs in ([1], [1, 5]):
        for how in ("on_close_batch", "on_close"):
            worst, med = _frame_times(fs, ivs, how, tok0.tolist())
            print(f"boundary 9000 instruments, {'+'.join(f'{m}min' for m in ivs)}, {how}: "
                  f"worst frame {worst * 1e3:.1f} ms, median {med * 1e3:.2f} ms")


def _frame_times(fs: list[TickColumns], ivs: list[int], how: str,
                 tokens: list[int]) -> tuple[float, float]:
    worst_runs, meds = [], []
    for _ in range(3):
        e = CandleEngine(ivs, kernel=True)  # as a session runs once its kernel is loaded
        for tok in tokens:  # as the session does before it connects
            e.register(tok, f"S{tok}", "NSE")
        sink: list = []
        if how == "on_close_batch":
            e.on_close_batch(sink.append)
        else:
            e.on_close(sink.append)
        times = []
        gc.collect()
        for f in fs:
            t0 = time.perf_counter()
            e.update_columns(f)
            times.append(time.perf_counter() - t0)
        worst_runs.append(max(times))
        meds.append(float(np.median(times)))
    return min(worst_runs), min(meds)


def rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory() -> None:
    instruments, per = 2000, 500
    slots = np.arange(instruments, dtype=np.int64)
    gc.collect()
    before = rss()
    h = ColumnarHistory(1, per, instruments)
    for i in range(per):
        z = np.zeros(instruments, np.int64)
        f = np.full(instruments, 100.0 + i * 0.05) + slots
        h.append(ClosedCandles(1, slots, slots + 1000, z + i * 60, f, f, f, f, z + 1234, z - 1,
                               z + 7, np.zeros(instruments, np.bool_),
                               np.zeros(instruments, np.bool_)))
    gc.collect()
    held = rss() - before
    n = instruments * per
    objs_before = rss()
    objs = [Candle(k, 1, i * 60, 100.5 + i, 101.0 + i, 99.5 + i, 100.25 + i, 1234 + i, None, 7)
            for k in range(instruments // 4) for i in range(per)]
    objs_bytes = (rss() - objs_before) / len(objs)
    print(f"memory: livecli {held / n:.0f} bytes per held candle ({n:,} candles), "
          f"Candle objects {objs_bytes:.0f} bytes each, ratio {objs_bytes / (held / n):.1f}x")
    del h, objs


LOAD_PROBE = """
import json, os, resource, time
def rss():
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0, m0 = cpu(), rss()
import livecli.core.engine
from livecli.core import kernel
c1, m1 = cpu(), rss()
ok = kernel.load() is not None
c2, m2 = cpu(), rss()
print(json.dumps({"ok": ok, "engine_cpu": c1 - c0, "engine_mb": (m1 - m0) / 2**20,
                  "kernel_cpu": c2 - c1, "kernel_mb": (m2 - m1) / 2**20}))
"""


def load() -> None:
    import json
    import subprocess
    import tempfile

    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory(prefix="livecli-numba-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache,
               "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
        for what in ("first compile", "from the cache"):
            done = subprocess.run([sys.executable, "-c", LOAD_PROBE], env=env, check=True,
                                  capture_output=True, text=True, timeout=300)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            if not r["ok"]:
                raise SystemExit("load: the kernel could not be made (is numba installed?)")
            print(f"kernel load, {what}: {r['kernel_cpu']:.2f} CPU-s, +{r['kernel_mb']:.0f} MB "
                  f"RSS; baseline, importing the engine alone: {r['engine_cpu']:.2f} CPU-s, "
                  f"+{r['engine_mb']:.0f} MB")


if __name__ == "__main__":
    # memory first: resident size is only meaningful before big arrays come and go
    which = sys.argv[1:] or ["memory", "streaming", "boundary", "load"]
    for name in which:
        globals()[name]()
