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
    ViewInfo,
    status_message,
)
from livecli.dashboard.state import Scroll

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
S_SELECTED = Style(reverse=True)
S_SORTED = Style(bold=True, underline=True, color="cyan")
S_KEY = Style(bold=True, color="cyan")
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
# (key, header, width, right-aligned), in the order they are shown.
COLUMNS: tuple[tuple[str, str, int, bool], ...] = (
    ("symbol", "Symbol", 10, False),
    ("exch", "Exch", 4, False),
    ("last", "Last", 10, True),
    ("arrow", "", 1, False),
    ("chg", "Chg%", 7, True),
    ("dchg", "Chg", 8, True),
    ("open", "Open", 9, True),
    ("high", "High", 9, True),
    ("low", "Low", 9, True),
    ("close", "Close", 9, True),
    ("vol", "Vol", 6, True),
    ("left", "Left", 5, True),
    ("trend", "Trend", SPARK_WIDTH, False),
    ("dopen", "Day O", 9, True),
    ("dhigh", "Day H", 9, True),
    ("dlow", "Day L", 9, True),
    ("dvol", "Day Vol", 7, True),
    ("bid", "Bid", 9, True),
    ("bidq", "BidQ", 6, True),
    ("ask", "Ask", 9, True),
    ("askq", "AskQ", 6, True),
    ("oi", "OI", 7, True),
    ("oichg", "OI Chg", 7, True),
    ("ticks", "Ticks", 6, True),
    ("age", "Age", 5, True),
)
# Which columns a narrow terminal keeps, most important first: the symbol, its price and change,
# then the candle's O/H/L/C and volume, then the rest.
PRIORITY = ("symbol", "last", "chg", "open", "high", "low", "close", "vol", "arrow", "left",
            "exch", "dchg", "trend", "ticks", "bid", "ask", "oi", "oichg", "dhigh", "dlow",
            "dopen", "bidq", "askq", "dvol", "age")
# Shown only when some row has a value: full mode's book, and F&O's open interest.
OPTIONAL = {"bid": "bid", "bidq": "bid", "ask": "ask", "askq": "ask", "oi": "oi",
            "oichg": "oi"}
# The sort keys' columns, marked in the header.
SORT_COLUMN = {"symbol": "symbol", "chg": "chg", "volume": "dvol", "ticks": "ticks", "age": "age"}
_GAP = Segment(" ")
_NL = Segment.line()
_BY_KEY = {c[0]: c for c in COLUMNS}


def fit_columns(width: int, present: frozenset[str] | None = None
                ) -> list[tuple[str, str, int, bool]]:
    """The columns that fit in `width` cells (one-cell gaps), taken in order of importance and
    shown in display order. `present`: the optional columns that have data (default all)."""
    chosen: set[str] = set()
    used = -1
    for key in PRIORITY:
        if key in OPTIONAL and present is not None and OPTIONAL[key] not in present:
            continue
        w = _BY_KEY[key][2] + 1
        if used + w > width:
            if key == "arrow":
                continue
            break  # never a less important column in the room a more important one lacked
        chosen.add(key)
        used += w
    return [c for c in COLUMNS if c[0] in chosen]


def _present(rows: Sequence[InstrumentRow]) -> frozenset[str]:
    have = set()
    for r in rows:
        if r.bid is not None:
            have.add("bid")
        if r.ask is not None:
            have.add("ask")
        if r.oi is not None:
            have.add("oi")
    return frozenset(have)


def _signed(x: float | None) -> str:
    if x is None or x != x:
        return DASH
    return f"{x:+,.2f}"


def _signed_count(n: int | None) -> str:
    if n is None:
        return DASH
    return ("+" if n > 0 else "-" if n < 0 else "") + fmt_count(abs(n))


def _cells(row: InstrumentRow) -> dict[str, tuple[str, Style]]:
    c = row.candle
    price_style = S_NONE
    if row.flash and row.direction:
        price_style = S_FLASH_UP if row.direction > 0 else S_FLASH_DOWN
    # The arrow is the last tick's direction (up or down from the tick before it).
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
        "dchg": (_signed(row.day_change), _sign_style(row.day_change)),
        "open": (fmt_price(c.open) if c else DASH, S_NONE),
        "high": (fmt_price(c.high) if c else DASH, S_NONE),
        "low": (fmt_price(c.low) if c else DASH, S_NONE),
        "close": (fmt_price(c.close) if c else DASH, _sign_style(c.close - c.open) if c else S_NONE),
        "vol": (fmt_count(c.volume) if c else DASH, S_NONE),
        "left": (fmt_left(row.seconds_left), S_NONE),
        "trend": (sparkline(closes), trend_style),
        "dopen": (fmt_price(row.day_open), S_DIM),
        "dhigh": (fmt_price(row.day_high), S_DIM),
        "dlow": (fmt_price(row.day_low), S_DIM),
        "dvol": (fmt_count(row.day_volume), S_DIM),
        "bid": (fmt_price(row.bid), S_UP if row.bid is not None else S_NONE),
        "bidq": (fmt_count(row.bid_qty), S_DIM),
        "ask": (fmt_price(row.ask), S_DOWN if row.ask is not None else S_NONE),
        "askq": (fmt_count(row.ask_qty), S_DIM),
        "oi": (fmt_count(row.oi), S_NONE),
        "oichg": (_signed_count(row.oi_change), _sign_style(row.oi_change)),
        "ticks": (fmt_count(row.ticks), S_DIM),
        "age": (fmt_age(row.last_tick_age_s), S_DIM),
    }


_PLAIN_SPACE: dict[Style, bool] = {}


def _space_plain(style: Style) -> bool:
    """Whether a space drawn in `style` looks like one drawn in no style (no background,
    reverse or line through it), so a gap may join the cell beside it."""
    plain = _PLAIN_SPACE.get(style)
    if plain is None:
        plain = _PLAIN_SPACE[style] = not (
            style.bgcolor or style.reverse or style.underline or style.underline2
            or style.strike or style.overline or style.conceal or style.blink or style.link)
    return plain


def _row_segments(cells: dict[str, tuple[str, Style]], cols: Sequence[tuple[str, str, int, bool]],
                  selected: bool) -> list[Segment]:
    """One row's cells and the gaps between them, in as few segments as draw the same thing.

    rich measures every segment again on each of its passes (the panel, its padding, the
    screen), so rows of one segment per cell and per gap made up most of a frame's cost."""
    gap_style = S_SELECTED if selected else S_NONE
    out: list[Segment] = []
    text, style = "", gap_style
    for i, (key, _header, width, right) in enumerate(cols):
        t, st = cells[key]
        if selected:
            st = st + S_SELECTED
        piece = _fit(t, width, right)
        if i:
            if style == gap_style or (not selected and _space_plain(style)):
                text += " "  # the gap joins the run before it
            else:
                out.append(Segment(text, style))
                text, style = " ", gap_style
        if st == style:
            text += piece
        elif text == " " and style == gap_style and not selected and _space_plain(st):
            text, style = " " + piece, st  # a lone gap joins the cell after it
        else:
            if text:
                out.append(Segment(text, style))
            text, style = piece, st
    if text:
        out.append(Segment(text, style))
    return out


def _fit(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        return text[: width - 1] + "…" if not right else text[-width:]
    return text.rjust(width) if right else text.ljust(width)


class InstrumentTable:
    """The instruments as fixed-width styled lines, as many as fit the terminal.

    `max_rows` caps the rows explicitly; when None the cap is the terminal height less
    `reserved_lines` (the rest of the frame), read at draw time so a resize takes effect at once.
    With a `view` from the keys, the rows are a window of the sorted list that keeps the selected
    row in sight; the window's top is kept in `view.scroll` so it moves only when it must.
    """

    def __init__(
        self,
        rows: Sequence[InstrumentRow],
        empty_text: str,
        max_rows: int | None = None,
        reserved_lines: int = 0,
        total: int | None = None,
        view: ViewInfo | None = None,
    ) -> None:
        self.rows = rows
        self.total = max(total or 0, len(rows))
        self.empty_text = empty_text
        self.max_rows = max_rows
        self.reserved_lines = reserved_lines
        self.view = view if view is not None else ViewInfo()

    def visible_limit(self, terminal_height: int) -> int:
        if self.max_rows is not None:
            return max(1, self.max_rows)
        return max(MIN_VISIBLE_ROWS, terminal_height - self.reserved_lines)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(20, options.max_width)

    def window(self, limit: int) -> tuple[int, int]:
        """(first, count) of the rows to show, as indexes into the whole sorted list."""
        v = self.view
        total = self.total
        if not v.interactive:
            return 0, len(self.rows) if len(self.rows) <= limit else max(1, limit - 1)
        page = limit - 1 if total > limit else limit  # one line says where the window is
        page = max(1, page)
        scroll = v.scroll if isinstance(v.scroll, Scroll) else Scroll()
        top = scroll.top
        sel = v.selected if v.selected is not None else 0
        if sel < top:
            top = sel
        elif sel >= top + page:
            top = sel - page + 1
        top = max(0, min(top, max(0, total - page)))
        scroll.top, scroll.page = top, page
        return top, min(page, total - top)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        v = self.view
        cols = fit_columns(options.max_width, _present(self.rows))
        marked = SORT_COLUMN.get(v.sort or "")
        for i, (key, header, width, right) in enumerate(cols):
            if i:
                yield _GAP
            if key == marked:
                header = header + ("▲" if (v.sort in ("symbol", "age")) != v.reverse else "▼")
                yield Segment(_fit(header, width, right), S_SORTED)
            else:
                yield Segment(_fit(header, width, right), S_HEAD)
        yield _NL
        rows = self.rows
        if not rows:
            yield Segment(self.empty_text, S_WARN)
            yield _NL
            return
        limit = self.visible_limit(options.size.height)
        first, count = self.window(limit)
        off = v.row_offset
        selected = v.selected if v.interactive else None
        for k in range(first, first + count):
            if not 0 <= k - off < len(rows):
                continue
            yield from _row_segments(_cells(rows[k - off]), cols, k == selected)
            yield _NL
        hidden = self.total - count
        if hidden and not v.interactive:
            yield Segment(
                f"… {hidden} more instrument{'s' if hidden != 1 else ''} hidden "
                f"({count} of {self.total} shown; enlarge the terminal to see more)",
                S_DIM,
            )
            yield _NL
        elif hidden:
            below = self.total - first - count
            yield Segment(
                f"rows {first + 1}–{first + count} of {self.total}"
                + (f" · {first} above" if first else "") + (f" · {below} below" if below else "")
                + " · ↑↓ PgUp PgDn Home End",
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
            yield Segment(_fit(t.symbol, 11, False), S_SYMBOL)
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


def compact_connection_lines(snap: DashboardSnapshot) -> list[Text]:
    """The connection in three short lines, for terminals too short for the full panel."""
    c = snap.connection
    lines = []
    t = Text()
    t.append(c.source, S_BADGE.get(c.source, S_HEAD))
    t.append(f" {c.mode} ")
    t.append(c.state, S_STATE.get(c.state, S_HEAD))
    lines.append(t)
    t = Text()
    age = fmt_age(c.last_message_age_s)
    _kv(t, "msg", age if age == DASH else f"{age} ago")
    t.append("  ")
    _kv(t, "ticks/s", f"{c.ticks_per_s:.0f}")
    t.append("  ")
    _kv(t, "reconn", str(c.reconnects), S_WARN if c.reconnects else S_NONE)
    lines.append(t)
    t = Text()
    if c.last_error:
        _kv(t, "error", c.last_error, S_ERROR)
    else:
        _kv(t, "stored", f"{c.candles_stored:,}")
        t.append("  ")
        odd = c.late_ticks + c.bad_ticks + c.future_ticks
        _kv(t, "late/bad/future", f"{c.late_ticks}/{c.bad_ticks}/{c.future_ticks}",
            S_WARN if odd else S_NONE)
    lines.append(t)
    for line in lines:
        line.no_wrap = True
        line.overflow = "ellipsis"
    return lines


SHORT_TERMINAL = 32  # below this many lines the bottom panels shrink to give rows the room
SHORT_TICK_LINES = 3


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
    v = snap.view
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f" {c.source} ", S_BADGE.get(c.source, S_HEAD))
    t.append(" ")
    t.append(snap.title, S_HEAD)
    t.append(f"  {snap.interval_name} candles  ", S_DIM)
    t.append(fmt_clock(snap.now, with_date=True) + " IST")
    t.append("  ● ", S_STATE.get(c.state, S_HEAD))
    t.append(c.state, S_STATE.get(c.state, S_HEAD))
    if v.paused:
        t.append("  ⏸ PAUSED", S_WARN)
    if v.filter:
        t.append(f"  filter “{v.filter}”", S_WARN)
    return t


# (keys, what they do): the footer shows those that work on the screen at hand.
TABLE_KEYS = (("q", "quit"), ("?", "help"), ("↑↓", "move"), ("⏎", "chart"), ("s", "sort"),
              ("r", "rev"), ("/", "filter"), ("i", "intvl"), ("a", "add"), ("d", "del"),
              ("p", "pause"))
SYMBOL_KEYS = (("Esc", "back"), ("↑↓", "symbol"), ("i", "intvl"), ("1-7", "1m…60m"),
               ("d", "del"), ("p", "pause"), ("?", "help"), ("q", "quit"))
PROMPT_KEYS = (("⏎", "done"), ("Esc", "cancel"), ("⌫", "delete"))
HELP_LINES = (
    ("q  Ctrl-C", "quit (the store keeps every candle)"),
    ("?", "this help (any key closes it)"),
    ("↑ ↓  j k", "move the selection"),
    ("PgUp PgDn  Home End", "a page up or down, the first or last row"),
    ("s  r", "sort by symbol, chg%, volume, ticks, last-tick age; reverse it"),
    ("/", "filter by text (symbol, exchange); Esc clears it"),
    ("i", "the next interval built"),
    ("1 … 7", "1, 3, 5, 10, 15, 30, 60 min (added to the session if not built)"),
    ("p", "pause redraws (the session keeps building candles)"),
    ("Enter", "the selected symbol: candlestick chart, depth, day, its ticks"),
    ("Esc", "back to the table"),
    ("a", "add symbols to the running session (RELIANCE, NSE:INFY, @watchlist)"),
    ("d", "remove the selected symbol"),
    ("▲ ▼", "beside Last: the last tick's direction (against the tick before)"),
)


def footer_line(snap: DashboardSnapshot) -> Text:
    """The keys that work now, or the line being typed."""
    v = snap.view
    t = Text(no_wrap=True, overflow="ellipsis")
    if v.prompt is not None:
        label = "filter: " if v.prompt == "filter" else "add symbol: "
        t.append(label, S_HEAD)
        t.append(v.buffer)
        t.append("█", S_DIM)
        t.append("   ")
        keys: tuple[tuple[str, str], ...] = PROMPT_KEYS
    else:
        keys = SYMBOL_KEYS if snap.symbol_view is not None else TABLE_KEYS
    for i, (k, what) in enumerate(keys):
        if i:
            t.append("  ")
        t.append(k, S_KEY)
        t.append(f" {what}", S_DIM)
    return t


def help_panel(snap: DashboardSnapshot) -> Panel:
    g = Table.grid(padding=(0, 2))
    g.add_column(style=S_HEAD, no_wrap=True)
    g.add_column()
    for k, what in HELP_LINES:
        g.add_row(k, what)
    built = ", ".join(snap.view.intervals)
    g.add_row("", Text(f"built now: {built}", style=S_DIM))
    return Panel(g, title="Keys", title_align="left", border_style=S_DIM, padding=(0, 1))


def render(snapshot: DashboardSnapshot, *, max_rows: int | None = None,
           height: int | None = None) -> Group:
    """One frame: header, status line, instruments, latest ticks beside the connection; with
    keys, a footer; the help or a symbol's own view instead of the table when asked for.

    `max_rows` caps the instrument rows; by default they are capped to the terminal height.
    `height`: the terminal's; a short one gets short bottom panels, so more rows fit.
    """
    snap = snapshot
    v = snap.view
    top: list[Text] = [header_line(snap)]
    msg = status_message(snap)
    if msg:
        top.append(Text(msg, style=S_STATE.get(snap.connection.state, S_WARN), no_wrap=True, overflow="ellipsis"))
    warn = receive_time_warning(snap)
    if warn:
        top.append(Text(warn, style=S_WARN, no_wrap=True, overflow="ellipsis"))
    footer = [footer_line(snap)] if v.interactive else []
    if v.help:
        return Group(*top, help_panel(snap), *footer)
    if snap.symbol_view is not None:
        from livecli.dashboard.symbol import SymbolScreen

        return Group(*top, SymbolScreen(snap.symbol_view, snap.interval_name,
                                        reserved_lines=len(top) + len(footer)), *footer)

    short = height is not None and height < SHORT_TERMINAL
    ticks = TicksList(snap.recent_ticks, SHORT_TICK_LINES if short else MAX_TICK_LINES)
    conn = compact_connection_lines(snap) if short else connection_lines(snap)
    bottom_height = 2 + max(ticks.line_count(), len(conn))
    # Header lines + instruments panel borders and column header + bottom panels + footer.
    reserved = len(top) + 3 + bottom_height + len(footer)

    n = max(snap.total_rows or 0, len(snap.rows))
    table = InstrumentTable(snap.rows, msg or "no instruments", max_rows=max_rows,
                            reserved_lines=reserved, total=n, view=v)
    sort = ""
    if v.sort is not None and v.interactive:
        sort = f" · sorted by {v.sort}" + (" (reversed)" if v.reverse else "")
    instruments = Panel(
        table,
        title=f"Instruments · {snap.interval_name}" + (f" · {n}" if n else "") + sort,
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
    return Group(*top, instruments, bottom, *footer)
