"""Each instrument's newest tick, tick count and receipt time, kept as arrays by instrument slot.

The receiving path used to keep three dicts and update them tick by tick (a tuple and three
dict writes per tick, under the session's lock): at Kite's full 9000 instruments that loop was a
fixed cost on every tick, and the status then walked the dicts once more every second. Here a
frame updates them in a few vectorised operations, and the status reads whole columns.

What the read API needs of a tick beyond its price (depth, OHLC, OI) stays in its decoded
frame: each slot holds the number of the frame its newest tick came in and the row in it.
Frames are kept while some slot still points at them, and let go in batches (`_prune`), so
memory is bounded by the number of instruments, as it was with a dict of (frame, row), and
stays within an eighth (or 64 frames) of what that dict held.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from livecli.core.slots import SlotMap, grow

# Frames held before the first check for those no instrument points at any more, and the
# least that may come between two checks.
_PRUNE_AT_LEAST = 64


class LatestTicks:
    """Per instrument: the newest tick's (frame, row), the price, the tick count, when received.

    Not thread-safe by itself: the receiver updates it, and readers copy from it, under the
    session's lock.
    """

    def __init__(self) -> None:
        self._slots = SlotMap()
        self._frame_no = np.zeros(0, np.int64)  # slot -> number of its newest tick's frame
        self._row = np.zeros(0, np.int64)  # slot -> that tick's row in the frame
        self._price = np.zeros(0, np.float64)
        self._count = np.zeros(0, np.int64)
        self._seen = np.zeros(0, np.float64)  # epoch s the newest tick was received
        self._frames: dict[int, Any] = {}
        self._next_frame = 0
        self._prune_at = _PRUNE_AT_LEAST

    def __len__(self) -> int:
        return len(self._slots)

    def update(self, frame: Any, tokens: np.ndarray, prices: np.ndarray,
               received_at: float) -> None:
        """Take a decoded frame's ticks (its token and price columns), in row order: where a
        token comes twice, its later row is its newest tick."""
        n = len(tokens)
        if not n:
            return
        slots = self._slots.lookup(tokens)
        if (slots < 0).any():
            slots = self._add(tokens, slots)
        fno = self._next_frame
        self._next_frame += 1
        self._frames[fno] = frame
        # Assignment through a repeated index leaves the last value written: a token's later
        # row wins, as the dict of (frame, row) did tick by tick.
        self._frame_no[slots] = fno
        self._row[slots] = np.arange(n)
        self._price[slots] = prices
        self._seen[slots] = received_at
        np.add.at(self._count, slots, 1)
        if len(self._frames) >= self._prune_at:
            self._prune()

    def get(self, token: int) -> tuple[Any, int] | None:
        """The newest tick of `token` as its frame and row, or None before its first."""
        s = self._slots.get(token)
        if s is None:
            return None
        return self._frames[int(self._frame_no[s])], int(self._row[s])

    def count(self, token: int) -> int:
        s = self._slots.get(token)
        return 0 if s is None else int(self._count[s])

    def seen_at(self, token: int) -> float | None:
        s = self._slots.get(token)
        return None if s is None else float(self._seen[s])

    @property
    def frames_held(self) -> int:
        """Decoded frames kept for the newest ticks' other fields (depth, OHLC, OI)."""
        return len(self._frames)

    def tokens(self) -> list[int]:
        """Every token that has had a tick, in order of its first."""
        return self._slots.tokens[: len(self._slots)].tolist()

    def columns(self, tokens: list[int]
                ) -> tuple[list[float | None], list[float | None], list[int]]:
        """For each of `tokens`: the newest price, when it was received and the tick count;
        None, None, 0 for a token with no tick yet. One vectorised gather, for the status."""
        if not len(self._slots):  # before the first tick: nothing to gather from
            return [None] * len(tokens), [None] * len(tokens), [0] * len(tokens)
        slots = self._slots.lookup(np.asarray(tokens, np.int64))
        have = slots >= 0
        at = np.where(have, slots, 0)
        prices = self._price[at].tolist()
        seen = self._seen[at].tolist()
        counts = np.where(have, self._count[at], 0).tolist()
        if not have.all():
            for i in np.flatnonzero(~have).tolist():
                prices[i] = seen[i] = None
        return prices, seen, counts

    def _add(self, tokens: np.ndarray, slots: np.ndarray) -> np.ndarray:
        # An instrument's first tick: the only step that is not vectorised.
        for i in np.flatnonzero(slots < 0).tolist():
            slots[i] = self._slots.add(int(tokens[i]))[0]
        need = len(self._slots)
        self._frame_no = grow(self._frame_no, need, 0)
        self._row = grow(self._row, need, 0)
        self._price = grow(self._price, need, 0.0)
        self._count = grow(self._count, need, 0)
        self._seen = grow(self._seen, need, 0.0)
        return slots

    def _prune(self) -> None:
        live = set(np.unique(self._frame_no[: len(self._slots)]).tolist())
        self._frames = {k: f for k, f in self._frames.items() if k in live}
        # Next check once an eighth more (at least 64) have come: a check costs about as much
        # as the frames held, so it stays O(1) per frame, and what is held beyond the frames
        # still pointed at stays an eighth (twice over, it grew a 9000-instrument session's
        # RSS by 200 MB a minute: decoded full frames carry their depth).
        held = len(self._frames)
        self._prune_at = held + max(_PRUNE_AT_LEAST, held // 8)
