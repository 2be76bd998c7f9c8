"""Instrument token -> dense slot index, for state held in arrays indexed by instrument.

The columnar engine keeps every instrument's state in numpy arrays; a frame's tokens are turned
into row numbers in one vectorised lookup (a binary search over the sorted known tokens), and
only a token never seen before takes a Python step. Slots are handed out in order of first sight
and never reused, so arrays indexed by slot only ever grow (by doubling: see `grow`).
"""

from __future__ import annotations

import numpy as np


class SlotMap:
    """Tokens to slots 0..n-1, in order of first sight."""

    def __init__(self) -> None:
        self._slot: dict[int, int] = {}
        self.tokens = np.empty(0, np.int64)  # slot -> token
        self._sorted = np.empty(0, np.int64)  # known tokens, ascending
        self._sorted_slot = np.empty(0, np.int64)  # the slot of each of _sorted
        self._dirty = False

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, token: int) -> bool:
        return token in self._slot

    def get(self, token: int) -> int | None:
        return self._slot.get(token)

    def add(self, token: int) -> tuple[int, bool]:
        """The slot of `token`, and whether it is new."""
        s = self._slot.get(token)
        if s is not None:
            return s, False
        s = len(self._slot)
        self._slot[token] = s
        if s >= len(self.tokens):
            self.tokens = grow(self.tokens, s + 1, 0)
        self.tokens[s] = token
        self._dirty = True
        return s, True

    def lookup(self, tokens: np.ndarray) -> np.ndarray:
        """Slots of `tokens` (int64 array), -1 where a token is unknown."""
        if self._dirty:
            n = len(self._slot)
            order = np.argsort(self.tokens[:n], kind="stable")
            self._sorted = self.tokens[:n][order]
            self._sorted_slot = order.astype(np.int64)
            self._dirty = False
        known = self._sorted
        if not len(known):
            return np.full(len(tokens), -1, np.int64)
        pos = np.searchsorted(known, tokens)
        np.minimum(pos, len(known) - 1, out=pos)
        return np.where(known[pos] == tokens, self._sorted_slot[pos], -1)


def grow(a: np.ndarray, need: int, fill: object) -> np.ndarray:
    """`a` with room for at least `need` rows (doubling), new rows set to `fill`."""
    if len(a) >= need:
        return a
    size = max(need, 2 * len(a), 64)
    out = np.empty((size, *a.shape[1:]), a.dtype)
    out[: len(a)] = a
    out[len(a):] = fill
    return out
