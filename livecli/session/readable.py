"""What may be read of a running session, whichever kind: the typed read API as a Protocol.

The dashboard (livecli.dashboard.builder) and `livecli status` read a session only through
this, so one dashboard draws a local `LiveSession` or one attached to a `livecli serve`
(`RemoteSession`, fed by the server's WebSocket); both have this shape, and mypy holds them to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from livecli.core.intervals import Interval
    from livecli.core.status import LiveStatus
    from livecli.session.view import FormingCandle, LatestTick, RecentTick


class InstrumentName(Protocol):
    """What a reader needs of an instrument: its name and exchange."""

    @property
    def tradingsymbol(self) -> str: ...
    @property
    def exchange(self) -> str: ...


class ReadableSession(Protocol):
    """The typed read API of a session (livecli/session/view.py's types)."""

    @property
    def instruments(self) -> Mapping[int, InstrumentName]: ...

    def latest_ticks(self, tokens: Iterable[int] | None = None) -> dict[int, LatestTick]: ...
    def recent_ticks(self, n: int = 12) -> list[RecentTick]: ...
    def forming_candles(self, tokens: Iterable[int], interval: Interval, closes: int = 24
                        ) -> dict[int, FormingCandle]: ...
    def live_status(self, symbols: bool = True) -> LiveStatus: ...
    def now(self) -> float: ...
