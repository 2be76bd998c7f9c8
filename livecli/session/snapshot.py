"""What the dashboard shows of a running session, read in one consistent view.

Built on the dashboard's thread at its refresh rate, never on the receiving path: the session
keeps only cheap references (the frame and row of each instrument's latest tick) and this module
turns them into rows when a frame is drawn.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from livecli.core.timeutil import day_start, ist_day
from livecli.dashboard.snapshot import ConnectionPanel, DashboardSnapshot, InstrumentRow, TickLine

if TYPE_CHECKING:
    from livecli.core.intervals import Interval
    from livecli.session.live import LiveSession

SPARK_CLOSES = 24
MAX_ROWS = 150  # more than any terminal shows; the renderer says how many are hidden
FLASH_S = 0.6


class SnapshotBuilder:
    """Makes `DashboardSnapshot`s of `session` for one interval; remembers prices for flashes."""

    def __init__(self, session: LiveSession, interval: Interval, title: str = "livecli") -> None:
        self.session = session
        self.interval = interval
        self.title = title
        self._last_price: dict[int, float] = {}
        self._moved_at: dict[int, tuple[float, int]] = {}
        self.message: str | None = None

    def __call__(self) -> DashboardSnapshot:
        s = self.session
        now = time.time()
        view = s.view()
        st = view["status"]
        engine = s.engine
        rows: list[InstrumentRow] = []
        instruments = list(s.instruments.items())
        shown = instruments[:MAX_ROWS]
        clock, candles = s.forming_with_closes([tok for tok, _ in shown], self.interval,
                                               SPARK_CLOSES)
        for tok, inst in shown:
            hit = view["latest"].get(tok)
            row = InstrumentRow(inst.tradingsymbol, inst.exchange, tok)
            if hit is not None:
                frame, i = hit
                price = float(frame.last_price[i])
                close = frame.column("close")[i] if frame.kind[i] != 0 else float("nan")
                row.last_price = price
                if close == close and close > 0:
                    row.prev_close = float(close)
                    row.change_pct = (price - close) * 100.0 / close
                prev = self._last_price.get(tok)
                if prev is not None and price != prev:
                    self._moved_at[tok] = (now, 1 if price > prev else -1)
                self._last_price[tok] = price
                moved = self._moved_at.get(tok)
                if moved is not None:
                    row.direction = moved[1]
                    row.flash = now - moved[0] < FLASH_S
            if tok in candles:
                candle, closes = candles[tok]
                row.candle = candle
                row.closes = closes + ([candle.close] if candle is not None else [])
                if candle is not None and clock > 0:
                    # The day's last candle is cut at the session close (CANDLES.md rule 2).
                    close = day_start(ist_day(candle.start)) + engine.session_of(tok).close_s
                    row.seconds_left = max(0.0, min(candle.end, close) - clock)
            row.ticks = view["counts"].get(tok, 0)
            seen = view["seen"].get(tok)
            row.last_tick_age_s = now - seen if seen else None
            rows.append(row)
        recent = []
        for t, tok, price, vol in view["recent"][-12:]:
            inst = s.instruments.get(tok)
            recent.append(TickLine(t, inst.tradingsymbol if inst else str(tok), price, vol))
        conn = ConnectionPanel(
            source=st["source"] or "?",
            state=st["state"] if st["state"] != "idle" else "connecting",
            detail=_detail(st),
            last_message_age_s=st["last_message_age_s"],
            ticks_per_s=st["ticks_per_s"],
            reconnects=st["reconnects"],
            last_error=st["last_error"] or st.get("store_error"),
            candles_stored=st["candles_stored"],
            late_ticks=st["late_ticks"],
            bad_ticks=st["bad_ticks"],
            time_source="exchange" if s.mode == "full" else "receive",
            mode=s.mode,
            db_path=st["db"],
        )
        # A simulated market runs on its own clock: show the market's time, not the wall's.
        shown_now = now
        if st["source"] == "SIMULATED" and clock > 0:
            shown_now = clock
        return DashboardSnapshot(self.title, self.interval.name, shown_now, conn, rows, recent,
                                 self.message, total_rows=len(instruments))


def _detail(st: dict) -> str | None:
    if st["state"] == "reconnecting" and st.get("retry_in_s") is not None:
        return f"reconnecting in {st['retry_in_s']:.0f} s (reconnect {st['reconnects']})"
    return None
