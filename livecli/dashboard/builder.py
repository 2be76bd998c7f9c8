"""What the dashboard shows of a running session, read through the session's typed read API.

Built on the dashboard's thread at its refresh rate, never on the receiving path. The session
(a local `LiveSession`, or one attached to `livecli serve`: anything of the shape
`livecli.session.readable.ReadableSession`) gives typed views (`latest_ticks`, `recent_ticks`,
`forming_candles`, `live_status`); this module only turns them into the rows of a
`DashboardSnapshot` and remembers the last prices, so a price that moved flashes for a moment.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from livecli.dashboard.snapshot import ConnectionPanel, DashboardSnapshot, InstrumentRow, TickLine

if TYPE_CHECKING:
    from livecli.core.intervals import Interval
    from livecli.core.status import LiveStatus
    from livecli.session.readable import ReadableSession

SPARK_CLOSES = 24
MAX_ROWS = 150  # more than any terminal shows; the renderer says how many are hidden
FLASH_S = 0.6
RECENT_LINES = 12


class SnapshotBuilder:
    """Makes `DashboardSnapshot`s of `session` for one interval; remembers prices for flashes."""

    def __init__(self, session: ReadableSession, interval: Interval, title: str = "livecli") -> None:
        self.session = session
        self.interval = interval
        self.title = title
        self._last_price: dict[int, float] = {}
        self._moved_at: dict[int, tuple[float, int]] = {}
        self.message: str | None = None

    def __call__(self) -> DashboardSnapshot:
        s = self.session
        now = time.time()
        st = s.live_status(symbols=False)  # the rows come from the read API
        instruments = list(s.instruments.items())
        shown = instruments[:MAX_ROWS]
        tokens = [tok for tok, _ in shown]
        latest = s.latest_ticks(tokens)
        candles = s.forming_candles(tokens, self.interval, SPARK_CLOSES)
        rows: list[InstrumentRow] = []
        for tok, inst in shown:
            row = InstrumentRow(inst.tradingsymbol, inst.exchange, tok)
            tick = latest.get(tok)
            if tick is not None:
                price = tick.last_price
                row.last_price = price
                row.prev_close = tick.prev_close
                row.change_pct = tick.change_pct
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
            forming = candles.get(tok)
            if forming is not None:
                c = forming.candle
                row.candle = c
                row.closes = [*forming.closes, *([c.close] if c is not None else [])]
                row.seconds_left = forming.seconds_left
            rows.append(row)
        recent = [TickLine(t.time, t.symbol, t.last_price, t.volume_traded)
                  for t in s.recent_ticks(RECENT_LINES)]
        return DashboardSnapshot(self.title, self.interval.name, s.now(), connection_panel(st),
                                 rows, recent, self.message, total_rows=len(instruments))


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
