"""Where a run's candles, ticks and status go: the SQLite store's writer, or nowhere.

A session without a store (`db=False`) gets `NoStore`, which takes everything and keeps nothing,
so the receiving path and the lifecycle never ask whether there is a store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from livecli.core.candles import Candle
    from livecli.core.closed import ClosedCandles
    from livecli.core.status import LiveStatus
    from livecli.core.ticks import TickColumns


class Store(Protocol):
    """What a run writes through (livecli.store.writer.StoreWriter has this shape)."""

    candles_stored: int
    error: str | None
    # Set by the writer when writes kept failing (a full disk): the run then ends as failed.
    @property
    def failure(self) -> BaseException | None: ...

    def put_candles(self, candles: Iterable[Candle]) -> None: ...
    def put_candle_batch(self, batch: ClosedCandles) -> None: ...
    def put_ticks(self, rows: Iterable[tuple[Any, ...]]) -> None: ...
    def put_tick_columns(self, cols: TickColumns, received_at: float) -> None: ...
    def put_status(self, status: LiveStatus, symbols: bool = True) -> None: ...
    def register_instruments(self, names: Mapping[int, tuple[str, str]]) -> None: ...
    def begin_session(self, info: Mapping[str, Any]) -> int: ...
    def end_session(self, state: str = "stopped", clean: bool = True) -> None: ...
    def stop(self, timeout: float = 10.0) -> bool: ...


class NoStore:
    """The store of a session that keeps nothing."""

    candles_stored = 0
    error: str | None = None
    failure: BaseException | None = None

    def put_candles(self, candles: Iterable[Candle]) -> None:
        pass

    def put_candle_batch(self, batch: ClosedCandles) -> None:
        pass

    def put_ticks(self, rows: Iterable[tuple[Any, ...]]) -> None:
        pass

    def put_tick_columns(self, cols: TickColumns, received_at: float) -> None:
        pass

    def put_status(self, status: LiveStatus, symbols: bool = True) -> None:
        pass

    def register_instruments(self, names: Mapping[int, tuple[str, str]]) -> None:
        pass

    def begin_session(self, info: Mapping[str, Any]) -> int:
        return 0

    def end_session(self, state: str = "stopped", clean: bool = True) -> None:
        pass

    def stop(self, timeout: float = 10.0) -> bool:
        return True
