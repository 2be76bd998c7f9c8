"""A candle, as CANDLES.md defines its fields.

Candles carry their start as epoch seconds; `to_dict()` gives the wire/export form with the start
in ISO 8601 +05:30. Symbol and exchange are filled from the instrument registry the engine was
given (the token's segment where nothing was registered).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livecli.core.timeutil import iso

CANDLE_COLUMNS = (
    "symbol", "instrument_token", "exchange", "interval", "start",
    "open", "high", "low", "close", "volume", "oi", "ticks", "partial", "synthetic",
)
# A candle's dict (`to_dict`), a DataFrame of candles, and an export, in this order.
CANDLE_FIELDS = (*CANDLE_COLUMNS, "closed", "origin")

# Where a candle's minutes came from. LIVE: built here from ticks. HISTORY: Kite's historical
# API, fetched at start for the minutes before the session (warm start). REPAIRED: the same API,
# for minutes a disconnect cost the session (gap repair). A longer candle takes the "least live"
# origin of its minutes (repaired over history over live), so one repaired minute shows.
LIVE = "live"
HISTORY = "history"
REPAIRED = "repaired"
ORIGINS = (LIVE, HISTORY, REPAIRED)  # index = the code held in arrays and the store's flags
ORIGIN_CODE = {o: i for i, o in enumerate(ORIGINS)}


@dataclass(slots=True)
class Candle:
    """One OHLCV candle. `oi` is None for instruments without open interest."""

    instrument_token: int
    interval_min: int
    start: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int | None
    ticks: int
    partial: bool = False
    synthetic: bool = False
    closed: bool = False
    symbol: str = ""
    exchange: str = ""
    origin: str = LIVE  # LIVE, HISTORY or REPAIRED (see ORIGINS)

    @property
    def interval(self) -> str:
        return f"{self.interval_min}min"

    @property
    def end(self) -> int:
        """Nominal end (start + interval); the last candle of a day is cut at the close."""
        return self.start + self.interval_min * 60

    def key(self) -> tuple[int, int, int]:
        return (self.instrument_token, self.interval_min, self.start)

    def values(self) -> tuple[Any, ...]:
        """The fields that define the candle's content, for equality across paths."""
        return (
            self.instrument_token, self.interval_min, self.start, self.open, self.high,
            self.low, self.close, self.volume, self.oi, self.ticks, self.partial, self.synthetic,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "instrument_token": self.instrument_token,
            "exchange": self.exchange,
            "interval": self.interval,
            "start": iso(self.start),
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "oi": self.oi,
            "ticks": self.ticks,
            "partial": self.partial,
            "synthetic": self.synthetic,
            "closed": self.closed,
            "origin": self.origin,
        }
