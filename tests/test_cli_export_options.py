"""`--export` is a flag, `-o/--output PATH` names the file: the export options through the real CLI.

Before, `--export` took a value only when the next word looked like a path (the CLI rewrote
argv): `candles --export mydata` exited 7 ("mydata not in the store") and `--export x.xlsx` read
as a symbol. Now the grammar has no guessing, and the likely slips are answered with the fix.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from livecli.store.writer import StoreWriter
from tests.cli import SAMPLE_TICKS, assert_one_line_error, run

T0 = 1736135100  # 2025-01-06 09:15:00 IST
INFY, RELIANCE = 408065, 738561


@pytest.fixture
def ticks_csv(tmp_path: Path) -> Path:
    p = tmp_path / "ticks.csv"
    shutil.copy(SAMPLE_TICKS, p)
    return p


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "ticks.csv")


def candles(ticks_csv: Path, *args: str):
    return run(["candles", "--ticks", str(ticks_csv), "-i", "15min", *args], ticks_csv.parent)


# --- candles -----------------------------------------------------------------------------------
def test_o_names_the_file_and_implies_export(ticks_csv):
    out = ticks_csv.parent / "mydata.parquet"
    proc = candles(ticks_csv, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"to {out} (parquet" in proc.stdout
    assert len(pd.read_parquet(out)) == 3  # one 15-minute candle per symbol
    proc = candles(ticks_csv, "--output", "long.csv", "--export")  # both together: the same
    assert proc.returncode == 0, proc.stderr
    assert files(ticks_csv.parent) == ["long.csv", "mydata.parquet"]


def test_export_alone_names_the_file_in_the_chosen_format(ticks_csv):
    proc = candles(ticks_csv, "--export", "--format", "parquet")
    assert proc.returncode == 0, proc.stderr
    name = "candles_INFY-NIFTY_50-RELIANCE_15min_2025-01-06.parquet"
    assert files(ticks_csv.parent) == [name]
    assert len(pd.read_parquet(ticks_csv.parent / name)) == 3


def test_format_wins_over_the_extension(ticks_csv):
    proc = candles(ticks_csv, "-o", "data.bin", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert (ticks_csv.parent / "data.bin").read_text().startswith('"symbol"')


def test_a_file_name_after_export_is_a_usage_error_naming_o(ticks_csv):
    proc = candles(ticks_csv, "--export", "x.xlsx")
    assert_one_line_error(proc, 2, "'x.xlsx'", "--export takes no value", "-o x.xlsx")
    proc = candles(ticks_csv, "--export", "out/c.csv")
    assert_one_line_error(proc, 2, "-o out/c.csv")
    assert files(ticks_csv.parent) == []


def test_a_bare_word_after_export_is_a_symbol_and_the_error_says_how_to_name_a_file(ticks_csv):
    proc = candles(ticks_csv, "--export", "mydata")
    assert_one_line_error(proc, 7, "mydata", "write -o mydata.csv")
    assert files(ticks_csv.parent) == []
    proc = candles(ticks_csv, "TCS")  # without --export, no hint about files
    assert_one_line_error(proc, 7, "TCS")
    assert "write -o" not in proc.stderr


def test_an_unknown_extension_is_a_usage_error_naming_the_formats(ticks_csv):
    proc = candles(ticks_csv, "-o", "x.xlsx")
    assert_one_line_error(proc, 2, "x.xlsx", ".csv", ".parquet", "--format")
    proc = candles(ticks_csv, "-o", "x.csv", "--format", "xlsx")
    assert_one_line_error(proc, 2, "xlsx", "csv", "parquet")
    assert files(ticks_csv.parent) == []


def test_format_without_an_export_is_a_usage_error(ticks_csv):
    proc = candles(ticks_csv, "--format", "parquet")
    assert_one_line_error(proc, 2, "--format parquet", "--export", "-o PATH")


def test_export_is_checked_before_anything_is_read(tmp_path):
    # A bad target fails as such even when the input does not exist.
    proc = run(["candles", "--ticks", str(tmp_path / "none.csv"), "-o", "x.xlsx"], tmp_path)
    assert_one_line_error(proc, 2, "x.xlsx")


# --- ticks -------------------------------------------------------------------------------------
@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A store with ticks recorded by the real store writer, as `stream --record` leaves it."""
    (tmp_path / "store").mkdir()
    db = tmp_path / "store" / "rec.db"
    w = StoreWriter(db, flush_interval_s=60)
    w.register_instruments({INFY: ("INFY", "NSE"), RELIANCE: ("RELIANCE", "NSE")})
    w.begin_session({"source": "SIMULATED", "mode": "full", "intervals": ["1min"]})
    w.put_ticks([(tok, T0 + i, 100.0 + i, 10 * (i + 1), None, None, None, T0 + i + 0.1)
                 for i in range(5) for tok in (INFY, RELIANCE)])
    assert w.stop(timeout=10)
    return db


def test_ticks_export_alone_names_the_file(tmp_path, recorded):
    proc = run(["ticks", "--db", str(recorded), "INFY", "--export"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert files(tmp_path) == ["ticks_INFY_2025-01-06.csv"]
    df = pd.read_csv(tmp_path / "ticks_INFY_2025-01-06.csv")
    assert len(df) == 5 and set(df["instrument_token"]) == {INFY}


def test_ticks_o_names_the_file(tmp_path, recorded):
    proc = run(["ticks", "--db", str(recorded), "-o", "rec.parquet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 10 ticks" in proc.stdout and len(pd.read_parquet(tmp_path / "rec.parquet")) == 10


def test_ticks_slips_are_answered_with_the_fix(tmp_path, recorded):
    base = ["ticks", "--db", str(recorded)]
    assert_one_line_error(run([*base, "--export", "rec.csv"], tmp_path), 2, "-o rec.csv")
    assert_one_line_error(run([*base, "-o", "rec.xlsx"], tmp_path), 2, ".csv", ".parquet")
    assert_one_line_error(run([*base, "--export", "mydata"], tmp_path), 7, "-o mydata.csv")
    assert files(tmp_path) == []
    proc = run(base, tmp_path)  # no export: the listing
    assert proc.returncode == 0 and "NSE:INFY  5 ticks" in proc.stdout
