"""Draws one dashboard frame from a `DashboardSnapshot`.

The frame is redrawn several times a second with possibly hundreds of instruments, so the
instruments table and the ticks panel are drawn as pre-styled segments in fixed-width columns
rather than as rich Tables (which measure and wrap every cell on every frame), and only the rows
that fit the terminal are formatted at all. Styles are parsed once, at import.

Times are formatted from epoch seconds shifted to +05:30 with `time.gmtime`, which never reads
the host's zone, so the clock reads IST on any machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from livecli.core.timeutil import IST_OFFSET_S
from livecli.dashboard.snapshot import (
    ConnectionPanel,
    DashboardSnapshot,
    InstrumentRow,
    TickLine,
    status_message,
)

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 16
MAX_TICK_LINES = 8
MIN_VISIBLE_ROWS = 3
DASH = "—"

# Parsed once: a frame reuses these objects instead of parsing style strings per cell.
S_NONE = Style()
S_HEAD = Style(bold=True)
S_DIM = Style(dim=True)
S_UP = Style(color="green")
S_DOWN = Style(color="red")
S_FLASH_UP = Style(color="black", bgcolor="green", bold=True)
S_FLASH_DOWN = Style(color="white", bgcolor="red", bold=True)
S_SYMBOL = Style(bold=True, color="cyan")
S_WARN = Style(color="yellow", bold=True)
S_ERROR = Style(color="red", bold=True)
S_BADGE = {
    "KITE": Style(color="white", bgcolor="blue", bold=True),
    "SIMULATED": Style(color="black", bgcolor="yellow", bold=True),
}
S_STATE = {
    "connecting": Style(color="yellow"),
    "connected": Style(color="green", bold=True),
    "stale": Style(color="yellow", bold=True),
    "reconnecting": Style(color="yellow", bold=True),
    "auth_failed": Style(color="red", bold=True),
    "closed": Style(color="red"),
    "stopped": Style(color="red", bold=True),
}


# --- cell formatting ---------------------------------------------------------------------------
def fmt_clock(epoch_s: float, with_date: bool = False) -> str:
    """Wall time in IST, independent of the host's TZ."""
    t = time.gmtime(epoch_s + IST_OFFSET_S)
    return time.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S", t)


def fmt_price(p: float | None) -> str:
    if p is None or p != p:
        return DASH
    return f"{p:,.2f}"


def fmt_pct(p: float | None) -> str:
    if p is None or p != p:
        return DASH
    return f"{p:+.2f}%"


def fmt_count(n: int | None) -> str:
    """Volumes and counts compactly: 950, 12.3K, 4.56M, 1.20B."""
    if n is None or n < 0:
        return DASH
    if n < 10_000:
        return str(n)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            v = n / div
            return f"{v:.2f}{suffix}" if v < 10 else f"{v:.1f}{suffix}" if v < 100 else f"{v:.0f}{suffix}"
    return str(n)  # pragma: no cover - unreachable


def fmt_left(s: float | None) -> str:
    """Time left in the forming candle: m:ss, or h:mm:ss for long intervals."""
    if s is None or s != s:
        return DASH
    total = max(0, math.ceil(s))
    h, rem = divmod(total, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt_age(s: float | None) -> str:
    if s is None or s != s:
        return DASH
    if s < 10:
        return f"{max(s, 0.0):.1f}s"
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{int(s // 60)}m"
    return f"{int(s // 3600)}h"


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """The last `width` values as unicode blocks scaled between their min and max."""
    vals = [v for v in values[-width:] if v == v]
    if not vals:
        return ""
    lo = min(vals)
    hi = max(vals)
    if hi <= lo:
        return SPARK_BLOCKS[3] * len(vals)
    scale = (len(SPARK_BLOCKS) - 1e-9) / (hi - lo)
    return "".join(SPARK_BLOCKS[int((v - lo) * scale)] for v in vals)


def _sign_style(x: float | None) -> Style:
    if x is None or x != x or x == 0:
        return S_NONE
    return S_UP if x > 0 else S_DOWN


# --- instruments table -------------------------------------------------------------------------
# (key, header, width, right-aligned). Columns are dropped from the end of DROP_ORDER first when
# the terminal is too narrow for all of them.
COLUMNS: tuple[tuple[str, str, int, bool], ...] = (
    ("symbol", "Symbol", 16, False),
    ("exch", "Exch", 4, False),
    ("last", "Last", 11, True),
    ("arrow", "", 1, False),
    ("chg", "Chg%", 8, True),
    ("open", "Open", 11, True),
    ("high", "High", 11, True),
    ("low", "Low", 11, True),
    ("close", "Close", 11, True),
    ("vol", "Vol", 7, True),
    ("left", "Left", 7, True),
    ("trend", "Trend", SPARK_WIDTH, False),
    ("ticks", "Ticks", 7, True),
    ("age", "Age", 5, True),
)
DROP_ORDER = ("age", "exch", "ticks", "open", "trend", "high", "low", "close", "left", "vol")
_GAP = Segment(" ")
_NL = Segment.line()


def fit_columns(width: int) -> list[tuple[str, str, int, bool]]:
    """The columns that fit in `width` cells (one-cell gaps between them)."""
    cols = list(COLUMNS)
    for key in DROP_ORDER:
        if sum(c[2] for c in cols) + len(cols) - 1 <= width:
            break
        cols = [c for c in cols if c[0] != key]
    return cols


def _cells(row: InstrumentRow) -> dict[str, tuple[str, Style]]:
    c = row.candle
    price_style = S_NONE
    if row.flash and row.direction:
        price_style = S_FLASH_UP if row.direction > 0 else S_FLASH_DOWN
    arrow = ("▲", S_UP) if row.direction > 0 else ("▼", S_DOWN) if row.direction < 0 else (" ", S_NONE)
    closes = row.closes
    trend_style = S_NONE
    if len(closes) >= 2:
        trend_style = S_UP if closes[-1] >= closes[0] else S_DOWN
    return {
        "symbol": (row.symbol, S_SYMBOL),
        "exch": (row.exchange, S_DIM),
        "last": (fmt_price(row.last_price), price_style),
        "arrow": arrow,
        "chg": (fmt_pct(row.change_pct), _sign_style(row.change_pct)),
        "open": (fmt_price(c.open) if c else DASH, S_NONE),
        "high": (fmt_price(c.high) if c else DASH, S_NONE),
        "low": (fmt_price(c.low) if c else DASH, S_NONE),
        "close": (fmt_price(c.close) if c else DASH, _sign_style(c.close - c.open) if c else S_NONE),
        "vol": (fmt_count(c.volume) if c else DASH, S_NONE),
        "left": (fmt_left(row.seconds_left), S_NONE),
        "trend": (sparkline(closes), trend_style),
        "ticks": (fmt_count(row.ticks), S_DIM),
        "age": (fmt_age(row.last_tick_age_s), S_DIM),
    }


def _fit(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        return text[: width - 1] + "…" if not right else text[-width:]
    return text.rjust(width) if right else text.ljust(width)


class InstrumentTable:
    """The instruments as fixed-width styled lines, capped to what fits the terminal.

    `max_rows` caps the rows explicitly; when None the cap is the terminal height less
    `reserved_lines` (the rest of the frame), read at draw time so a resize takes effect at once.
    """

    def __init__(
        self,
        rows: Sequence[InstrumentRow],
        empty_text: str,
        max_rows: int | None = None,
        reserved_lines: int = 0,
        total: int | None = None,
    ) -> None:
        self.rows = rows
        self.total = max(total or 0, len(rows))
        self.empty_text = empty_text
        self.max_rows = max_rows
        self.reserved_lines = reserved_lines

    def visible_limit(self, terminal_height: int) -> int:
        if self.max_rows is not None:
            return max(1, self.max_rows)
        return max(MIN_VISIBLE_ROWS, terminal_height - self.reserved_lines)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(20, options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        cols = fit_columns(options.max_width)
        for i, (_key, header, width, right) in enumerate(cols):
            if i:
                yield _GAP
            yield Segment(_fit(header, width, right), S_HEAD)
        yield _NL
        rows = self.rows
        if not rows:
            yield Segment(self.empty_text, S_WARN)
            yield _NL
            return
        limit = self.visible_limit(options.size.height)
        shown = len(rows) if len(rows) <= limit else max(1, limit - 1)
        for row in rows[:shown]:
            cells = _cells(row)
            for i, (key, _header, width, right) in enumerate(cols):
                if i:
                    yield _GAP
                text, style = cells[key]
                yield Segment(_fit(text, width, right), style)
            yield _NL
        hidden = self.total - shown
        if hidden:
            yield Segment(
                f"… {hidden} more instrument{'s' if hidden != 1 else ''} hidden "
                f"({shown} of {self.total} shown; enlarge the terminal to see more)",
                S_DIM,
            )
            yield _NL


# --- latest ticks ------------------------------------------------------------------------------
class TicksList:
    """The newest ticks, newest on top, as fixed-width styled lines."""

    def __init__(self, ticks: Sequence[TickLine], limit: int = MAX_TICK_LINES) -> None:
        self.ticks = list(ticks[-limit:])[::-1] if limit > 0 else []

    def line_count(self) -> int:
        return max(1, len(self.ticks))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(20, options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.ticks:
            yield Segment("no ticks yet", S_DIM)
            yield _NL
            return
        for t in self.ticks:
            yield Segment(fmt_clock(t.time), S_DIM)
            yield _GAP
            yield Segment(_fit(t.symbol, 14, False), S_SYMBOL)
            yield _GAP
            yield Segment(_fit(fmt_price(t.last_price), 11, True))
            yield _GAP
            yield Segment(_fit(fmt_pct(t.change_pct), 8, True), _sign_style(t.change_pct))
            yield _GAP
            yield Segment(_fit("vol " + fmt_count(t.volume_traded), 11, True), S_DIM)
            yield _NL


# --- connection --------------------------------------------------------------------------------
def _kv(text: Text, label: str, value: str, style: Style = S_NONE) -> None:
    text.append(label + " ", S_DIM)
    text.append(value, style)


def connection_lines(snap: DashboardSnapshot) -> list[Text]:
    c = snap.connection
    lines: list[Text] = []

    t = Text()
    _kv(t, "source", c.source, S_BADGE.get(c.source, S_HEAD))
    t.append("   ")
    _kv(t, "mode", c.mode)
    lines.append(t)

    t = Text()
    _kv(t, "state", c.state, S_STATE.get(c.state, S_HEAD))
    if c.detail:
        t.append("  " + c.detail, S_DIM)
    lines.append(t)

    t = Text()
    age = fmt_age(c.last_message_age_s)
    _kv(t, "last message", age if age == DASH else f"{age} ago")
    t.append("   ")
    _kv(t, "ticks/s", f"{c.ticks_per_s:.1f}")
    lines.append(t)

    t = Text()
    _kv(t, "reconnects", str(c.reconnects), S_WARN if c.reconnects else S_NONE)
    t.append("   ")
    _kv(t, "last error", c.last_error or DASH, S_ERROR if c.last_error else S_NONE)
    lines.append(t)

    t = Text()
    _kv(t, "candles stored", f"{c.candles_stored:,}")
    lines.append(t)

    t = Text()
    _kv(t, "late ticks", f"{c.late_ticks:,}", S_WARN if c.late_ticks else S_NONE)
    t.append("   ")
    _kv(t, "bad ticks", f"{c.bad_ticks:,}", S_WARN if c.bad_ticks else S_NONE)
    t.append("   ")
    _kv(t, "future ticks", f"{c.future_ticks:,}", S_WARN if c.future_ticks else S_NONE)
    lines.append(t)

    if c.history_state != "off":
        lines.append(history_line(c))

    t = Text()
    if c.time_source == "receive":
        _kv(t, "time source", "receive time ⚠", S_WARN)
    else:
        _kv(t, "time source", c.time_source)
    lines.append(t)

    if c.db_path:
        t = Text(no_wrap=True, overflow="ellipsis")
        _kv(t, "db", c.db_path)
        lines.append(t)
    for line in lines:
        line.no_wrap = True
        line.overflow = "ellipsis"
    return lines


HISTORY_BAR = 12  # cells of the warm start's progress bar


def history_line(c: ConnectionPanel) -> Text:
    """`history ████░░░░ 3/8 instruments` while the warm start runs; then what it brought."""
    t = Text()
    if c.history_state == "fetching":
        total = max(c.history_total, 1)
        full = min(HISTORY_BAR, c.history_done * HISTORY_BAR // total)
        t.append("history ", S_DIM)
        t.append("█" * full, S_HEAD)
        t.append("░" * (HISTORY_BAR - full), S_DIM)
        t.append(f" {c.history_done}/{c.history_total} instruments", S_NONE)
        return t
    style = S_ERROR if c.history_state == "failed" else (
        S_WARN if c.history_state == "repairing" else S_NONE)
    _kv(t, "history", c.history_state, style)
    t.append("   ")
    _kv(t, "minutes", f"{c.history_minutes:,}")
    t.append("   ")
    _kv(t, "repaired", f"{c.history_repaired:,}", S_WARN if c.history_repaired else S_NONE)
    return t


# --- the frame ---------------------------------------------------------------------------------
def receive_time_warning(snap: DashboardSnapshot) -> str | None:
    c = snap.connection
    if c.time_source != "receive":
        return None
    return (
        f"⚠ mode {c.mode}: Kite sends no exchange timestamp, so candles are timed by the receive "
        "time (use --mode full for exchange time)"
    )


def header_line(snap: DashboardSnapshot) -> Text:
    c = snap.connection
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f" {c.source} ", S_BADGE.get(c.source, S_HEAD))
    t.append(" ")
    t.append(snap.title, S_HEAD)
    t.append(f"  {snap.interval_name} candles  ", S_DIM)
    t.append(fmt_clock(snap.now, with_date=True) + " IST")
    t.append("  ● ", S_STATE.get(c.state, S_HEAD))
    t.append(c.state, S_STATE.get(c.state, S_HEAD))
    return t


def render(snapshot: DashboardSnapshot, *, max_rows: int | None = None) -> Group:
    """One frame: header, status line, instruments, latest ticks beside the connection.

    `max_rows` caps the instrument rows; by default they are capped to the terminal height.
    """
    snap = snapshot
    top: list[Text] = [header_line(snap)]
    msg = status_message(snap)
    if msg:
        top.append(Text(msg, style=S_STATE.get(snap.connection.state, S_WARN), no_wrap=True, overflow="ellipsis"))
    warn = receive_time_warning(snap)
    if warn:
        top.append(Text(warn, style=S_WARN, no_wrap=True, overflow="ellipsis"))

    ticks = TicksList(snap.recent_ticks)
    conn = connection_lines(snap)
    bottom_height = 2 + max(ticks.line_count(), len(conn))
    # Header lines + instruments panel borders and column header + bottom panels.
    reserved = len(top) + 3 + bottom_height

    n = max(snap.total_rows or 0, len(snap.rows))
    table = InstrumentTable(snap.rows, msg or "no instruments", max_rows=max_rows,
                            reserved_lines=reserved, total=n)
    instruments = Panel(
        table,
        title=f"Instruments · {snap.interval_name}" + (f" · {n}" if n else ""),
        title_align="left",
        border_style=S_DIM,
        padding=(0, 1),
    )

    bottom = Table.grid(expand=True, padding=(0, 1))
    bottom.add_column(ratio=3)
    bottom.add_column(ratio=2)
    bottom.add_row(
        Panel(ticks, title="Latest ticks", title_align="left", border_style=S_DIM, padding=(0, 1)),
        Panel(Group(*conn), title="Connection", title_align="left", border_style=S_DIM, padding=(0, 1)),
    )
    return Group(*top, instruments, bottom)
