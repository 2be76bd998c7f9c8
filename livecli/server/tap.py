"""The server's listeners on the session: what runs on the receiving path, and must never wait.

The session calls its frame and closed-candle batch listeners on kiteconnect's reactor thread
(candles also on its clock thread, under its lock, and on the history thread, without it), and
its status listener on the clock thread. Each
listener here does O(1) work: it appends a reference to a deque (thread-safe, never blocks)
and, only when the asyncio loop has not been woken since it last drained, wakes it with one
`call_soon_threadsafe`. So a burst of frames costs one wake-up, not one per frame or per tick,
and everything that costs (decoding rows, JSON, sending) happens on the loop, in batches.

If the loop falls so far behind that `max_frames` frames wait, further frames are shed, never
queued without bound; the hub then drops the tick subscribers (they would miss ticks) with a
close code saying so. Candles and status are never shed.

`frame_columns`, `frame_tokens` and `frame_ticks` are the only code in the server that reads a decoded frame.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livecli.core.rounding import change_pct_column

if TYPE_CHECKING:
    from livecli.core.closed import ClosedCandles
    from livecli.core.ticks import Tick

FRAME, CANDLE, STATUS = 0, 1, 2
MAX_FRAMES = 4096  # about 10 s of a busy feed (Kite sends one frame a second per link)


@dataclass(frozen=True, slots=True)
class FrameColumns:
    """A frame's packets column-wise, as plain lists: what the tick encoder reads.

    The codec's conventions: volume and oi are -1 where the packet has none, prices NaN
    (day high/low and the previous close are absent from ltp packets), exchange_timestamp
    is 0 or less where absent; mode is Kite's name per packet.
    """

    token: list[int]
    price: list[float]
    volume: list[int]
    exchange_timestamp: list[int]
    oi: list[int]
    day_high: list[float]
    day_low: list[float]
    prev_close: list[float]
    mode: list[str]
    # round(Tick.change_pct, 4) per packet, for the frame at once (core/rounding.py); read
    # only where prev_close is a number other than 0.
    change_pct: list[float]


def frame_columns(frame: Any) -> FrameColumns:
    """Every packet of a decoded frame, column-wise (see FrameColumns)."""
    price, close = frame.last_price, frame.column("close")
    return FrameColumns(
        frame.token.tolist(), price.tolist(), frame.column("volume_traded").tolist(),
        frame.exchange_timestamp.tolist(), frame.column("oi").tolist(),
        frame.column("high").tolist(), frame.column("low").tolist(),
        close.tolist(), frame.mode, change_pct_column(price, close),
    )


def frame_tokens(frame: Any) -> list[int]:
    """The instrument token of every packet of a decoded frame, in order."""
    return frame.token.tolist()


def frame_ticks(frame: Any) -> list[Tick]:
    """Every packet of a decoded frame as a `Tick`, in order."""
    return frame.ticks()


class Inbox:
    """Items from the session's listeners (any thread), taken in batches on the loop."""

    def __init__(self, max_frames: int = MAX_FRAMES) -> None:
        self._items: deque[tuple[Any, ...]] = deque()
        self.max_frames = max_frames
        self.shed = 0  # frames not queued because the loop was too far behind
        self.overflowed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: Callable[[], None] | None = None
        self._woken = False

    # --- the producers' side (reactor and clock threads) -------------------------------------
    def put_frame(self, frame: Any, received_at: float) -> None:
        if len(self._items) >= self.max_frames:  # len() of a deque is atomic: no lock needed
            self.shed += 1
            self.overflowed = True
        else:
            self._items.append((FRAME, frame, received_at))
        self._wake()

    def put_candles(self, batch: ClosedCandles) -> None:
        # As the engine closed them: a minute's end is one item, its Candle objects made on
        # the loop (and only when a client wants candles), not on the receiving path.
        self._items.append((CANDLE, batch))
        self._wake()

    def put_status(self, status: Any) -> None:
        self._items.append((STATUS, status))
        self._wake()

    def _wake(self) -> None:
        loop = self._loop
        if loop is None or self._woken:
            return
        self._woken = True
        try:
            loop.call_soon_threadsafe(self._on_wake)
        except RuntimeError:  # the loop has closed: the server is stopping
            self._woken = False

    # --- the loop's side ---------------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop | None, ready: Callable[[], None] | None) -> None:
        """Wake `ready()` on `loop` when items come (None, None: stop waking anyone)."""
        self._loop, self._ready = loop, ready
        self._woken = False
        if loop is not None and self._items:
            self._wake()

    def _on_wake(self) -> None:
        ready = self._ready
        if ready is not None:
            ready()

    def take(self) -> list[tuple[Any, ...]]:
        """Everything queued so far, oldest first; later items wake the loop again."""
        self._woken = False  # first: an item appended from now on schedules a new wake-up
        items = self._items
        out = []
        pop = items.popleft
        while items:
            out.append(pop())
        return out


def attach(session: Any, inbox: Inbox) -> None:
    """Register the inbox's producers as the session's listeners (before `start()`)."""
    session.add_frame_listener(inbox.put_frame)
    session.add_candle_batch_listener(inbox.put_candles)
    session.add_status_listener(inbox.put_status)
