"""Rich output shared by the read-side commands: candle tables, export progress, sizes."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from livecli.core.candles import ORIGINS
from livecli.core.timeutil import iso

if TYPE_CHECKING:
    from livecli.store.query import CandleResult

PROGRESS_MIN_ROWS = 200_000  # below this an export is over before a bar could help


def stdout_console():
    from rich.console import Console

    # Piped output gets a wide, plain table rather than Rich's 80-column default.
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _num(x: float) -> str:
    # Two decimals like Kite shows prices; four for currency pairs quoted in 0.0025 steps.
    return f"{x:,.2f}" if round(x, 2) == x else f"{x:,.4f}"


def print_candle_table(result: CandleResult, limit: int) -> None:
    """The latest `limit` candles per symbol, newest last; a clear line when there are none."""
    import numpy as np
    from rich.table import Table

    arrays = result.arrays
    console = stdout_console()
    if len(arrays) == 0:
        held = ", ".join(result.available[:15]) if result.available else ""
        extra = f"; it holds {held}" if held else ""
        console.print(f"no {result.interval.name} candles in {result.source} for this request{extra}")
        return
    market = f" ({result.market})" if result.market else ""
    table = Table(title=f"{result.interval.name} candles from {result.source}{market}",
                  title_justify="left")
    columns: tuple[tuple[str, Literal["left", "right"]], ...] = (("symbol", "left"), ("start (IST)", "left"), ("open", "right"),
                      ("high", "right"), ("low", "right"), ("close", "right"),
                      ("volume", "right"), ("oi", "right"), ("ticks", "right"), ("flags", "left"))
    for col, just in columns:
        table.add_column(col, justify=just, no_wrap=True)
    tokens = arrays.token
    bounds = np.flatnonzero(np.r_[True, tokens[1:] != tokens[:-1], True])
    for a, b in itertools.pairwise(bounds.tolist()):
        tok = int(tokens[a])
        sym = result.names.get(tok, (str(tok), ""))[0]
        for i in range(max(a, b - limit), b):
            flags = " ".join(f for f, on in (("partial", arrays.partial[i]),
                                               ("synthetic", arrays.synthetic[i]),
                                               ("forming", not arrays.closed[i]),
                                               (ORIGINS[int(arrays.origin[i])],
                                                arrays.origin[i] != 0)) if on)
            oi = int(arrays.oi[i])
            table.add_row(
                sym, iso(int(arrays.start[i]))[:19].replace("T", " "), _num(arrays.open[i]),
                _num(arrays.high[i]), _num(arrays.low[i]), _num(arrays.close[i]),
                f"{int(arrays.volume[i]):,}", "" if oi < 0 else f"{oi:,}",
                str(int(arrays.ticks[i])), flags,
            )
        if b - a > limit:
            table.add_row(f"[dim]({b - a - limit} earlier)[/dim]", "", "", "", "", "", "", "", "", "")
    console.print(table)


@contextmanager
def export_progress(total: int) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr for exports big enough to take a moment; else nothing."""
    if total < PROGRESS_MIN_ROWS or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("exporting"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} rows"),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("export", total=total)
        yield lambda done, _total: bar.update(task, completed=done)
