"""The session's read API as typed data: latest ticks, recent ticks, forming candles.

What the dashboard, `status` and strategy code may read of a running session. The receiving path
keeps only cheap references (the decoded frame and row of each instrument's latest tick); these
types are made from them on the reader's thread, when asked, so nothing outside the session ever
handles a decoded frame or the candle engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livecli.core.timeutil import iso

if TYPE_CHECKING:
    from livecli.core.candles import Candle
    from livecli.core.ticks import Tick


@dataclass(frozen=True, slots=True)
class LatestTick:
    """An instrument's newest tick, with how many it had and when the last one came."""

    instrument_token: int
    last_price: float
    prev_close: float | None  # the previous session's close (quote and full packets only)
    ticks: int
    received_at: float  # wall clock, epoch seconds
    # What quote and full packets carry besides (None in ltp mode, or where a packet has none).
    volume_traded: int | None = None
    day_open: float | None = None
    day_high: float | None = None
    day_low: float | None = None
    oi: int | None = None
    bid: float | None = None  # best bid and ask with their quantities (full mode only)
    bid_qty: int | None = None
    ask: float | None = None
    ask_qty: int | None = None

    @property
    def change_pct(self) -> float | None:
        c = self.prev_close
        return None if not c else (self.last_price - c) * 100.0 / c

    @property
    def change(self) -> float | None:
        """The day's change in points, from the previous close."""
        c = self.prev_close
        return None if not c else self.last_price - c


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One level of the order book."""

    price: float
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class Depth:
    """An instrument's 5-level market depth from its newest full packet, best first."""

    instrument_token: int
    bids: tuple[DepthLevel, ...]
    asks: tuple[DepthLevel, ...]


@dataclass(frozen=True, slots=True)
class RecentTick:
    """One of the newest ticks of the whole session, in arrival order."""

    time: float  # the tick's own time (exchange time, or receive time in ltp/quote mode)
    instrument_token: int
    symbol: str
    last_price: float
    volume_traded: int | None
    change_pct: float | None = None  # from the instrument's previous close, where it is known


@dataclass(frozen=True, slots=True)
class FormingCandle:
    """An instrument's forming candle of one interval, its recent closes, and time left.

    `seconds_left` is by the feed's clock, to the candle's end or the session close, whichever
    comes first (the day's last candle is cut there, CANDLES.md rule 2).
    """

    instrument_token: int
    candle: Candle | None
    closes: tuple[float, ...]
    seconds_left: float | None


def tick_dict(tick: Tick, symbol: str, exchange: str) -> dict[str, Any]:
    """A tick as strategy callbacks and `get_latest_tick` get it."""
    t = tick
    return {
        "symbol": symbol,
        "exchange": exchange,
        "instrument_token": t.instrument_token,
        "last_price": t.last_price,
        "volume_traded": t.volume_traded,
        "oi": t.oi,
        "day_high": t.day_high,
        "day_low": t.day_low,
        "day_open": t.day_open,
        "prev_close": t.prev_close,
        "change_pct": t.change_pct,
        "exchange_timestamp": iso(t.exchange_timestamp) if t.exchange_timestamp else None,
        "time": iso(t.time),
        "mode": t.mode,
    }
