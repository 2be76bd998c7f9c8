"""The publisher's loss model, in one place: how many messages may wait, and what is shed.

Publishing must never hold up the receiving path, so what waits is bounded (`[publish]
buffer` messages, a frame counting as its ticks) and the bound sheds in an order: ticks, the
forming-candle updates and the status find room only up to three quarters of the buffer, closed
candles up to all of it. So closed candles are shed only when the whole buffer is full, and each
shed message is counted (`ticks_dropped`, `candles_dropped`) for the status. Both publishers
(the publisher's own thread, livecli/bus/publisher.py, and the session's side of the publisher's
process, livecli/bus/process.py) admit through a `Room`.
"""

from __future__ import annotations

import threading

TICK_SHARE = 3 / 4  # of the buffer that ticks, updates and the status may fill


class Room:
    """Waiting messages, counted against a buffer of `buffer`. Every method is O(1), any thread."""

    __slots__ = ("_lock", "buffer", "candles_dropped", "held", "tick_room", "ticks_dropped")

    def __init__(self, buffer: int) -> None:
        self.buffer = buffer
        self.tick_room = max(1, int(buffer * TICK_SHARE))
        self.held = 0
        self.ticks_dropped = 0
        self.candles_dropped = 0
        self._lock = threading.Lock()

    def ticks(self, n: int) -> bool:
        """Room for `n` ticks? If not, they are counted as dropped."""
        with self._lock:
            if self.held + n > self.tick_room:
                self.ticks_dropped += n
                return False
            self.held += n
            return True

    def candles(self, n: int) -> bool:
        """Room for `n` closed candles (the whole buffer)? If not, they are counted as dropped."""
        with self._lock:
            if self.held + n > self.buffer:
                self.candles_dropped += n
                return False
            self.held += n
            return True

    def other(self, n: int) -> bool:
        """Room for the status or `n` forming updates (shed like ticks, not counted: the next
        round brings fresher ones)?"""
        with self._lock:
            if self.held + n > self.tick_room:
                return False
            self.held += n
            return True

    def hold(self, n: int) -> None:
        """`n` more wait, whatever the bound (a closed candle sent again after no ack)."""
        with self._lock:
            self.held += n

    def release(self, n: int) -> None:
        """`n` no longer wait (taken to be sent)."""
        with self._lock:
            self.held -= n

    def shed_ticks(self, n: int) -> None:
        """`n` ticks admitted earlier were shed after all (stale, or the send failed)."""
        with self._lock:
            self.ticks_dropped += n

    def shed_candles(self, n: int) -> None:
        with self._lock:
            self.candles_dropped += n
