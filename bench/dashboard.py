"""How long one dashboard frame takes to draw, beside a plain rich Table of the same cells.

A frame is `render(snapshot)` plus printing it on a 160x50 truecolor terminal (into a null file),
which is what the runner does several times a second. The baseline prints a default rich Table
holding the same cell strings for the same visible rows, with no styling: the cheapest way to
show the table with stock rich. Target: <= 15 ms per frame with 50 rows.

Run: .venv/bin/python bench/dashboard.py
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from livecli.core.candles import Candle
from livecli.dashboard.render import (
    COLUMNS,
    InstrumentTable,
    _cells,
    render,
)
from livecli.dashboard.snapshot import (
    ConnectionPanel,
    DashboardSnapshot,
    InstrumentRow,
    TickLine,
)

WIDTH, HEIGHT = 160, 50
NOW = 1_717_386_302.0


def make_snapshot(n: int, rng: random.Random) -> DashboardSnapshot:
    rows = []
    for i in range(n):
        p = rng.uniform(100, 5000)
        closes = [p * (1 + rng.uniform(-0.01, 0.01)) for _ in range(30)]
        d = rng.choice((-1, 0, 1))
        rows.append(InstrumentRow(
            symbol=f"SYMBOL{i:04d}", exchange="NSE", instrument_token=100_000 + i, last_price=p,
            prev_close=p * 0.99, change_pct=rng.uniform(-3, 3),
            candle=Candle(100_000 + i, 1, 1_717_386_300, p - 1, p + 2, p - 3, p,
                          rng.randrange(10**7), None, rng.randrange(500)),
            seconds_left=rng.uniform(0, 60), closes=closes, ticks=rng.randrange(10**5),
            last_tick_age_s=rng.uniform(0, 3), direction=d, flash=rng.random() < 0.3,
        ))
    ticks = [TickLine(NOW - k, f"SYMBOL{k:04d}", 1000.0 + k, 123_456 * k, 0.1 * k) for k in range(50)]
    conn = ConnectionPanel("SIMULATED", "connected", None, 0.1, 250.0, 1, None, 12_345, 0, 0,
                           "exchange", "full", "/tmp/candles.db", future_ticks=0)
    return DashboardSnapshot("livecli stream", "1min", NOW, conn, rows, ticks)


NULL_FILE = open(os.devnull, "w")  # noqa: SIM115 - one handle for the whole run


def null_console(height: int = HEIGHT) -> Console:
    return Console(file=NULL_FILE, width=WIDTH, height=height, force_terminal=True,
                   color_system="truecolor")


def time_frames(draw, frames: int) -> float:
    """Median ms per frame over `frames` draws (after a warm-up)."""
    for _ in range(5):
        draw()
    samples = []
    for _ in range(frames):
        t0 = time.perf_counter()
        draw()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def visible_rows(snap: DashboardSnapshot, console: Console) -> int:
    """How many instrument rows the dashboard shows on this console."""
    group = render(snap)
    table = next(r.renderable for r in group.renderables if hasattr(r, "renderable")
                 and isinstance(r.renderable, InstrumentTable))
    limit = table.visible_limit(console.size.height)
    n = len(snap.rows)
    return n if n <= limit else max(1, limit - 1)


def baseline_table(snap: DashboardSnapshot, shown: int) -> Table:
    table = Table()
    for _key, header, _w, _r in COLUMNS:
        table.add_column(header)
    for row in snap.rows[:shown]:
        cells = _cells(row)
        table.add_row(*(cells[key][0] for key, *_ in COLUMNS))
    return table


def main() -> None:
    rng = random.Random(7)
    print(f"terminal {WIDTH}x{HEIGHT}, truecolor; median ms per frame")
    results = {}
    for n in (50, 200):
        snap = make_snapshot(n, rng)
        console = null_console()
        shown = visible_rows(snap, console)
        ms = time_frames(lambda s=snap, c=console: c.print(render(s)), 200)
        base_ms = time_frames(lambda s=snap, c=console, k=shown: c.print(baseline_table(s, k)), 200)
        results[n] = ms
        print(f"dashboard {n} rows: {ms:.2f} ms/frame ({shown} visible)   "
              f"baseline plain rich Table, same {shown} rows: {base_ms:.2f} ms/frame   "
              f"ratio {ms / base_ms:.2f}")
    # A terminal tall enough for all 200 rows: the cost when nothing is capped.
    snap = make_snapshot(200, rng)
    tall = null_console(height=260)
    ms = time_frames(lambda: tall.print(render(snap)), 50)
    base_ms = time_frames(lambda: tall.print(baseline_table(snap, 200)), 50)
    print(f"dashboard 200 rows all visible: {ms:.2f} ms/frame   "
          f"baseline plain rich Table, 200 rows: {base_ms:.2f} ms/frame   ratio {ms / base_ms:.2f}")
    verdict = "met" if results[50] <= 15 else "MISSED"
    print(f"target <= 15 ms/frame with 50 rows: {verdict} ({results[50]:.2f} ms)")


if __name__ == "__main__":
    main()
