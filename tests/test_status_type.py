"""The typed status (livecli.core.status): one shape, serialised by its fields alone.

A field added to `LiveStatus` must reach JSON lines and the store without touching them, and
a store or line written by an older or newer livecli must still read.
"""

from __future__ import annotations

import json
from dataclasses import fields

from livecli.core.status import STATUS_SCHEMA, LinkStatus, LiveStatus, SymbolStatus

T0 = 1_765_338_300.0  # 2025-12-10 09:15:00 IST


def sample() -> LiveStatus:
    return LiveStatus(
        source="SIMULATED", state="connected", mode="full", intervals=("1min", "5min"), pid=42,
        started_at=T0, uptime_s=12.5, reconnects=1, last_error="reset", ticks_per_s=99.5,
        ticks=1234, frames=50, late_ticks=2, bad_ticks=1, future_ticks=3, callback_errors=0,
        tick_lines_dropped=7, feed_clock=T0 + 61.5, db="/tmp/s.db",
        links=(LinkStatus(0, "connected", 2, 1, None, 0.25, None),),
        symbols=(SymbolStatus("INFY", "NSE", 408065, 1523.4, T0 + 60.25, 0.5, 10),
                 SymbolStatus("RELIANCE", "NSE", 738561, None, None, None, 0)),
    )


def test_json_round_trip_keeps_every_field():
    st = sample()
    d = json.loads(json.dumps(st.to_json_dict()))
    assert d["schema"] == STATUS_SCHEMA and d["future_ticks"] == 3
    assert d["started_at"] == "2025-12-10T09:15:00+05:30"
    assert d["symbols"]["INFY"]["last_tick_at"] == "2025-12-10T09:16:00.250000+05:30"
    assert d["links"][0]["state"] == "connected"
    assert LiveStatus.from_json_dict(d) == st


def test_every_field_is_serialised_without_naming_it():
    d = sample().to_json_dict()
    assert set(d) == {f.name for f in fields(LiveStatus)}
    assert set(d["symbols"]["INFY"]) == {f.name for f in fields(SymbolStatus)} - {"symbol"}
    assert set(d["links"][0]) == {f.name for f in fields(LinkStatus)}


def test_older_and_newer_objects_read_with_defaults():
    # An older line: no schema, no future_ticks, epoch numbers for instants, a junk value.
    old = {"state": "stopped", "ticks": 5, "late_ticks": "x", "started_at": T0,
           "symbols": {"INFY": {"last_price": 1.5, "last_tick_at": T0}},
           "from_the_future": {"a": 1}}
    st = LiveStatus.from_json_dict(old)
    assert st.state == "stopped" and st.ticks == 5 and st.late_ticks == 0
    assert st.future_ticks == 0 and st.started_at == T0 and st.schema == STATUS_SCHEMA
    (sym,) = st.symbols
    assert sym.symbol == "INFY" and sym.last_tick_at == T0 and sym.last_price == 1.5
    assert LiveStatus.from_json_dict({}) == LiveStatus()


def test_the_fast_constructor_makes_the_same_frozen_object():
    import dataclasses

    import pytest

    from livecli.core.status import fast_constructor

    make = fast_constructor(SymbolStatus)
    args = ("INFY", "NSE", 408065, 1523.4, T0, 0.5, 10)
    got = make(*args)
    assert got == SymbolStatus(*args) and hash(got) == hash(SymbolStatus(*args))
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.ticks = 11  # type: ignore[misc]


# --- the per-symbol part as columns (SymbolTable) ---------------------------------------------
def table_sample() -> LiveStatus:
    from livecli.core.status import SymbolTable

    st = sample()
    return LiveStatus(**{**{f.name: getattr(st, f.name) for f in fields(LiveStatus)},
                         "symbols": SymbolTable.of(st.symbols)})


def test_a_symbol_table_reads_and_equals_the_objects_it_holds():
    from livecli.core.status import SymbolTable

    rows = sample().symbols
    table = SymbolTable.of(rows)
    assert len(table) == 2 and list(table) == list(rows) and table == rows and rows == table
    assert table[1] == rows[1] and table[-1] == rows[1] and table[0:1] == rows[0:1]
    assert table != rows[:1] and table != (rows[1], rows[0])
    assert hash(table) == hash(tuple(rows))
    assert table_sample() == sample() and table_sample().symbol("INFY") == rows[0]
    assert table_sample().symbol("TCS") is None
    import pytest

    with pytest.raises(IndexError):
        table[2]


def test_a_table_built_by_field_name_fills_what_is_left_out():
    from livecli.core.status import SymbolTable

    t = SymbolTable.build(symbol=["A", "B"], ticks=[3, 4])
    assert list(t) == [SymbolStatus("A", ticks=3), SymbolStatus("B", ticks=4)]
    import pytest

    with pytest.raises(ValueError, match="unknown"):
        SymbolTable.build(symbol=["A"], colour=["red"])
    with pytest.raises(ValueError, match="equal length"):
        SymbolTable([["A"], [], [], [], [], [], []])


def test_the_json_lines_form_is_the_same_from_a_table():
    assert table_sample().to_json_dict() == sample().to_json_dict()


def test_the_store_form_is_columns_and_reads_back_exactly():
    st = table_sample()
    d = json.loads(json.dumps(st.to_json_dict(symbol_columns=True)))
    cols = d["symbols"]
    assert cols["symbol"] == ["INFY", "RELIANCE"]
    assert cols["last_tick_at"] == [round((T0 + 60.25) * 1e6), None]  # whole microseconds
    assert set(cols) == {f.name for f in fields(SymbolStatus)}
    assert LiveStatus.from_json_dict(d) == st
    # A microsecond-precise receipt time survives (the JSON lines form carries microseconds).
    at = 1_765_338_361.123457
    one = LiveStatus(symbols=(SymbolStatus("X", last_tick_at=at),))
    back = LiveStatus.from_json_dict(json.loads(json.dumps(one.to_json_dict(symbol_columns=True))))
    assert abs(back.symbols[0].last_tick_at - at) < 1e-6


def test_a_damaged_store_form_reads_what_it_can():
    d = {"symbols": {"symbol": ["A", 7, "C"], "ticks": [1, 2, "x"], "last_price": [1.5]}}
    st = LiveStatus.from_json_dict(d)
    # The row without a name is left out; a bad value or a short column takes the default.
    assert [(s.symbol, s.ticks, s.last_price) for s in st.symbols] == [("A", 1, None),
                                                                       ("C", 0, None)]
