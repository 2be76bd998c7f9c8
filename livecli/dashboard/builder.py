"""What the dashboard shows of a running session, read through the session's typed read API.

Built on the dashboard's thread at its refresh rate, never on the receiving path. The session
(a local `LiveSession`, or one attached to `livecli serve`: anything of the shape
`livecli.session.readable.ReadableSession`) gives typed views (`instruments`, `latest_ticks`,
`recent_ticks`, `forming_candles`, `candles`, `depth`, `live_status`); this module only turns them into the rows of a `DashboardSnapshot`,
in the order and with the filter the `ViewState` asks for, and remembers the last prices (a price
that moved flashes for a moment), the first OI seen (OI change) and a symbol's newest ticks.

Rows are a window of the whole sorted list around the selection (a terminal shows a few dozen;
building rows for thousands would cost every frame for nothing); the sort keys come from the
latest ticks alone, which are cheap to read for every instrument.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from livecli.dashboard.snapshot import (
    ConnectionPanel,
    DashboardSnapshot,
    InstrumentRow,
    SymbolView,
    TickLine,
    ViewInfo,
)
from livecli.dashboard.state import SYMBOL, ViewState

if TYPE_CHECKING:
    from livecli.core.intervals import Interval
    from livecli.core.status import LiveStatus
    from livecli.session.readable import InstrumentName, ReadableSession
    from livecli.session.view import FormingCandle, LatestTick

SPARK_CLOSES = 24
MAX_ROWS = 150  # rows built per frame at most: more than any terminal shows
FLASH_S = 0.6
RECENT_LINES = 12
CHART_CANDLES = 120  # the symbol view shows as many of these as its width has room for
SYMBOL_TICKS = 40  # the newest ticks kept for the symbol view


class SnapshotBuilder:
    """Makes `DashboardSnapshot`s of `session` as `state` says; remembers prices for flashes."""

    def __init__(self, session: ReadableSession, interval: Interval, title: str = "livecli",
                 state: ViewState | None = None) -> None:
        self.session = session
        self.state = state if state is not None else ViewState(interval)
        self.title = title
        self.interactive = False  # set when keys are read: footer and selection are drawn
        self._last_price: dict[int, float] = {}
        self._moved_at: dict[int, tuple[float, int]] = {}
        self._first_oi: dict[int, int] = {}
        self._sym_ticks: deque[TickLine] = deque(maxlen=SYMBOL_TICKS)
        self._sym_token: int | None = None
        self._sym_seen: tuple[float, float] | None = None
        self._last: DashboardSnapshot | None = None
        self._last_shape: tuple[object, ...] = ()
        self.order: list[int] = []  # the rows' tokens in their shown order (for the keys)
        self.message: str | None = None
        # The terminal's height, when the runner knows it: then only the rows that can come
        # into view are built (each costs its latest tick, candle and spark line, and the
        # renderer shows a page of them at most, within a page of the selected one).
        self.terminal_lines: Callable[[], int] | None = None

    @property
    def interval(self) -> Interval:
        return self.state.interval

    @interval.setter
    def interval(self, iv: Interval) -> None:
        self.state.interval = iv

    def symbol_of(self, token: int) -> str | None:
        inst = self.session.instruments.get(token)
        return None if inst is None else f"{inst.exchange}:{inst.tradingsymbol}"

    def __call__(self) -> DashboardSnapshot:
        st = self.state
        with st.lock:
            v = dataclasses.replace(st, lock=st.lock)  # one consistent copy of the choices
        # Paused, the numbers stay as they were; a change of what is shown (sort, filter,
        # interval, screen, selection) is still drawn, from the data as it is then.
        shape = (v.sort, v.reverse, v.filter, v.interval, v.screen, v.selected)
        if v.paused and self._last is not None and shape == self._last_shape:
            return dataclasses.replace(self._last, view=self._view_info(v, self._last.view),
                                       message=v.message or self.message)
        snap = self._build(v)
        self._last, self._last_shape = snap, shape
        return snap

    def _build(self, v: ViewState) -> DashboardSnapshot:
        s = self.session
        now = time.time()
        st = s.live_status(symbols=False)  # the rows come from the read API
        known = s.instruments
        # A C-level copy where the mapping has one (a live session's is a read-only view of a
        # dict): dict() of a view of 9000 goes key by key, 2 ms a frame.
        instruments = known.copy() if isinstance(known, MappingProxyType | dict) else dict(known)
        tokens = list(instruments)
        if v.filter:
            f = v.filter.lower()
            tokens = [t for t in tokens if f in instruments[t].tradingsymbol.lower()
                      or f in instruments[t].exchange.lower()
                      or f in (instruments[t].name or "").lower()]
        span = self._span()
        latest = s.latest_ticks(tokens) if v.sort not in (None, "symbol") \
            or len(tokens) <= span else None
        order = sort_tokens(tokens, v.sort, v.reverse, instruments, latest, now)
        self.order = order
        sel = order.index(v.selected) if v.selected in order else 0 if order else None
        start = 0
        if sel is not None and len(order) > span:
            start = max(0, min(sel - span // 2, len(order) - span))
        window = order[start:start + span]
        if latest is None:
            latest = s.latest_ticks(window)
        candles = s.forming_candles(window, v.interval, SPARK_CLOSES)
        rows = [self._row(tok, instruments[tok], latest.get(tok), candles.get(tok), now)
                for tok in window]
        recent = [TickLine(t.time, t.symbol, t.last_price, t.volume_traded, t.change_pct)
                  for t in s.recent_ticks(RECENT_LINES if v.screen != SYMBOL else 40)]
        info = ViewInfo(sort=v.sort, reverse=v.reverse, filter=v.filter, selected=sel,
                        row_offset=start)
        info = self._view_info(v, info)
        symbol_view = None
        if v.screen == SYMBOL and sel is not None:
            tok = order[sel]
            symbol_view = self._symbol_view(tok, instruments[tok], latest.get(tok), v.interval,
                                            recent, st.mode)
        message: str | None
        if v.filter and not order:
            message = v.message or f"no symbol matches “{v.filter}” (Esc clears the filter)"
        else:
            message = v.message or self.message
        return DashboardSnapshot(self.title, v.interval.name, s.now(), connection_panel(st),
                                 rows, recent[-RECENT_LINES:], message,
                                 total_rows=len(order), view=info, symbol_view=symbol_view)

    def _span(self) -> int:
        """How many rows to build: MAX_ROWS, or twice the terminal's height when known (the
        shown page lies within a page of the selected row either side)."""
        lines = self.terminal_lines
        return MAX_ROWS if lines is None else max(2, min(MAX_ROWS, 2 * lines()))

    def _view_info(self, v: ViewState, base: ViewInfo) -> ViewInfo:
        return dataclasses.replace(
            base, paused=v.paused, help=v.help, prompt=v.prompt, buffer=v.buffer,
            intervals=tuple(i.name for i in self.session.intervals),
            interactive=self.interactive, scroll=v.scroll)

    def _row(self, tok: int, inst: InstrumentName, tick: LatestTick | None,
             forming: FormingCandle | None, now: float) -> InstrumentRow:
        row = InstrumentRow(inst.tradingsymbol, inst.exchange, tok)
        if tick is not None:
            price = tick.last_price
            row.last_price = price
            row.prev_close = tick.prev_close
            row.change_pct = tick.change_pct
            row.day_change = tick.change
            prev = self._last_price.get(tok)
            if prev is not None and price != prev:
                self._moved_at[tok] = (now, 1 if price > prev else -1)
            self._last_price[tok] = price
            moved = self._moved_at.get(tok)
            if moved is not None:
                row.direction = moved[1]
                row.flash = now - moved[0] < FLASH_S
            row.ticks = tick.ticks
            row.last_tick_age_s = now - tick.received_at
            row.day_open, row.day_high, row.day_low = tick.day_open, tick.day_high, tick.day_low
            row.day_volume = tick.volume_traded
            row.bid, row.bid_qty, row.ask, row.ask_qty = tick.bid, tick.bid_qty, tick.ask, tick.ask_qty
            if tick.oi is not None:
                row.oi = tick.oi
                first = self._first_oi.setdefault(tok, tick.oi)
                row.oi_change = tick.oi - first
        if forming is not None:
            c = forming.candle
            row.candle = c
            row.closes = [*forming.closes, *([c.close] if c is not None else [])]
            row.seconds_left = forming.seconds_left
        return row

    def _symbol_view(self, tok: int, inst: InstrumentName, tick: LatestTick | None,
                     interval: Interval, recent: list[TickLine], mode: str) -> SymbolView:
        s = self.session
        symbol = inst.tradingsymbol
        if tok != self._sym_token:
            self._sym_token, self._sym_seen = tok, None
            self._sym_ticks.clear()
        # The session keeps only the newest ticks of all instruments: gather this symbol's as
        # frames go by, so its panel fills up even when other symbols tick more.
        seen = self._sym_seen
        for t in recent:
            if t.symbol == symbol and (seen is None or (t.time, t.last_price) > seen):
                self._sym_ticks.append(t)
                seen = (t.time, t.last_price)
        self._sym_seen = seen
        tick_size = float(inst.tick_size or 0.05)
        view = SymbolView(symbol, inst.exchange, tok, tick_size,
                          candles=s.candles(tok, interval, CHART_CANDLES),
                          ticks=list(self._sym_ticks), mode=mode)
        if tick is not None:
            view.last_price, view.prev_close = tick.last_price, tick.prev_close
            view.change, view.change_pct = tick.change, tick.change_pct
            view.day_open, view.day_high, view.day_low = tick.day_open, tick.day_high, tick.day_low
            view.day_volume, view.oi = tick.volume_traded, tick.oi
            if tick.oi is not None and tok in self._first_oi:
                view.oi_change = tick.oi - self._first_oi[tok]
        depth = s.depth(tok)
        if depth is not None:
            view.bids = [(d.price, d.quantity, d.orders) for d in depth.bids]
            view.asks = [(d.price, d.quantity, d.orders) for d in depth.asks]
        return view


def sort_tokens(tokens: list[int], sort: str | None, reverse: bool, instruments: Mapping[int, Any],
                latest: dict[int, LatestTick] | None, now: float) -> list[int]:
    """`tokens` in the order of `sort`: symbol A-Z; chg%, volume and ticks largest first; age
    freshest first; None keeps the given order. `reverse` flips it; instruments without a value
    stay last either way, and ties keep the given order."""
    if sort is None:
        return list(reversed(tokens)) if reverse else list(tokens)
    if sort == "symbol":
        return sorted(tokens, key=lambda t: instruments[t].tradingsymbol, reverse=reverse)
    latest = latest or {}

    def value(t: int) -> float | None:
        tick = latest.get(t)
        if tick is None:
            return None
        if sort == "chg":
            return tick.change_pct
        if sort == "volume":
            return None if tick.volume_traded is None else float(tick.volume_traded)
        if sort == "ticks":
            return float(tick.ticks)
        return now - tick.received_at  # age

    descending = sort != "age"
    known = [(v, t) for t in tokens if (v := value(t)) is not None and not math.isnan(v)]
    have = {t for _, t in known}
    missing = [t for t in tokens if t not in have]
    flip = descending != reverse
    ordered = sorted(known, key=lambda vt: -vt[0] if flip else vt[0])
    return [t for _, t in ordered] + missing


def connection_panel(st: LiveStatus) -> ConnectionPanel:
    """The connection panel of a status."""
    return ConnectionPanel(
        source=st.source or "?",
        state=st.state if st.state != "idle" else "connecting",
        detail=_detail(st),
        last_message_age_s=st.last_message_age_s,
        ticks_per_s=st.ticks_per_s,
        reconnects=st.reconnects,
        last_error=st.last_error or st.store_error,
        candles_stored=st.candles_stored,
        late_ticks=st.late_ticks,
        bad_ticks=st.bad_ticks,
        time_source="exchange" if st.mode == "full" else "receive",
        mode=st.mode,
        db_path=st.db,
        future_ticks=st.future_ticks,
        history_state=st.history_state,
        history_done=st.history_done,
        history_total=st.history_total,
        history_minutes=st.history_minutes,
        history_repaired=st.history_repaired,
    )


def _detail(st: LiveStatus) -> str | None:
    if st.state == "reconnecting" and st.retry_in_s is not None:
        return f"reconnecting in {st.retry_in_s:.0f} s (reconnect {st.reconnects})"
    return None
