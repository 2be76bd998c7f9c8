"""`round_column` equals Python's `round(x, n)` on every element, halves and their neighbours too.

The tick lines' `change_pct` is held byte for byte to json.dumps of `round()`: any element
where the vectorised rounding differed would be a different line. Compared as `repr`, so the
sign of zero and NaN count.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from livecli.core.rounding import round_column


def _same(values: np.ndarray, ndigits: int) -> None:
    got = round_column(values, ndigits).tolist()
    want = [round(v, ndigits) for v in values.tolist()]
    bad = [(v, g, w) for v, g, w in zip(values.tolist(), got, want, strict=True)
           if repr(g) != repr(w)]
    assert not bad, bad[:5]


def test_change_pct_of_a_days_prices_rounds_as_round_does():
    # As the tick lines compute it: (price - close) * 100 / close, prices in paise.
    rng = np.random.default_rng(15)
    close = rng.integers(1, 5_000_000, 400_000) / 100.0
    price = np.maximum(close + rng.integers(-50_000, 50_000, close.size) / 100.0, 0.05)
    _same((price - close) * 100.0 / close, 4)


@pytest.mark.parametrize("ndigits", [0, 1, 2, 4, 6])
def test_values_at_a_half_and_an_ulp_either_side_round_as_round_does(ndigits):
    rng = np.random.default_rng(ndigits)
    k = rng.integers(-10**7, 10**7, 50_000).astype(np.float64)
    halves = (k + 0.5) / 10.0 ** ndigits
    values = np.concatenate([halves, np.nextafter(halves, np.inf),
                             np.nextafter(halves, -np.inf)])
    _same(values, ndigits)


def test_zeros_signs_non_finite_and_huge_values_round_as_round_does():
    values = np.array([0.0, -0.0, -0.00001, 0.00001, -0.00005, 0.00005, 0.00015, 2.675,
                       np.nan, np.inf, -np.inf, 1e300, -1e300, 8.6e5, 1e12 + 0.5, 5e-324])
    _same(values, 4)


@settings(max_examples=300, deadline=None)
@given(values=arrays(np.float64, st.integers(1, 64),
                     elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
       ndigits=st.integers(0, 15))
def test_any_floats_round_as_round_does(values, ndigits):
    _same(values, ndigits)


def test_a_number_of_digits_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"0\.\.15"):
        round_column(np.array([1.5]), 16)
