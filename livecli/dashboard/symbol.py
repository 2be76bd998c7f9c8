"""One instrument's own screen: its candlestick chart beside its day, book and newest ticks.

The chart takes the width the side panel leaves and the height the terminal leaves; the side
panel is cut to that height, least important last (the ticks), so the screen fits any terminal
down to 80x24 without scrolling.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from livecli.dashboard.chart import chart_lines, fmt_tick
from livecli.dashboard.snapshot import SymbolView

SIDE_W = 33
MIN_CHART_W = 30
S_DIM = Style(dim=True)
S_HEAD = Style(bold=True)
S_TITLE = Style(bold=True, color="cyan")
S_UP = Style(color="green")
S_DOWN = Style(color="red")
DASH = "—"


def _p(x: float | None, tick: float) -> str:
    return DASH if x is None or x != x else fmt_tick(x, tick)


def _n(x: int | None) -> str:
    return DASH if x is None else f"{x:,}"


def _qty(n: int) -> str:
    """A book quantity in at most 5 cells: 950, 12345, 123K, 4.5M."""
    if n < 100_000:
        return str(n)
    if n < 1_000_000:
        return f"{n // 1000}K"
    return f"{n / 1e6:.1f}M"


def _sign(x: float | None) -> Style:
    return S_DIM if not x else S_UP if x > 0 else S_DOWN


def side_lines(v: SymbolView, interval_name: str, width: int) -> list[list[Segment]]:
    """The side panel: the forming candle, the day, OI, the book, the ticks."""
    t = v.tick_size
    lines: list[list[Segment]] = []

    def kv(*pairs: tuple[str, str, Style]) -> None:
        segs: list[Segment] = []
        for label, value, style in pairs:
            segs += [Segment(label + " ", S_DIM), Segment(value + "  ", style)]
        lines.append(segs)

    c = v.candles[-1] if v.candles else None
    lines.append([Segment(f"{interval_name} candle" + ("" if c is None or not c.closed
                                                       else " (closed)"), S_HEAD)])
    kv(("O", _p(c.open if c else None, t), Style()), ("H", _p(c.high if c else None, t), Style()))
    kv(("L", _p(c.low if c else None, t), Style()),
       ("C", _p(c.close if c else None, t), _sign((c.close - c.open) if c else None)))
    kv(("V", _n(c.volume if c else None), Style()))
    lines.append([Segment("day", S_HEAD)])
    chg = DASH if v.change is None else f"{v.change:+,.2f} ({v.change_pct:+.2f}%)"
    kv(("last", _p(v.last_price, t), S_HEAD), ("", chg, _sign(v.change)))
    kv(("O", _p(v.day_open, t), Style()), ("prev", _p(v.prev_close, t), Style()))
    kv(("H", _p(v.day_high, t), S_UP), ("L", _p(v.day_low, t), S_DOWN))
    kv(("vol", _n(v.day_volume), Style()))
    if v.oi is not None:
        oc = "" if v.oi_change is None else f"{v.oi_change:+,}"
        kv(("OI", _n(v.oi), Style()), ("chg", oc, _sign(v.oi_change)))
    lines.append([Segment("depth", S_HEAD)])
    lines.append([Segment(f"{'qty':>5} {'bid':>9} │ {'ask':<9} {'qty':>5}", S_DIM)])
    if not v.bids and not v.asks:
        lines.append([Segment("full mode only" if v.mode != "full" else "no book yet", S_DIM)])
    for k in range(5 if (v.bids or v.asks) else 0):
        b = v.bids[k] if k < len(v.bids) else None
        a = v.asks[k] if k < len(v.asks) else None
        lines.append([
            Segment(f"{(_qty(b[1]) if b else ''):>5} ", S_DIM),
            Segment(f"{(_p(b[0], t) if b else ''):>9}", S_UP),
            Segment(" │ ", S_DIM),
            Segment(f"{(_p(a[0], t) if a else ''):<9}", S_DOWN),
            Segment(f" {(_qty(a[1]) if a else ''):>5}", S_DIM),
        ])
    lines.append([Segment("ticks", S_HEAD)])
    if not v.ticks:
        lines.append([Segment("none yet", S_DIM)])
    import time as _time

    from livecli.core.timeutil import IST_OFFSET_S

    for tk in reversed(v.ticks):
        hms = _time.strftime("%H:%M:%S", _time.gmtime(tk.time + IST_OFFSET_S))
        vol = "" if tk.volume_traded is None else f" {tk.volume_traded:,}"
        lines.append([Segment(hms + " ", S_DIM), Segment(_p(tk.last_price, t)),
                      Segment(vol, S_DIM)])
    return [_cut(line, width) for line in lines]


def _cut(line: list[Segment], width: int) -> list[Segment]:
    out, used = [], 0
    for seg in line:
        room = width - used
        if room <= 0:
            break
        text = seg.text[:room]
        out.append(Segment(text, seg.style))
        used += len(text)
    if used < width:
        out.append(Segment(" " * (width - used)))
    return out


class SymbolScreen:
    """The title, then chart | side panel, as tall as the terminal less `reserved_lines`."""

    def __init__(self, view: SymbolView, interval_name: str, reserved_lines: int = 0) -> None:
        self.view = view
        self.interval_name = interval_name
        self.reserved_lines = reserved_lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        v = self.view
        width = options.max_width
        height = max(8, (options.height or options.size.height) - self.reserved_lines)
        nl = Segment.line()
        yield Segment(f"{v.exchange}:{v.symbol}", S_TITLE)
        yield Segment(f"  {self.interval_name} candles · tick {v.tick_size:g} · times IST"
                      f" · {len(v.candles)} candles", S_DIM)
        yield nl
        body = height - 1
        side_w = SIDE_W if width - SIDE_W - 1 >= MIN_CHART_W else 0
        chart_w = width - side_w - (1 if side_w else 0)
        chart = chart_lines(v.candles, chart_w, body, v.tick_size, v.day_high, v.day_low)
        side = side_lines(v, self.interval_name, side_w) if side_w else []
        for r in range(body):
            line = chart[r] if r < len(chart) else []
            yield from _cut(line, chart_w)
            if side_w:
                yield Segment("│", S_DIM)
                yield from (side[r] if r < len(side) else [Segment(" " * side_w)])
            yield nl
