"""`livecli candles --ticks FILE`: rebuilding candles from a tick file through the real CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from livecli.core.batch import rebuild
from livecli.core.timeutil import iso
from livecli.store.tickfile import read_tick_file
from tests.cli import SAMPLE_TICKS, assert_one_line_error, run


@pytest.fixture
def ticks_csv(tmp_path: Path) -> Path:
    p = tmp_path / "ticks.csv"
    shutil.copy(SAMPLE_TICKS, p)
    return p


def test_table_shows_the_latest_candles_per_symbol(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "--interval", "10min"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for sym in ("RELIANCE", "INFY", "NIFTY 50"):
        assert sym in out
    assert "2025-01-06 09:15:00" in out and "2025-01-06 09:25:00" in out  # 09:15 anchoring
    assert "09:20:00" not in out


@pytest.mark.parametrize(("fmt", "name"), [("csv", "out.csv"), ("parquet", "out.parquet"),
                                            ("parquet", "out.data")])
def test_export_equals_the_engine_and_has_the_documented_columns(tmp_path, ticks_csv, fmt, name):
    target = tmp_path / name
    args = ["candles", "--ticks", str(ticks_csv), "--interval", "5min", "-o", str(target)]
    if name.endswith(".data"):
        args += ["--format", fmt]
    proc = run(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert str(target) in proc.stdout and "wrote 9 5min candles" in proc.stdout
    df = pd.read_csv(target) if fmt == "csv" else pd.read_parquet(target)
    assert list(df.columns) == ["symbol", "instrument_token", "exchange", "interval", "start",
                                "open", "high", "low", "close", "volume", "oi", "ticks",
                                "partial", "synthetic", "closed", "origin", "source"]
    assert df["source"].isna().all()  # a tick file does not say whose market it recorded
    tf = read_tick_file(ticks_csv)
    want = sorted(rebuild(tf.columns, [5], tf.names), key=lambda c: (c.instrument_token, c.start))
    assert len(df) == len(want) == 9
    if fmt == "csv":
        assert df["start"].tolist() == [iso(c.start) for c in want]
        assert all(s.endswith("+05:30") for s in df["start"])
    else:
        assert str(df["start"].dtype).startswith("datetime64") and df["start"].dt.tz is not None
        assert [int(ts.timestamp()) for ts in df["start"]] == [c.start for c in want]
        assert df["open"].dtype == "float64" and df["volume"].dtype == "int64"
        assert df["partial"].dtype == bool and df["synthetic"].dtype == bool
    assert df["close"].tolist() == [c.close for c in want]
    assert df["volume"].tolist() == [c.volume for c in want]
    assert set(df["symbol"]) == {"RELIANCE", "INFY", "NIFTY 50"}


def test_symbol_filter_and_unknown_symbol(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "--symbol", "INFY"], tmp_path)
    assert proc.returncode == 0 and "INFY" in proc.stdout and "RELIANCE" not in proc.stdout
    proc = run(["candles", "--ticks", str(ticks_csv), "--symbol", "TCS"], tmp_path)
    assert_one_line_error(proc, 7, "TCS", "RELIANCE")


def test_rows_with_unusable_values_are_skipped_counted_and_reported(tmp_path, ticks_csv):
    text = ticks_csv.read_text().splitlines()
    text[5] = text[5].replace("2025-01-06T", "not-a-time-")
    text[7] = ",".join(["x" if i == 2 else v for i, v in enumerate(text[7].split(","))])
    ticks_csv.write_text("\n".join(text) + "\n")
    proc = run(["candles", "--ticks", str(ticks_csv)], tmp_path)
    assert proc.returncode == 0
    assert "skipped 2 row(s) with unusable values" in proc.stderr
    assert "exchange_timestamp: 1" in proc.stderr and "last_price: 1" in proc.stderr


def test_epoch_seconds_and_parquet_tick_files_give_the_same_candles(tmp_path, ticks_csv):
    df = pd.read_csv(ticks_csv)
    df["exchange_timestamp"] = pd.to_datetime(df["exchange_timestamp"]).map(
        lambda t: int(t.timestamp()))
    epoch_csv = tmp_path / "epoch.csv"
    df.to_csv(epoch_csv, index=False)
    pq = tmp_path / "ticks.parquet"
    pd.read_csv(ticks_csv).to_parquet(pq)
    outs = []
    for src in (ticks_csv, epoch_csv, pq):
        out = tmp_path / f"{src.stem}-{src.suffix[1:]}.csv"
        proc = run(["candles", "--ticks", str(src), "--interval", "3min", "-o", str(out)],
                   tmp_path)
        assert proc.returncode == 0, proc.stderr
        outs.append(out.read_text())
    assert outs[0] == outs[1] == outs[2]


# --- bad input: one line, its own exit code, nothing half-written -----------------------------
def test_unknown_interval_lists_the_accepted_forms(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "--interval", "7sec"], tmp_path)
    assert_one_line_error(proc, 3, "7sec", "1min, 3min, 5min", "5minute")


def test_interval_longer_than_a_session(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "--interval", "400min"], tmp_path)
    assert_one_line_error(proc, 3, "400min", "longer than the NSE session")


def test_missing_file(tmp_path):
    proc = run(["candles", "--ticks", str(tmp_path / "nope.csv")], tmp_path)
    assert_one_line_error(proc, 4, "nope.csv", "no such tick file")


def test_file_without_a_required_column_names_it_and_the_file(tmp_path, ticks_csv):
    df = pd.read_csv(ticks_csv).drop(columns=["last_price"])
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    proc = run(["candles", "--ticks", str(bad)], tmp_path)
    assert_one_line_error(proc, 4, "bad.csv", "'last_price'")


def test_export_folder_missing(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "-o", str(tmp_path / "no/out.csv")],
               tmp_path)
    assert_one_line_error(proc, 5, "does not exist")
    assert not (tmp_path / "no").exists()


def test_existing_export_refused_unless_force(tmp_path, ticks_csv):
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    proc = run(["candles", "--ticks", str(ticks_csv), "-o", str(out)], tmp_path)
    assert_one_line_error(proc, 6, "already exists", "--force")
    assert out.read_text() == "precious\n"
    proc = run(["candles", "--ticks", str(ticks_csv), "-o", str(out), "--force"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith('"symbol","instrument_token"')
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_export_without_a_path_names_the_file_itself(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "-i", "15min", "--export"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    made = [p.name for p in tmp_path.iterdir() if p.name.startswith("candles_")]
    assert made == ["candles_INFY-NIFTY_50-RELIANCE_15min_2025-01-06.csv"]


def test_unknown_format(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "-o", str(tmp_path / "o.csv"),
                "--format", "xlsx"], tmp_path)
    assert_one_line_error(proc, 2, "xlsx", "csv", "parquet")


# --- tick files that are wrong as a whole, or rows that are (issue 9, "bad input") --------------
def _rewrite(ticks_csv: Path, target: Path, **columns) -> Path:
    """The sample recording with some columns replaced (each value a function of the old)."""
    df = pd.read_csv(ticks_csv, dtype={"exchange_timestamp": str})
    for name, fn in columns.items():
        df[name] = df[name].astype(object).map(fn)
    df.to_csv(target, index=False)
    return target


def _epoch(text: str) -> float:
    return pd.Timestamp(text).timestamp()


@pytest.mark.parametrize(
    ("fn", "words"),
    [
        (lambda t: int(_epoch(t) * 1000), ["1736135100000", "data row 1", "epoch milliseconds",
                                           "divide by 1,000"]),
        (lambda t: int(_epoch(t) * 1_000_000), ["epoch microseconds"]),
        (lambda t: t.replace("2025-", "2200-"), ["2200-01-06T09:15:00+05:30", "1970-2100"]),
        (lambda t: t.replace("2025-", "1900-"), ["1900-01-06T09:15:00+05:30", "1970-2100"]),
    ],
    ids=["epoch-ms", "epoch-us", "year-2200", "year-1900"],
)
def test_times_outside_1970_2100_are_a_file_error_naming_the_unit(tmp_path, ticks_csv, fn, words):
    bad = _rewrite(ticks_csv, tmp_path / "bad.csv", exchange_timestamp=fn)
    out = tmp_path / "out.csv"
    proc = run(["candles", "--ticks", str(bad), "-o", str(out)], tmp_path)
    assert_one_line_error(proc, 4, "bad.csv", "exchange_timestamp", *words)
    assert not out.exists()


def test_one_time_outside_the_years_names_its_row(tmp_path, ticks_csv):
    """Before: a single 2200 tick became an INFY candle dated 2063 (a 32-bit overflow)."""
    df = pd.read_csv(ticks_csv, dtype={"exchange_timestamp": str})
    df.loc[3, "exchange_timestamp"] = "2200-01-06T09:15:00+05:30"
    df.to_csv(tmp_path / "one.csv", index=False)
    proc = run(["candles", "--ticks", str(tmp_path / "one.csv")], tmp_path)
    assert_one_line_error(proc, 4, "data row 4 is outside the years 1970-2100", "remove the row")


def test_tokens_outside_32_bits_are_skipped_not_turned_into_token_0(tmp_path, ticks_csv):
    """Before: 2^70 became instrument token 0 and its ticks were candled under it."""
    df = pd.read_csv(ticks_csv, dtype={"exchange_timestamp": str, "instrument_token": object})
    infy = df["tradingsymbol"] == "INFY"
    df.loc[infy, "instrument_token"] = str(2**70)
    df.loc[df.index[0], "instrument_token"] = str(2**32)  # one past the largest token
    df.to_csv(tmp_path / "big.csv", index=False)
    out = tmp_path / "out.csv"
    proc = run(["candles", "--ticks", str(tmp_path / "big.csv"), "-o", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    n_bad = int(infy.sum()) + (0 if infy.iloc[0] else 1)
    assert f"skipped {n_bad} row(s)" in proc.stderr and f"instrument_token: {n_bad}" in proc.stderr
    got = pd.read_csv(out)
    assert 0 not in set(got["instrument_token"]) and "INFY" not in set(got["symbol"])
    assert set(got["symbol"]) == {"RELIANCE", "NIFTY 50"}


@pytest.mark.parametrize(
    ("header", "rows", "words"),
    [
        ("instrument_token,exchange_timestamp,last_price", [], ["no usable tick rows", "(no rows)"]),
        ("instrument_token,exchange_timestamp,last_price",
         ["x,2025-01-06T09:15:00+05:30,1.0", f"{2**70},2025-01-06T09:15:00+05:30,1.0",
          "738561,not-a-time,1.0", "738561,2025-01-06T09:15:00+05:30,-3"],
         ["no usable tick rows", "4 row(s) with unusable values", "instrument_token: 2",
          "exchange_timestamp: 1", "last_price: 1"]),
    ],
    ids=["header-only", "every-row-unusable"],
)
def test_a_tick_file_with_no_usable_rows_exits_11(tmp_path, header, rows, words):
    path = tmp_path / "empty.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    proc = run(["candles", "--ticks", str(path)], tmp_path)
    assert_one_line_error(proc, 11, "empty.csv", *words)
    assert proc.stdout == ""


def test_repeated_column_names_are_refused(tmp_path, ticks_csv):
    """Before: pandas renamed the second `last_price` to `last_price.1` and one was dropped."""
    lines = ticks_csv.read_text().splitlines()
    lines[0] = lines[0].replace(",oi,", ",last_price,")
    bad = tmp_path / "dup.csv"
    bad.write_text("\n".join(lines) + "\n")
    proc = run(["candles", "--ticks", str(bad)], tmp_path)
    assert_one_line_error(proc, 4, "dup.csv", "'last_price' appears more than once")
    df = pd.read_csv(ticks_csv)
    df.columns = [*df.columns[:-1], "instrument_token"]  # Parquet keeps names as written
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_arrays([pa.array(df.iloc[:, i]) for i in range(df.shape[1])],
                                        names=list(df.columns)), tmp_path / "dup.parquet")
    proc = run(["candles", "--ticks", str(tmp_path / "dup.parquet")], tmp_path)
    assert proc.returncode == 4 and "'instrument_token' appears more than once" in proc.stderr, proc.stderr


def test_a_symbol_echoed_in_an_error_has_its_control_characters_escaped(tmp_path, ticks_csv):
    sneaky = "TC\x1b[2JS\nX"
    proc = run(["candles", "--ticks", str(ticks_csv), "--symbol", sneaky], tmp_path)
    assert_one_line_error(proc, 7, "TC\\x1b[2JS\\nX not in", "RELIANCE")
    assert "\x1b" not in proc.stderr


def test_the_stores_not_in_the_store_error_escapes_control_characters(tmp_path):
    from livecli.core.candles import Candle
    from livecli.core.timeutil import at_ist
    from livecli.store.writer import StoreWriter

    db = tmp_path / "s.db"
    start = int(at_ist(pd.Timestamp("2025-01-06").date(), pd.Timestamp("09:15").time()))
    with StoreWriter(db, flush_interval_s=30) as w:
        w.register_instruments({408065: ("INFY", "NSE")})
        w.put_candles([Candle(408065, 1, start, 1.0, 2.0, 0.5, 1.5, 10, None, 3, closed=True)])
    proc = run(["candles", "--db", str(db), "TC\x07S\x1b]0;pwned\x07"], tmp_path)
    assert_one_line_error(proc, 7, "TC\\x07S\\x1b]0;pwned\\x07 not in the store", "INFY")
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr


def test_bad_from_or_to_names_the_option_the_user_typed(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "--from", "2025-13-01"], tmp_path)
    assert_one_line_error(proc, 2, "--from '2025-13-01' is not a date or time")


def test_a_file_spanning_more_than_68_years_is_refused_not_wrapped(tmp_path):
    """Before: the rebuild's 32-bit minute offsets wrapped, and a 2099 tick became a 1962 candle."""
    path = tmp_path / "span.csv"
    path.write_text("instrument_token,exchange_timestamp,last_price\n"
                    "738561,1971-01-06T09:15:00+05:30,1.0\n738561,2099-01-06T09:15:00+05:30,1.0\n")
    proc = run(["candles", "--ticks", str(path)], tmp_path)
    assert_one_line_error(proc, 4, "span more than 68 years", "1971-01-06", "2099-01-06")
