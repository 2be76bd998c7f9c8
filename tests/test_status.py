"""`livecli status`: running, stopped, stopped-unexpectedly and no session, through the real CLI.

A live StoreWriter in this test process stands for a running stream (its pid is alive and its
heartbeat fresh); the status command runs in a subprocess and judges it from the store alone.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livecli.core.status import LiveStatus, SymbolStatus
from livecli.store.status import STALE_AFTER_S, judge_state, status_from_row
from livecli.store.writer import StoreWriter

INFY = 408065


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livecli", *args], env=_env(cwd), cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def _env(cwd: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(cwd),
        "LIVECLI_CONFIG_DIR": str(cwd / "cfg"), "LIVECLI_DATA_DIR": str(cwd / "data"),
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def status_json(db: Path, cwd: Path) -> dict:
    res = run_cli(["status", "--json", "--db", str(db)], cwd)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def running_writer(db: Path, **info) -> StoreWriter:
    w = StoreWriter(db, flush_interval_s=0.05)
    w.register_instruments({INFY: ("INFY", "NSE")})
    w.begin_session({"source": "SIMULATED", "mode": "full", "intervals": ["1min", "5min"],
                     "symbols": ["INFY"], **info})
    now = time.time()
    w.put_status(LiveStatus(  # what a session hands the writer: the typed status
        source="SIMULATED", state="connected", mode="full", intervals=("1min", "5min"),
        reconnects=1, ticks_per_s=42.5, ticks=1234,
        last_error="connection reset (1006)", late_ticks=2, bad_ticks=1, future_ticks=7,
        symbols=(SymbolStatus("INFY", "NSE", INFY, 1523.4, now - 3.0, 3.0, 12),),
    ))
    assert w.flush()
    return w


def test_running_session(tmp_path):
    db = tmp_path / "s.db"
    w = running_writer(db)
    try:
        st = status_json(db, tmp_path)
        assert st["state"] == "connected" and st["reason"] is None
        assert st["pid"] == os.getpid() and st["source"] == "SIMULATED"
        assert st["ended_at"] is None and st["reconnects"] == 1 and st["ticks_per_s"] == 42.5
        assert st["last_error"] == "connection reset (1006)"
        assert st["intervals"] == ["1min", "5min"] and st["started_at"].endswith("+05:30")
        (sym,) = st["symbols"]
        assert sym["symbol"] == "INFY" and sym["last_price"] == 1523.4
        assert 3.0 <= sym["age_s"] < 30
        assert st["future_ticks"] == 7 and st["late_ticks"] == 2 and st["schema"] >= 1
        res = run_cli(["status", "--db", str(db)], tmp_path)
        assert res.returncode == 0
        for text in ("connected", "SIMULATED", str(os.getpid()), "INFY", "1,523.40", "42.5",
                     "connection reset", "7 future"):
            assert text in res.stdout, text
    finally:
        w.stop()


def test_a_store_row_written_before_the_column_form_still_reads(tmp_path):
    # Stores written before issue 15 hold per_symbol keyed by symbol; today's writer stores one
    # list per field. `status` reads both; both show the same symbol.
    db = tmp_path / "s.db"
    w = running_writer(db)
    try:
        raw = sqlite3.connect(db).execute("SELECT per_symbol FROM sessions").fetchone()[0]
        assert json.loads(raw)["symbol"] == ["INFY"]  # the column form
        w.put_status({"state": "connected", "symbols": {"INFY": {
            "exchange": "NSE", "instrument_token": INFY, "last_price": 1601.5,
            "last_tick_at": None, "last_tick_age_s": None, "ticks": 40}}})
        assert w.flush()
        raw = sqlite3.connect(db).execute("SELECT per_symbol FROM sessions").fetchone()[0]
        assert "INFY" in json.loads(raw)  # the keyed form
        (sym,) = status_json(db, tmp_path)["symbols"]
        assert sym["symbol"] == "INFY" and sym["last_price"] == 1601.5
    finally:
        w.stop()



def test_a_status_without_its_symbols_leaves_the_stored_table(tmp_path):
    """`put_status(symbols=False)` (a session of thousands of instruments, between its
    per-symbol refreshes) writes the rest of the status and keeps the table stored; a table
    given just before, and not yet written, is still written."""
    db = tmp_path / "s.db"
    w = running_writer(db)  # INFY at 1523.4, 1234 ticks

    def status(price: float, ticks: int) -> LiveStatus:
        return LiveStatus(source="SIMULATED", state="connected", mode="full", ticks=ticks,
                          symbols=(SymbolStatus("INFY", "NSE", INFY, price, time.time(), 0.0,
                                                ticks),))

    def shown() -> tuple[int, float]:
        st = status_json(db, tmp_path)
        (sym,) = st["symbols"]
        return st["ticks"], sym["last_price"]

    try:
        w.put_status(status(1600.0, 1500), symbols=False)
        assert w.flush()
        assert shown() == (1500, 1523.4)
        w.put_status(status(1700.0, 1600))
        w.put_status(status(1800.0, 1700), symbols=False)  # before the writer took the one above
        assert w.flush()
        assert shown() == (1700, 1700.0)
        w.put_status(status(1900.0, 1800))
        assert w.flush()
        assert shown() == (1800, 1900.0)
    finally:
        w.stop()

def test_stopped_after_clean_stop(tmp_path):
    db = tmp_path / "s.db"
    w = running_writer(db)
    w.put_status({"state": "connected", "ticks": 2000})
    w.end_session()
    assert w.stop()
    st = status_json(db, tmp_path)
    assert st["state"] == "stopped" and st["clean_stop"] is True and st["ended_at"] is not None
    assert st["ticks"] == 2000 and st["uptime_s"] < 60


def test_stopped_unexpectedly_when_the_process_is_gone(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=30)
    dead_pid = int(gone.stdout)
    db = tmp_path / "s.db"
    w = running_writer(db, pid=dead_pid)
    try:
        st = status_json(db, tmp_path)
    finally:
        w.stop()
    assert st["pid"] == dead_pid and st["state"] == "stopped-unexpectedly"
    assert st["reported_state"] == "connected" and f"process {dead_pid} is gone" in st["reason"]


def test_stale_status_is_stopped_unexpectedly():
    now = 1_800_000_000.0
    row = {"id": 1, "pid": os.getpid(), "host": None, "source": "KITE", "state": "running",
           "started_at": now - 100, "updated_at": now - STALE_AFTER_S - 1, "ended_at": None,
           "clean_stop": 0}
    assert judge_state(row, now)[0] == "stopped-unexpectedly"
    assert judge_state({**row, "updated_at": now - 1}, now) == ("running", None)
    assert judge_state({**row, "ended_at": now, "clean_stop": 0, "state": "failed"}, now)[0] == "failed"
    st = status_from_row("s.db", {**row, "updated_at": now - 50}, now)
    assert st.uptime_s == 50 and not st.running


def test_no_session_and_no_store(tmp_path):
    db = tmp_path / "s.db"
    StoreWriter(db).stop()
    res = run_cli(["status", "--db", str(db)], tmp_path)
    assert res.returncode == 11 and "no stream session recorded" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stdout == ""
    res = run_cli(["status"], tmp_path)  # the default store in LIVECLI_DATA_DIR: none yet
    # No Kite credentials: the default store is the simulated market's own.
    assert res.returncode == 11 and str(tmp_path / "data" / "livecli-sim.db") in res.stderr
    assert not (tmp_path / "data" / "livecli-sim.db").exists()


def test_follow_json_and_plain_lines(tmp_path):
    db = tmp_path / "s.db"
    w = running_writer(db)
    try:
        res = run_cli(["status", "--db", str(db), "--follow", "--json", "--count", "3",
                       "--every", "0.05"], tmp_path)
        assert res.returncode == 0, res.stderr
        docs = [json.loads(line) for line in res.stdout.splitlines()]
        assert len(docs) == 3 and all(d["state"] == "connected" for d in docs)
        res = run_cli(["status", "--db", str(db), "--follow", "--count", "2", "--every", "0.05"],
                      tmp_path)
        lines = res.stdout.splitlines()
        assert res.returncode == 0 and len(lines) == 2
        assert all(" connected pid=" in line and "source=SIMULATED" in line for line in lines)
        assert all(" future_ticks=7 " in line for line in lines)
    finally:
        w.stop()


def test_follow_ends_with_exit_0_on_ctrl_c(tmp_path):
    db = tmp_path / "s.db"
    w = running_writer(db)
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecli", "status", "--db", str(db), "--follow", "--every", "0.05"],
        env=_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proc.stdout.readline()
        assert " connected pid=" in first
        w.put_status({"state": "reconnecting"})
        assert w.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the next lines pick up the new state
            if " reconnecting pid=" in proc.stdout.readline():
                break
        else:
            pytest.fail("follow never showed the new state")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
        w.stop()
