"""Ticks: the snapshots Kite sends, in the shapes the candle engine and the dashboard read.

A `Tick` is one snapshot with named fields, for callbacks, the Python API and tests.
A `TickColumns` is many ticks in arrival order, one sequence per field: the decoder produces it
from a frame without building an object per packet, and the engine consumes it in one loop.

Missing values: `volume` and `oi` are -1 when the packet carried none (ltp packets, indices);
`day_high`/`day_low` are NaN when absent. `time` is the exchange time, or the receive time where
the packet carried none (ltp and quote modes: CANDLES.md rule 1). All times are epoch seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray

NO_VOLUME = -1
NO_OI = -1
NAN = math.nan


@dataclass(slots=True)
class Tick:
    """One instrument snapshot. Optional fields are None when the packet did not carry them."""

    instrument_token: int
    last_price: float
    time: float
    volume_traded: int | None = None
    day_high: float | None = None
    day_low: float | None = None
    oi: int | None = None
    exchange_timestamp: float | None = None
    mode: str = "full"
    day_open: float | None = None
    prev_close: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def change_pct(self) -> float | None:
        """Change from the previous close in percent, as Kite's clients compute it."""
        if not self.prev_close:
            return None
        return (self.last_price - self.prev_close) * 100.0 / self.prev_close


@dataclass(slots=True)
class TickColumns:
    """Ticks in arrival order, one list per field; see the module docstring for sentinels."""

    # Lists, or numpy arrays straight from the decoder (both index and iterate alike).
    token: Sequence[int] | NDArray[Any]
    time: Sequence[float] | NDArray[Any]
    price: Sequence[float] | NDArray[Any]
    volume: Sequence[int] | NDArray[Any]
    day_high: Sequence[float] | NDArray[Any]
    day_low: Sequence[float] | NDArray[Any]
    oi: Sequence[int] | NDArray[Any]

    def __len__(self) -> int:
        return len(self.token)

    @classmethod
    def from_ticks(cls, ticks: Iterable[Tick]) -> TickColumns:
        tok: list[int] = []
        tm: list[float] = []
        px: list[float] = []
        vol: list[int] = []
        hi: list[float] = []
        lo: list[float] = []
        oi: list[int] = []
        for t in ticks:
            tok.append(t.instrument_token)
            tm.append(t.time)
            px.append(t.last_price)
            vol.append(NO_VOLUME if t.volume_traded is None else t.volume_traded)
            hi.append(NAN if t.day_high is None else t.day_high)
            lo.append(NAN if t.day_low is None else t.day_low)
            oi.append(NO_OI if t.oi is None else t.oi)
        return cls(tok, tm, px, vol, hi, lo, oi)

    def as_lists(self) -> TickColumns:
        """The same columns as Python lists (numpy arrays converted), the engine's fast input."""

        def lst(seq: Sequence[Any] | NDArray[Any]) -> list[Any]:
            return seq.tolist() if hasattr(seq, "tolist") else list(seq)

        return TickColumns(
            lst(self.token), lst(self.time), lst(self.price), lst(self.volume),
            lst(self.day_high), lst(self.day_low), lst(self.oi),
        )

    def ticks(self) -> list[Tick]:
        out = []
        for tok, tm, px, vol, hi, lo, oi in zip(
            self.token, self.time, self.price, self.volume, self.day_high, self.day_low, self.oi,
            strict=True,
        ):
            out.append(
                Tick(
                    int(tok), float(px), float(tm),
                    None if vol < 0 else int(vol),
                    None if hi != hi else float(hi),
                    None if lo != lo else float(lo),
                    None if oi < 0 else int(oi),
                )
            )
        return out
