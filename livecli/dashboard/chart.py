"""A candlestick chart drawn with terminal characters: the symbol view's and `livecli chart`'s.

Layout, so anyone can read a price back off the screen: the newest candles that fit stand in
columns two cells apart (the newest at the right), the price axis is on the right; a price `p`
is on row `round((hi - p) / (hi - lo) * (rows - 1))` of the price area, where `hi` and `lo` are
the shown candles' highest high and lowest low rounded out to the tick size and printed as the
axis's top and bottom labels. A candle's wick (`│`) runs from its high's row to its low's row and
its body (`█`) from the open's to the close's, green when it closed at or above its open, red
below (dim when synthetic). The day's high and low, when inside the range, are dotted lines
labelled `H` and `L` on the axis (the top and bottom labels are always `hi` and `lo`, marked `H`
or `L` when the day's extreme is exactly there). Under the prices: volume bars (eighth-cell blocks scaled to the
largest volume shown) and the candles' start times in IST, the newest one's on the axis
(`◂HH:MM IST`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from decimal import Decimal

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from livecli.core.candles import Candle
from livecli.core.timeutil import IST_OFFSET_S

S_UP = Style(color="green")
S_DOWN = Style(color="red")
S_UP_DIM = Style(color="green", dim=True)
S_DOWN_DIM = Style(color="red", dim=True)
S_AXIS = Style(dim=True)
S_DAY = Style(color="yellow", dim=True)
S_DAY_LABEL = Style(color="yellow", bold=True)
S_NONE = Style()
VOL_BLOCKS = " ▁▂▃▄▅▆▇█"
SLOT = 2  # cells per candle: the candle and a gap


def tick_decimals(tick_size: float) -> int:
    """Decimals a price needs at this tick size: 0.05 -> 2, 0.0025 -> 4, 1 -> 0."""
    if not tick_size > 0:
        return 2
    exp = Decimal(repr(tick_size)).normalize().as_tuple().exponent
    return max(0, -int(exp))


def fmt_tick(p: float, tick_size: float) -> str:
    d = tick_decimals(tick_size)
    return f"{p:,.{d}f}"


def price_range(candles: Sequence[Candle], tick_size: float) -> tuple[float, float]:
    """(lo, hi) of the axis: the candles' extremes rounded out to the tick size."""
    tick = tick_size if tick_size > 0 else 0.01
    hi = max(c.high for c in candles)
    lo = min(c.low for c in candles)
    hi = math.ceil(round(hi / tick, 6)) * tick
    lo = math.floor(round(lo / tick, 6)) * tick
    if hi <= lo:
        hi, lo = hi + tick, lo - tick
    return lo, hi


def row_of(p: float, lo: float, hi: float, rows: int) -> int:
    return max(0, min(rows - 1, round((hi - p) / (hi - lo) * (rows - 1))))


def hhmm(epoch_s: float) -> str:
    return time.strftime("%H:%M", time.gmtime(epoch_s + IST_OFFSET_S))


def fits(width: int) -> int:
    """How many candles a chart `width` cells wide shows."""
    return max(1, (width - 12) // SLOT)


def chart_lines(candles: Sequence[Candle], width: int, height: int, tick_size: float,
                day_high: float | None = None, day_low: float | None = None
                ) -> list[list[Segment]]:
    """The chart as `height` lines of at most `width` cells (one list of segments a line)."""
    if not candles:
        blank = [[Segment(" " * width)] for _ in range(max(0, height - 1))]
        return [[Segment("no candles yet", S_AXIS)], *blank][:height]
    vol_rows = 3 if height >= 14 else 1 if height >= 6 else 0
    rows = max(2, height - vol_rows - 1)
    lo, hi = price_range(candles[-fits(width):], tick_size)
    labels = [fmt_tick(p, tick_size) for p in (hi, lo)]
    axis_w = max(len(x) for x in labels) + 3  # " H " + label
    n = max(1, (width - axis_w) // SLOT)
    shown = list(candles[-n:])
    lo, hi = price_range(shown, tick_size)
    plot_w = n * SLOT
    grid: list[list[tuple[str, Style]]] = [[(" ", S_NONE)] * plot_w for _ in range(rows)]
    axis: list[tuple[str, Style]] = [("", S_AXIS)] * rows
    tick = tick_size if tick_size > 0 else 0.01
    for r in range(0, rows, 4):
        p = round((hi - r * (hi - lo) / (rows - 1)) / tick) * tick
        axis[r] = ("   " + fmt_tick(p, tick_size), S_AXIS)
    axis[rows - 1] = ("   " + fmt_tick(lo, tick_size), S_AXIS)
    axis[0] = ("   " + fmt_tick(hi, tick_size), S_AXIS)
    for mark, value in (("H", day_high), ("L", day_low)):
        if value is None or not lo <= value <= hi:
            continue
        r = row_of(value, lo, hi, rows)
        grid[r] = [("┈", S_DAY) if ch == " " else (ch, st) for ch, st in grid[r]]
        if r in (0, rows - 1) and value != (hi if r == 0 else lo):
            continue  # the top and bottom rows keep the range's own labels
        axis[r] = (f" {mark} " + fmt_tick(value, tick_size), S_DAY_LABEL)
    off = plot_w - len(shown) * SLOT  # the newest candle at the right edge
    for j, c in enumerate(shown):
        x = off + j * SLOT
        up = c.close >= c.open
        style = (S_UP if up else S_DOWN) if not c.synthetic else (S_UP_DIM if up else S_DOWN_DIM)
        rh, rl = row_of(c.high, lo, hi, rows), row_of(c.low, lo, hi, rows)
        rt, rb = row_of(max(c.open, c.close), lo, hi, rows), row_of(min(c.open, c.close), lo, hi, rows)
        for r in range(rh, rl + 1):
            grid[r][x] = ("█" if rt <= r <= rb else "│", style)
    lines = [_runs(grid[r], axis[r], width) for r in range(rows)]
    if vol_rows:
        vmax = max((c.volume for c in shown), default=0)
        vgrid: list[list[tuple[str, Style]]] = [[(" ", S_NONE)] * plot_w for _ in range(vol_rows)]
        for j, c in enumerate(shown):
            if vmax <= 0 or c.volume <= 0:
                continue
            eighths = max(1, round(c.volume / vmax * vol_rows * 8))
            style = S_UP_DIM if c.close >= c.open else S_DOWN_DIM
            for r in range(vol_rows):
                level = eighths - (vol_rows - 1 - r) * 8
                if level > 0:
                    vgrid[r][off + j * SLOT] = (VOL_BLOCKS[min(8, level)], style)
        for r in range(vol_rows):
            vlabel = (f"   vol {_count(vmax)}", S_AXIS) if r == 0 else ("", S_AXIS)
            lines.append(_runs(vgrid[r], vlabel, width))
    # Start times under their candles, every 6th counted back from the newest (whose own time
    # stands on the axis), each label beginning at its candle's column.
    times = [" "] * plot_w
    for j in range(len(shown) - 7, -1, -6):
        x = off + j * SLOT
        stamp = hhmm(shown[j].start)
        if x + len(stamp) <= plot_w and all(ch == " " for ch in times[max(0, x - 1):x + len(stamp)]):
            times[x:x + len(stamp)] = list(stamp)
    lines.append(_runs([(ch, S_AXIS) for ch in times],
                       (f" ◂{hhmm(shown[-1].start)} IST", S_AXIS), width))
    return lines


def _count(n: int) -> str:
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{suffix}"
    return str(n)


def _runs(cells: list[tuple[str, Style]], axis: tuple[str, Style], width: int) -> list[Segment]:
    """Cells merged into runs of one style, then the axis label, cut to `width`."""
    out: list[Segment] = []
    buf: list[str] = []
    cur: Style | None = None
    for ch, st in cells:
        if st is not cur and buf:
            out.append(Segment("".join(buf), cur))
            buf = []
        cur = st
        buf.append(ch)
    if buf:
        out.append(Segment("".join(buf), cur))
    room = width - len(cells)
    if room > 0 and axis[0]:
        out.append(Segment(axis[0][:room], axis[1]))
    return out


class CandleChart:
    """The chart as a rich renderable of a fixed height (the width is what it is given)."""

    def __init__(self, candles: Sequence[Candle], height: int, tick_size: float,
                 day_high: float | None = None, day_low: float | None = None) -> None:
        self.candles = candles
        self.height = height
        self.tick_size = tick_size
        self.day_high = day_high
        self.day_low = day_low

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        nl = Segment.line()
        for line in chart_lines(self.candles, options.max_width, self.height, self.tick_size,
                                self.day_high, self.day_low):
            yield from line
            yield nl
