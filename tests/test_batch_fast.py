"""The batch rebuild's fast path gives exactly the general path's candles, or steps aside.

`rebuild_arrays` answers clean recordings (one day, one session, every tick a trade, none late
or after the close, no day high/low or open interest) with `livecli.core.batch_fast`; every
other recording goes to the general path, which the property tests hold to the streaming engine
and the oracle. Here random recordings, clean and with one thing that makes them unclean, go
through both; the candles (every field and dtype) and the counters must be equal, and the
clean ones must have taken the fast path (else this test would prove nothing).
"""

from __future__ import annotations

from datetime import date
from datetime import time as dtime

import numpy as np
import pytest

from livecli.core import batch
from livecli.core.batch_fast import fast_one_minute
from livecli.core.ticks import TickColumns
from livecli.core.timeutil import at_ist

OPEN = at_ist(date(2025, 1, 6), dtime(9, 15))
CLOSE = at_ist(date(2025, 1, 6), dtime(15, 30))
FIELDS = ("token", "start", "open", "high", "low", "close", "volume", "oi", "ticks", "partial",
          "synthetic")
FAULTS = ("none", "equal_volume", "falling_volume", "minute_back", "day_high", "oi",
          "after_close", "next_day", "late", "other_session", "at_close")


def recording(rng: np.random.Generator, fault: str) -> tuple[TickColumns, float]:
    """A random recording in arrival order, clean unless `fault` names what spoils it."""
    n_inst = int(rng.integers(1, 40))
    n = int(rng.integers(2, 3000))
    tokens = (rng.choice(5000, n_inst, replace=False).astype(np.int64) + 1) * 256 + 1
    tok = tokens[rng.integers(0, n_inst, n)]
    # Some recordings start before the open (pre-open ticks) or after the first minute.
    t0 = OPEN + float(rng.choice([-120.0, 0.0, 30.0, 400.0]))
    span = float(rng.choice([50.0, 600.0, 3 * 3600.0]))
    t = np.sort(t0 + rng.random(n) * span)
    if rng.random() < 0.5:
        t = np.floor(t)  # whole seconds: ties, and ticks exactly on minute boundaries
    price = 1000 + rng.integers(-400, 400, n) * 0.05
    inc = rng.integers(1, 200, n)
    vol = np.empty(n, np.int64)
    for tk in tokens:  # per instrument a rising cumulative volume, from a random start
        rows = np.flatnonzero(tok == tk)
        vol[rows] = int(rng.integers(0, 10_000)) + np.cumsum(inc[rows])
    hi = np.full(n, np.nan)
    lo = np.full(n, np.nan)
    oi = np.full(n, -1, np.int64)
    grace = float(rng.choice([0.0, 2.0, 10.0]))
    i = int(rng.integers(1, n))
    same = np.flatnonzero(tok == tok[i])
    j = int(same[same < i][-1]) if (same < i).any() else None  # the tick before, same instrument
    if fault == "equal_volume" and j is not None:
        vol[i] = vol[j]
    elif fault == "falling_volume" and j is not None:
        vol[i] = vol[j] - 1
    elif fault == "minute_back" and j is not None:
        t[i] = t[j] - 61
    elif fault == "day_high":
        hi[i] = 2000.0
    elif fault == "oi":
        oi[i] = 7
    elif fault == "after_close":
        t[-1] = CLOSE + 5
    elif fault == "next_day":
        t[-1] = CLOSE + 86_400 - 3600
    elif fault == "late":
        t[i] = t[i] - 200
    elif fault == "other_session":
        tok[i] = tok[i] - 1 + 3  # a CDS contract: its own session
    elif fault == "at_close":
        t[-1] = CLOSE
    cols = TickColumns(tok, t, price, vol, hi, lo, oi)
    return cols, grace


@pytest.mark.parametrize("fault", FAULTS)
def test_fast_path_equals_the_general_path(fault: str) -> None:
    rng = np.random.default_rng(sum(map(ord, fault)))
    took_fast = 0
    for _ in range(40):
        cols, grace = recording(rng, fault)
        fast = fast_one_minute(
            np.asarray(cols.token), np.asarray(cols.time), np.asarray(cols.price),
            np.asarray(cols.volume), np.asarray(cols.day_high), np.asarray(cols.day_low),
            np.asarray(cols.oi), exchanges=None, sessions=None, grace_s=grace)
        took_fast += fast is not None
        mine = batch.rebuild_arrays(cols, [1, 5], grace_s=grace)
        ref = batch.rebuild_arrays(cols, [1, 5], grace_s=grace, fast_path=False)
        assert mine.counters == ref.counters
        for minutes in (1, 5):
            for name in FIELDS:
                a = getattr(mine.candles[minutes], name)
                b = getattr(ref.candles[minutes], name)
                assert a.dtype == b.dtype, (fault, minutes, name)
                assert np.array_equal(a, b), (fault, minutes, name)
    if fault == "none":
        assert took_fast == 40
    elif fault == "at_close":
        assert took_fast >= 15, took_fast  # with grace 0 a tick on the close is late: general
    else:
        # Each fault spoils the recording when the draw lets it (an equal volume on an
        # instrument's first tick does not): then the fast path must have stepped aside.
        assert took_fast < 30, took_fast
