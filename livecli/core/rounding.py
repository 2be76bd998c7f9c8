"""A column of floats rounded to `n` decimals exactly as Python's `round(x, n)`, at numpy speed.

The tick lines carry `change_pct` rounded to 4 decimals, byte for byte what `round()` gives
(their oracle is json.dumps of `round()`); called per tick, `round()` was an eighth of a line's
cost. `np.round` is not the same function: it scales, rounds and divides, so where the scaled
value lands within an ulp of a half it can round the other way. Away from halves it cannot:
with |x * 10**n| < 2**33 the product is within 1e-6 of its true value, so `rint` picks the
integer `round()` picks, and dividing that integer by 10**n (both exact) gives the double
nearest the decimal, as `round()` does. The few values within 1e-6 of a half (and non-finite
or huge ones) go through `round()` itself.
"""

from __future__ import annotations

import numpy as np

_HALF_MARGIN = 1e-6
_EXACT_BELOW = 2.0 ** 33  # where half an ulp of the scaled value is under _HALF_MARGIN


def round_column(values: np.ndarray, ndigits: int) -> np.ndarray:
    """`np.array([round(float(v), ndigits) for v in values])`, equal element for element (the
    sign of zero and NaN included), for float64 `values` and 0 <= ndigits <= 15."""
    if not 0 <= ndigits <= 15:
        raise ValueError(f"ndigits must be 0..15, got {ndigits}")
    values = np.asarray(values, dtype=np.float64)
    scale = 10.0 ** ndigits  # exact: a power of ten up to 1e22 is a double
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = values * scale
        out = np.rint(scaled) / scale
        frac = np.abs(scaled - np.trunc(scaled))
        safe = (np.abs(frac - 0.5) > _HALF_MARGIN) & (np.abs(scaled) < _EXACT_BELOW)
    if not safe.all():
        for i in np.flatnonzero(~safe).tolist():
            out[i] = round(float(values[i]), ndigits)
    return out


def change_pct_column(price: np.ndarray, prev_close: np.ndarray) -> list[float]:
    """`round(Tick.change_pct, 4)` of every row, as each tick message carries it: the same
    IEEE operations per element, then `round_column`. Rows whose previous close is 0 or NaN
    hold inf or NaN here; the encoders write null or NaN there and do not read them."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return round_column((price - prev_close) * 100.0 / prev_close, 4).tolist()
