"""Bounded candle history per instrument and interval, stored column-wise.

A live session keeps the last N closed candles (default 500, as the seed system did) of every
instrument and interval. Held as Python objects that would cost ~400 bytes a candle; held in
typed arrays it is ~70, which matters at 9000 instruments x 7 intervals.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from livecli.core.candles import ORIGIN_CODE, ORIGINS, Candle

_NO_OI = -1


class CandleHistory:
    """A ring of the last `capacity` closed candles of one instrument and interval."""

    __slots__ = (
        "_close", "_flags", "_head", "_high", "_low", "_oi", "_open", "_start", "_ticks",
        "_volume", "capacity", "exchange", "instrument_token", "interval_min", "symbol",
    )

    def __init__(
        self, instrument_token: int, interval_min: int, capacity: int = 500,
        symbol: str = "", exchange: str = "",
    ) -> None:
        if capacity < 1:
            raise ValueError("history capacity must be at least 1")
        self.instrument_token = instrument_token
        self.interval_min = interval_min
        self.capacity = capacity
        self.symbol = symbol
        self.exchange = exchange
        self._start = array("q")
        self._open = array("d")
        self._high = array("d")
        self._low = array("d")
        self._close = array("d")
        self._volume = array("q")
        self._oi = array("q")
        self._ticks = array("l")
        self._flags = array("b")  # bit 0 partial, bit 1 synthetic, bits 2-3 the origin code
        self._head = 0  # index of the oldest candle once the ring is full

    def __len__(self) -> int:
        return len(self._start)

    def append(self, c: Candle) -> None:
        flags = (1 if c.partial else 0) | (2 if c.synthetic else 0) | ORIGIN_CODE[c.origin] << 2
        oi = _NO_OI if c.oi is None else c.oi
        if len(self._start) < self.capacity:
            self._start.append(c.start)
            self._open.append(c.open)
            self._high.append(c.high)
            self._low.append(c.low)
            self._close.append(c.close)
            self._volume.append(c.volume)
            self._oi.append(oi)
            self._ticks.append(c.ticks)
            self._flags.append(flags)
            return
        i = self._head
        self._start[i] = c.start
        self._open[i] = c.open
        self._high[i] = c.high
        self._low[i] = c.low
        self._close[i] = c.close
        self._volume[i] = c.volume
        self._oi[i] = oi
        self._ticks[i] = c.ticks
        self._flags[i] = flags
        self._head = (i + 1) % self.capacity

    def _candle(self, i: int) -> Candle:
        oi = self._oi[i]
        f = self._flags[i]
        return Candle(
            self.instrument_token, self.interval_min, self._start[i], self._open[i],
            self._high[i], self._low[i], self._close[i], self._volume[i],
            None if oi == _NO_OI else oi, self._ticks[i], bool(f & 1), bool(f & 2), True,
            self.symbol, self.exchange, ORIGINS[f >> 2 & 3],
        )

    def __iter__(self) -> Iterator[Candle]:
        n = len(self._start)
        for k in range(n):
            yield self._candle((self._head + k) % n if n == self.capacity else k)

    def last(self, count: int | None = None) -> list[Candle]:
        """The newest `count` candles (all when None), oldest first."""
        items = list(self)
        return items if count is None else items[-count:] if count > 0 else []

    def replace_all(self, candles: list[Candle]) -> None:
        """Hold exactly the newest `capacity` of `candles` (sorted by start, closed): what
        inserting history into the middle of the ring needs; O(capacity), rare (a few per run)."""
        keep = candles[-self.capacity:]
        for a in (self._start, self._open, self._high, self._low, self._close, self._volume,
                  self._oi, self._ticks, self._flags):
            del a[:]
        self._head = 0
        for c in keep:
            self.append(c)

    def closes(self, count: int) -> list[float]:
        """The newest `count` closes, oldest first (for sparklines)."""
        n = len(self._close)
        if n < self.capacity:
            return self._close[-count:].tolist() if count > 0 else []
        ordered = self._close[self._head:] + self._close[: self._head]
        return ordered[-count:].tolist() if count > 0 else []
