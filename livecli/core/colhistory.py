"""Closed candles of every instrument of one interval, in bounded rings held as numpy blocks.

The live session keeps the last N closed candles (`[stream] history`) per instrument and
interval. At a minute's end all instruments' candles arrive together (`ClosedCandles`), so the
history is laid out for that: blocks of `BLOCK` positions x instruments, position-major, and a
batch lands with one fancy-index store per field. Blocks are allocated as positions are first
reached and never copied, so neither a boundary nor a growing day makes a copying spike, and once
the cap is reached memory stays flat (the ring overwrites its oldest position).

`replace` is the door for candles from elsewhere (Kite's historical API at a warm start, or a
repaired minute): it merges rows into one instrument's ring by start, the given rows winning.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from livecli.core.candles import Candle
from livecli.core.closed import ClosedCandles
from livecli.core.slots import grow

BLOCK = 64
_FIELDS = (
    ("start", np.int64), ("open", np.float64), ("high", np.float64), ("low", np.float64),
    ("close", np.float64), ("volume", np.int64), ("oi", np.int64), ("ticks", np.int64),
    ("partial", np.bool_), ("synthetic", np.bool_), ("origin", np.int8),
)
_DTYPES = dict(_FIELDS)


class ColumnarHistory:
    """Rings of the last `capacity` closed candles of one interval, one per instrument slot."""

    def __init__(self, interval_min: int, capacity: int = 500, slots: int = 0) -> None:
        if capacity < 1:
            raise ValueError("history capacity must be at least 1")
        self.interval_min = interval_min
        self.capacity = capacity
        self._rows = max(64, slots)
        self.count = np.zeros(self._rows, np.int64)  # candles ever appended, per slot
        n_blocks = -(-capacity // BLOCK)
        self._blocks: list[dict[str, np.ndarray] | None] = [None] * n_blocks

    def reserve(self, slots: int) -> None:
        """Room for `slots` instruments (so a batch never grows the blocks one by one)."""
        self._ensure_rows(slots)

    def _ensure_rows(self, need: int) -> None:
        if need <= self._rows:
            return
        rows = max(need, 2 * self._rows)
        self.count = grow(self.count, rows, 0)
        for b in self._blocks:
            if b is not None:
                for k, a in b.items():
                    new = np.zeros((a.shape[0], rows), a.dtype)
                    new[:, : a.shape[1]] = a
                    b[k] = new
        self._rows = rows

    def _block(self, i: int) -> dict[str, np.ndarray]:
        b = self._blocks[i]
        if b is None:
            width = min(BLOCK, self.capacity - i * BLOCK)
            b = self._blocks[i] = {k: np.zeros((width, self._rows), dt) for k, dt in _FIELDS}
        return b

    def append(self, cc: ClosedCandles) -> None:
        """Add a batch of closed candles (oldest first per slot) at the end of their rings."""
        if not len(cc):
            return
        s = cc.slot
        self._ensure_rows(int(s.max()) + 1)
        if len(np.unique(s)) != len(s):  # several candles of one slot (gap filling): in order
            order = np.argsort(s, kind="stable")
            ss = s[order]
            first = np.r_[True, ss[1:] != ss[:-1]]
            starts = np.flatnonzero(first)
            rank = np.empty(len(s), np.int64)
            rank[order] = np.arange(len(s)) - np.repeat(starts, np.diff(np.r_[starts, len(s)]))
            for r in range(int(rank.max()) + 1):
                self.append(cc.take(np.flatnonzero(rank == r)))
            return
        pos = self.count[s] % self.capacity
        blk = pos // BLOCK
        col = pos % BLOCK
        cols = {k: getattr(cc, k) for k, _ in _FIELDS}
        for bi in np.unique(blk).tolist():
            m = blk == bi
            every = bool(m.all())
            b = self._block(bi)
            c_, s_ = (col, s) if every else (col[m], s[m])
            for k, a in b.items():
                a[c_, s_] = cols[k] if every else cols[k][m]
        self.count[s] += 1

    def __len__(self) -> int:
        return int(np.minimum(self.count, self.capacity).sum())

    def size(self, slot: int) -> int:
        return 0 if slot >= self._rows else int(min(self.count[slot], self.capacity))

    def column(self, slot: int, name: str, count: int | None = None) -> np.ndarray:
        """One field of a slot's candles, oldest first (the newest `count` when given)."""
        n = int(self.count[slot]) if slot < self._rows else 0
        cap = self.capacity
        held = min(n, cap)
        k = held if count is None else max(0, min(count, held))
        out: np.ndarray = np.empty(k, _DTYPES[name])
        # The wanted candles are appends n-k .. n-1, at positions (modulo the ring) that run
        # contiguously through the blocks: copied a run at a time (a dashboard reads dozens of
        # spark lines a frame; one index array per read cost more than the copy).
        i = 0
        while i < k:
            pos = (n - k + i) % cap
            bi, off = divmod(pos, BLOCK)
            b = self._blocks[bi]
            assert b is not None
            run = min(k - i, BLOCK - off, cap - pos)
            out[i:i + run] = b[name][off:off + run, slot]
            i += run
        return out

    def closed(self, slot: int, token: int, symbols: Sequence[str] = (),
               exchanges: Sequence[str] = ()) -> ClosedCandles:
        """A slot's candles, oldest first, as a batch."""
        c = {k: self.column(slot, k) for k, _ in _FIELDS}
        n = len(c["start"])
        return ClosedCandles(self.interval_min, np.full(n, slot, np.int64),
                             np.full(n, token, np.int64), c["start"], c["open"], c["high"],
                             c["low"], c["close"], c["volume"], c["oi"], c["ticks"],
                             c["partial"], c["synthetic"], symbols, exchanges, c["origin"])

    def replace(self, slot: int, rows: ClosedCandles) -> None:
        """Merge `rows` (one slot's candles) into its ring by start, `rows` winning on a tie;
        the newest `capacity` are kept, oldest first."""
        self._ensure_rows(slot + 1)
        have = self.closed(slot, int(rows.token[0]) if len(rows) else 0)
        start = np.concatenate([rows.start, have.start])
        # Stable: the given rows come first, so np.unique keeps them on an equal start.
        _, first = np.unique(start, return_index=True)
        idx = first[-self.capacity:]
        merged = {k: np.concatenate([getattr(rows, k), getattr(have, k)])[idx] for k, _ in _FIELDS}
        n = len(idx)
        for p in range(0, n, BLOCK):
            b = self._block(p // BLOCK)
            q = min(n, p + BLOCK)
            for k, a in b.items():
                a[: q - p, slot] = merged[k][p:q]
        self.count[slot] = n


class HistoryView:
    """One instrument's ring, read as the old per-instrument history was (`closes`, `last`)."""

    def __init__(self, hist: ColumnarHistory, slot: int, token: int, symbol: str,
                 exchange: str) -> None:
        self._h = hist
        self._slot = slot
        self.instrument_token = token
        self.interval_min = hist.interval_min
        self.symbol = symbol
        self.exchange = exchange

    def __len__(self) -> int:
        return self._h.size(self._slot)

    def closes(self, count: int) -> list[float]:
        return self._h.column(self._slot, "close", count).tolist() if count > 0 else []

    def last(self, count: int | None = None) -> list[Candle]:
        items = self._h.closed(self._slot, self.instrument_token).candles()
        for c in items:
            c.symbol, c.exchange = self.symbol, self.exchange
        return items if count is None else items[-count:] if count > 0 else []

    def __iter__(self) -> Iterator[Candle]:
        return iter(self.last())
