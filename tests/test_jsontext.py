"""`dumps_in_pieces` writes what `json.dumps` writes, for any JSON value and any slice size."""

from __future__ import annotations

import json
import math
import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from livecli.core.jsontext import dumps_in_pieces

_scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=6)
            | st.floats(allow_nan=True, allow_infinity=True))
_values = st.recursive(
    _scalars,
    lambda inner: (st.lists(inner, max_size=12) | st.tuples(inner, inner)
                   | st.dictionaries(st.text(max_size=4), inner, max_size=12)
                   | st.dictionaries(st.integers(), inner, max_size=4)),
    max_leaves=80,
)


@settings(max_examples=300, deadline=None)
@given(_values, st.integers(1, 5), st.sampled_from([(", ", ": "), (",", ":")]))
def test_same_text_as_json_dumps(value: object, piece: int, seps: tuple[str, str]) -> None:
    assert dumps_in_pieces(value, separators=seps, piece=piece) == json.dumps(
        value, separators=seps)


def test_a_status_shaped_value_in_small_pieces() -> None:
    n = 2000
    value = {
        "type": "status", "links": [{"index": 0, "state": "connected"}],
        "symbols": {"symbol": [f"S{i}" for i in range(n)],
                    "last_price": [None if i % 7 == 0 else i / 3 for i in range(n)],
                    "seen": [math.inf if i == 5 else i for i in range(n)]},
        "keyed": {f"S{i}": {"ticks": i, "last_price": i * 0.05} for i in range(n)},
        "nested": [[i] * 3 for i in range(n)] + [list(range(n))],
    }
    assert dumps_in_pieces(value, piece=64) == json.dumps(value)
    assert dumps_in_pieces(value, separators=(",", ":"), default=str) == json.dumps(
        value, separators=(",", ":"), default=str)


def test_default_reaches_values_in_every_piece() -> None:
    value = {"when": [time.struct_time((2025, 1, 6, 9, 15, 0, 0, 6, 0))] * 3,
             "lock": [threading.Lock] * 1100}
    assert dumps_in_pieces(value, default=str, piece=100) == json.dumps(value, default=str)
