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
    args = ["candles", "--ticks", str(ticks_csv), "--interval", "5min", "--export", str(target)]
    if name.endswith(".data"):
        args += ["--format", fmt]
    proc = run(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert str(target) in proc.stdout and "wrote 9 5min candles" in proc.stdout
    df = pd.read_csv(target) if fmt == "csv" else pd.read_parquet(target)
    assert list(df.columns) == ["symbol", "instrument_token", "exchange", "interval", "start",
                                "open", "high", "low", "close", "volume", "oi", "ticks",
                                "partial", "synthetic", "closed", "source"]
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
        proc = run(["candles", "--ticks", str(src), "--interval", "3min", "--export", str(out)],
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
    proc = run(["candles", "--ticks", str(ticks_csv), "--export", str(tmp_path / "no/out.csv")],
               tmp_path)
    assert_one_line_error(proc, 5, "does not exist")
    assert not (tmp_path / "no").exists()


def test_existing_export_refused_unless_force(tmp_path, ticks_csv):
    out = tmp_path / "out.csv"
    out.write_text("precious\n")
    proc = run(["candles", "--ticks", str(ticks_csv), "--export", str(out)], tmp_path)
    assert_one_line_error(proc, 6, "already exists", "--force")
    assert out.read_text() == "precious\n"
    proc = run(["candles", "--ticks", str(ticks_csv), "--export", str(out), "--force"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith('"symbol","instrument_token"')
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_export_without_a_path_names_the_file_itself(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "-i", "15min", "--export"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    made = [p.name for p in tmp_path.iterdir() if p.name.startswith("candles_")]
    assert made == ["candles_INFY-NIFTY_50-RELIANCE_15min_2025-01-06.csv"]


def test_unknown_format(tmp_path, ticks_csv):
    proc = run(["candles", "--ticks", str(ticks_csv), "--export", str(tmp_path / "o.csv"),
                "--format", "xlsx"], tmp_path)
    assert_one_line_error(proc, 2, "xlsx", "csv", "parquet")
