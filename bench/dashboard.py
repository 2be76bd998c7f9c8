"""How long one dashboard frame takes to draw, beside a plain rich Table of the same cells.

A frame is `render(snapshot)` plus printing it on a 160x50 truecolor terminal (into a null file),
which is what the runner does several times a second. The baseline prints a default rich Table
holding the same cell strings for the same visible rows, with no styling: the cheapest way to
show the table with stock rich. Target: <= 15 ms per frame with 50 rows. The symbol view (the
candlestick chart, book, day and ticks of one instrument) is measured too, at 160x50 and 80x24,
beside a plain rich Table of the same candles.

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
    InstrumentTable,
    _cells,
    fit_columns,
    render,
)
from livecli.dashboard.snapshot import (
    ConnectionPanel,
    DashboardSnapshot,
    InstrumentRow,
    SymbolView,
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
    """The columns the dashboard shows at this width (fit_columns), as a plain rich Table."""
    cols = fit_columns(WIDTH - 4, frozenset({"bid", "ask", "oi"}))
    table = Table()
    for _key, header, _w, _r in cols:
        table.add_column(header)
    for row in snap.rows[:shown]:
        cells = _cells(row)
        table.add_row(*(cells[key][0] for key, *_ in cols))
    return table


def symbol_snapshot(rng: random.Random) -> DashboardSnapshot:
    snap = make_snapshot(50, rng)
    candles, p = [], 1500.0
    for i in range(120):
        o = p
        c = round((o + rng.uniform(-3, 3)) * 20) / 20
        candles.append(Candle(738561, 1, 1_717_386_300 + 60 * i, o, max(o, c) + 0.5,
                              min(o, c) - 0.5, c, rng.randrange(10**5), None, 50))
        p = c
    ticks = [TickLine(NOW - k, "RELIANCE", p + 0.05 * k, 1_000_000 + k) for k in range(40)]
    book = [(p - 0.05 * k, 100 * k, k) for k in range(1, 6)]
    view = SymbolView("RELIANCE", "NSE", 738561, 0.05, candles, p, p - 5, 5.0, 0.33, p - 4,
                      p + 8, p - 9, 1_234_567, None, None, book,
                      [(p + 0.05 * k, 90 * k, k) for k in range(1, 6)], ticks)
    snap.symbol_view = view
    snap.view.interactive = True
    return snap


def candle_table(snap: DashboardSnapshot, height: int) -> Table:
    table = Table()
    for header in ("Time", "Open", "High", "Low", "Close", "Volume"):
        table.add_column(header)
    view = snap.symbol_view
    assert view is not None
    for c in view.candles[-(height - 4):]:
        table.add_row(time.strftime("%H:%M", time.gmtime(c.start + 19_800)), f"{c.open:,.2f}",
                      f"{c.high:,.2f}", f"{c.low:,.2f}", f"{c.close:,.2f}", str(c.volume))
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
    # The symbol view: the candlestick chart (120 candles, as many drawn as fit), the book, the
    # day and the ticks, beside a plain rich Table of the same candles' OHLCV (the stock way to
    # show them), on the big terminal and on 80x24.
    view_snap = symbol_snapshot(rng)
    for w, h in ((WIDTH, HEIGHT), (80, 24)):
        console = Console(file=NULL_FILE, width=w, height=h, force_terminal=True,
                          color_system="truecolor")
        ms = time_frames(lambda s=view_snap, c=console: c.print(render(s)), 200)
        base_ms = time_frames(lambda c=console, hh=h: c.print(candle_table(view_snap, hh)), 200)
        print(f"symbol view {w}x{h}: {ms:.2f} ms/frame   baseline plain rich Table of its "
              f"candles: {base_ms:.2f} ms/frame   ratio {ms / base_ms:.2f}")
        results[f"view {w}x{h}"] = ms
    verdict = "met" if results[50] <= 15 else "MISSED"
    print(f"target <= 15 ms/frame with 50 rows: {verdict} ({results[50]:.2f} ms)")


if __name__ == "__main__":
    main()
