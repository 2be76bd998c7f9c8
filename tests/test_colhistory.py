"""The engine's closed-candle rings (core/colhistory.py) against a list per instrument.

The rings are blocks of 64 positions x instruments, overwritten oldest first once `capacity`
is reached; reads copy contiguous runs through the blocks. Capacities below, at and past a
block, and not a multiple of one, with batches that touch some instruments and not others,
must read back exactly as a bounded list of the same candles would.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from livecli.core.closed import ClosedCandles
from livecli.core.colhistory import BLOCK, ColumnarHistory


def batch(slots: list[int], seq: int) -> ClosedCandles:
    """One candle per slot, its fields derived from (slot, seq) so each is recognisable."""
    s = np.array(slots, np.int64)
    n = len(s)
    start = (seq * 60 + s).astype(np.int64)
    close = seq + s / 1000.0
    return ClosedCandles(1, s, s + 100, start, close - 1, close + 1, close - 2, close,
                         (seq * 7 + s).astype(np.int64), np.full(n, -1, np.int64),
                         np.ones(n, np.int64), s % 2 == 0, np.zeros(n, np.bool_),
                         origin=(s % 3).astype(np.int8))


@settings(max_examples=60, deadline=None)
@given(capacity=st.sampled_from([1, 5, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 7]),
       rounds=st.integers(0, 3 * BLOCK + 20), seed=st.integers(0, 2**32 - 1),
       counts=st.lists(st.integers(0, 3 * BLOCK), min_size=1, max_size=4))
def test_rings_read_back_as_bounded_lists(capacity, rounds, seed, counts):
    rng = np.random.default_rng(seed)
    # Each round closes the candles of a random subset of six instruments.
    batches = [sorted(rng.choice(6, int(rng.integers(1, 7)), replace=False).tolist())
               for _ in range(rounds)]
    hist = ColumnarHistory(1, capacity=capacity)
    model: dict[int, deque] = {s: deque(maxlen=capacity) for s in range(6)}
    for seq, slots in enumerate(batches):
        hist.append(batch(slots, seq))
        for s in slots:
            model[s].append((seq * 60 + s, seq + s / 1000.0, seq * 7 + s, s % 3))
    for s in range(6):
        want = list(model[s])
        assert hist.size(s) == len(want)
        assert hist.column(s, "start").tolist() == [w[0] for w in want]
        for k in counts:
            tail = want[-k:] if k else []
            assert hist.column(s, "close", k).tolist() == [w[1] for w in tail]
            assert hist.column(s, "volume", k).tolist() == [w[2] for w in tail]
        got = hist.closed(s, s + 100)
        assert got.origins.tolist() == [w[3] for w in want]
        assert got.partial.tolist() == [s % 2 == 0] * len(want)
    assert len(hist) == sum(len(m) for m in model.values())
    assert hist.column(99, "close", 5).tolist() == []  # a slot never seen holds nothing
