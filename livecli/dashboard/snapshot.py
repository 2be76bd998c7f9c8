"""What the dashboard shows, as plain data: the contract between the session and the renderer.

The session owns the live state and the threads that change it; the dashboard only draws. So the
session fills a `DashboardSnapshot` when asked (from the dashboard's thread, at a bounded rate)
and the renderer turns it into a frame. Keeping this module free of rich lets the session build
snapshots without importing the drawing code, and lets tests build frames from literal data.

All times are epoch seconds; the renderer shows them in IST whatever the host's zone is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from livecli.core.candles import Candle

SOURCES = ("KITE", "SIMULATED")
STATES = ("connecting", "connected", "stale", "reconnecting", "auth_failed", "closed", "stopped")
TIME_SOURCES = ("exchange", "receive")


@dataclass(slots=True)
class InstrumentRow:
    """One instrument's line: its price, the forming candle of the chosen interval, its trend.

    `direction` is the sign of the last price move (+1, -1, 0) and `flash` says the price changed
    within the flash window; together they colour the price cell green or red.
    """

    symbol: str
    exchange: str
    instrument_token: int
    last_price: float | None = None
    prev_close: float | None = None
    change_pct: float | None = None
    candle: Candle | None = None
    seconds_left: float | None = None
    closes: list[float] = field(default_factory=list)
    ticks: int = 0
    last_tick_age_s: float | None = None
    direction: int = 0
    flash: bool = False
    # The day as the feed tells it (quote and full modes), and full mode's best bid and ask.
    day_change: float | None = None  # points from the previous close
    day_open: float | None = None
    day_high: float | None = None
    day_low: float | None = None
    day_volume: int | None = None
    bid: float | None = None
    bid_qty: int | None = None
    ask: float | None = None
    ask_qty: int | None = None
    oi: int | None = None
    oi_change: int | None = None  # since the dashboard first saw this instrument's OI


@dataclass(slots=True)
class TickLine:
    """One recent tick for the latest-ticks panel."""

    time: float
    symbol: str
    last_price: float
    volume_traded: int | None = None
    change_pct: float | None = None


@dataclass(slots=True)
class ViewInfo:
    """What the person chose, as the frame shows it: footer, sort mark, selection, prompt."""

    sort: str | None = None
    reverse: bool = False
    filter: str = ""
    selected: int | None = None  # index of the selected row in the whole (sorted) list
    row_offset: int = 0  # index of `rows[0]` in that list (rows are a window of it)
    paused: bool = False
    help: bool = False
    prompt: str | None = None
    buffer: str = ""
    intervals: tuple[str, ...] = ()
    interactive: bool = False  # keys are read: show the footer and the selection
    scroll: object | None = None  # state.Scroll: the renderer records its window there


@dataclass(slots=True)
class SymbolView:
    """One instrument's screen: its candles (oldest first, the forming one last), its day, its
    book and its newest ticks."""

    symbol: str
    exchange: str
    instrument_token: int
    tick_size: float
    candles: list[Candle] = field(default_factory=list)
    last_price: float | None = None
    prev_close: float | None = None
    change: float | None = None
    change_pct: float | None = None
    day_open: float | None = None
    day_high: float | None = None
    day_low: float | None = None
    day_volume: int | None = None
    oi: int | None = None
    oi_change: int | None = None
    bids: list[tuple[float, int, int]] = field(default_factory=list)  # price, quantity, orders
    asks: list[tuple[float, int, int]] = field(default_factory=list)
    ticks: list[TickLine] = field(default_factory=list)
    mode: str = "full"


@dataclass(slots=True)
class ConnectionPanel:
    """The feed's health. `state` is one of STATES; `time_source` "receive" means candles are
    timed by arrival (ltp/quote modes carry no exchange timestamp) and is shown as a warning."""

    source: str
    state: str = "connecting"
    detail: str | None = None
    last_message_age_s: float | None = None
    ticks_per_s: float = 0.0
    reconnects: int = 0
    last_error: str | None = None
    candles_stored: int = 0
    late_ticks: int = 0
    bad_ticks: int = 0
    time_source: str = "exchange"
    mode: str = "full"
    db_path: str | None = None
    future_ticks: int = 0  # stamped too far ahead of the clock: counted, never candled
    # Kite's history (warm start, gap repair): state as in LiveStatus.history_state, progress
    # as instruments done of total, minutes put in from history and repaired after disconnects.
    history_state: str = "off"
    history_done: int = 0
    history_total: int = 0
    history_minutes: int = 0
    history_repaired: int = 0


@dataclass(slots=True)
class DashboardSnapshot:
    """One frame's worth of state.

    `recent_ticks` is in arrival order (oldest first); the panel shows the newest on top.
    `message` is the status line ("connecting…", "waiting for the first tick",
    "reconnecting in 3 s", "stopped: <why>"); when None the renderer derives one from the
    connection state, so the screen never sits empty.
    """

    title: str
    interval_name: str
    now: float
    connection: ConnectionPanel
    rows: list[InstrumentRow] = field(default_factory=list)
    recent_ticks: list[TickLine] = field(default_factory=list)
    message: str | None = None
    # How many instruments the session has, when `rows` holds only the first of them (a terminal
    # shows a few dozen; building rows for thousands would cost every frame for nothing).
    total_rows: int | None = None
    view: ViewInfo = field(default_factory=ViewInfo)
    symbol_view: SymbolView | None = None  # set while a symbol's own screen is shown


def status_message(snap: DashboardSnapshot) -> str | None:
    """The status line to show: the snapshot's own message, else one implied by its state.

    Returns None only when the feed is connected and data is flowing, i.e. when the table itself
    is the news.
    """
    if snap.message:
        return snap.message
    conn = snap.connection
    state = conn.state
    if state == "connecting":
        return "connecting…"
    if state == "reconnecting":
        return conn.detail or "reconnecting…"
    if state == "auth_failed":
        return f"authentication failed: {conn.last_error}" if conn.last_error else "authentication failed"
    if state in ("closed", "stopped"):
        why = conn.detail or conn.last_error
        return f"stopped: {why}" if why else "stopped"
    if state == "stale":
        age = conn.last_message_age_s
        return f"no data for {age:.0f} s" if age is not None else "no data from the feed"
    if not snap.rows or all(r.last_price is None for r in snap.rows):
        return "waiting for the first tick"
    return None
