"""Candles closed together, column-wise: what a minute's end hands on without 9000 objects.

At a minute boundary every instrument's candle closes at once. The engine gives them on as one
`ClosedCandles` (arrays and an interval); whoever wants `Candle` objects (a per-candle callback,
the Python API) calls `.candles()`, and whoever does not (the store writer takes rows, the
history takes arrays) never pays for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from livecli.core.candles import ORIGINS, Candle
from livecli.core.derive import CandleArrays

NO_OI = -1


@dataclass(slots=True)
class ClosedCandles:
    """Closed candles of one interval; `slot` indexes `symbols`/`exchanges` (the engine's)."""

    interval_min: int
    slot: np.ndarray
    token: np.ndarray
    start: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    oi: np.ndarray  # -1: none
    ticks: np.ndarray
    partial: np.ndarray
    synthetic: np.ndarray
    symbols: Sequence[str] = ()
    exchanges: Sequence[str] = ()
    origin: np.ndarray | None = None  # codes of candles.ORIGINS; None: every row live

    def __post_init__(self) -> None:
        if self.origin is None:
            self.origin = np.zeros(len(self.token), np.int8)

    @property
    def origins(self) -> np.ndarray:
        assert self.origin is not None  # set by __post_init__
        return self.origin

    def __len__(self) -> int:
        return len(self.token)

    def take(self, idx: np.ndarray) -> ClosedCandles:
        return ClosedCandles(
            self.interval_min, self.slot[idx], self.token[idx], self.start[idx],
            self.open[idx], self.high[idx], self.low[idx], self.close[idx], self.volume[idx],
            self.oi[idx], self.ticks[idx], self.partial[idx], self.synthetic[idx],
            self.symbols, self.exchanges, self.origins[idx],
        )

    def lists(self) -> tuple[list, ...]:
        """The columns as Python lists, for a loop over rows: (slot, token, start, open, high,
        low, close, volume, oi, ticks, partial, synthetic, origin code)."""
        return (self.slot.tolist(), self.token.tolist(), self.start.tolist(),
                self.open.tolist(), self.high.tolist(), self.low.tolist(), self.close.tolist(),
                self.volume.tolist(), self.oi.tolist(), self.ticks.tolist(),
                self.partial.tolist(), self.synthetic.tolist(), self.origins.tolist())

    def candles(self, closed: bool = True) -> list[Candle]:
        """The rows as `Candle` objects (made only now, on demand)."""
        m = self.interval_min
        syms, exs = self.symbols, self.exchanges
        out = []
        for s, tok, st, o, h, lo, c, v, oi, n, p, y, g in zip(*self.lists(), strict=True):
            out.append(Candle(tok, m, st, o, h, lo, c, v, None if oi < 0 else oi, n, p, y,
                              closed, syms[s] if s < len(syms) else str(tok),
                              exs[s] if s < len(exs) else "", ORIGINS[g]))
        return out

    def rows(self) -> list[tuple]:
        """Store rows (token, interval, start, o, h, l, c, volume, oi, ticks, partial,
        synthetic, closed, origin), as the store writer keeps them."""
        m = self.interval_min
        return [
            (tok, m, st, o, h, lo, c, v, None if oi < 0 else oi, n, int(p), int(y), 1,
             ORIGINS[g])
            for tok, st, o, h, lo, c, v, oi, n, p, y, g in zip(
                self.token.tolist(), self.start.tolist(), self.open.tolist(),
                self.high.tolist(), self.low.tolist(), self.close.tolist(),
                self.volume.tolist(), self.oi.tolist(), self.ticks.tolist(),
                self.partial.tolist(), self.synthetic.tolist(), self.origins.tolist(),
                strict=True,
            )
        ]

    def names(self) -> dict[int, tuple[str, str]]:
        syms, exs = self.symbols, self.exchanges
        out = {}
        for s, tok in zip(self.slot.tolist(), self.token.tolist(), strict=True):
            if s < len(syms) and syms[s]:
                out[tok] = (syms[s], exs[s] if s < len(exs) else "")
        return out

    def arrays(self) -> CandleArrays:
        return CandleArrays(self.token, self.start, self.open, self.high, self.low, self.close,
                            self.volume, self.oi, self.ticks, self.partial, self.synthetic,
                            origin=self.origins)

    @classmethod
    def from_candles(cls, candles: list[Candle], slots: Sequence[int] | np.ndarray,
                     interval_min: int) -> ClosedCandles:
        a = CandleArrays.from_candles(candles)
        return cls(interval_min, np.asarray(slots, np.int64), a.token, a.start, a.open,
                   a.high, a.low, a.close, a.volume, a.oi, a.ticks, a.partial, a.synthetic,
                   origin=a.origin)

    @staticmethod
    def concat(parts: list[ClosedCandles]) -> ClosedCandles:
        f = parts[0]

        def cat(k: str) -> np.ndarray:
            return np.concatenate([getattr(p, k) for p in parts])

        return ClosedCandles(
            f.interval_min, cat("slot"), cat("token"), cat("start"), cat("open"), cat("high"),
            cat("low"), cat("close"), cat("volume"), cat("oi"), cat("ticks"), cat("partial"),
            cat("synthetic"), f.symbols, f.exchanges, cat("origin"),
        )
