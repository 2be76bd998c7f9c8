"""`livecli stream` as a user runs it: the real command in a subprocess against the stand-in.

Every run gets its own config, data, cache and home folders in tmp_path and no KITE_* variables,
so with no credentials it streams the embedded stand-in (SIMULATED) at --speed 60 (a simulated
minute per second) on a fixed trading day. What is checked is what the issue promises:

* the candles announced in the JSON lines are the candles in the store, and the candles rebuilt
  from the recorded ticks (`livecli ticks --export` then `livecli candles --ticks`);
* SIGINT and SIGTERM lose nothing (every announced candle and every tick is stored, the forming
  candles are stored as closed=0), SIGKILL leaves a store that opens and reads;
* the dashboard on a pseudo-terminal shows its three panels;
* bad input fails in one line with its own exit code; bad Kite credentials never fall back to
  the simulation.

Waiting is on output lines with deadlines (a reader thread), never on fixed sleeps.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hermetic_env

pd = pytest.importorskip("pandas")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SIM_DATE = "2025-12-10"  # a Wednesday: a full NSE session
SYMBOLS = ["RELIANCE", "INFY", "NSE:NIFTY 50"]  # two equities and an index (no volume)
FIELDS = ("open", "high", "low", "close", "volume", "oi", "ticks", "partial", "synthetic")


# --- running the command ---------------------------------------------------------------------
def cli_env(base: Path, **extra: str) -> dict[str, str]:
    """A hermetic environment: own folders, no Kite credentials, this checkout first on the path.

    No warm start from history (issue 13, tests/test_history.py): these tests compare what the
    stream built from its ticks with the ticks it recorded.
    """
    return hermetic_env(base, **{"LIVECLI_STREAM_FETCH_HISTORY": "false", **extra})


def run_cli(base: Path, *args: str, timeout: float = 60, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livecli", *args], cwd=base, capture_output=True,
                          text=True, timeout=timeout, env=env or cli_env(base))


class Stream:
    """`livecli stream` in the background; stdout lines collected by a thread as they come."""

    def __init__(self, base: Path, *args: str, env: dict | None = None) -> None:
        self.stderr_path = base / f"stderr-{time.monotonic_ns()}.txt"
        self._err = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livecli", "stream", *args], cwd=base, env=env or cli_env(base),
            stdout=subprocess.PIPE, stderr=self._err, text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            obj = json.loads(line)
            self.lines.append(obj)
            self._q.put(obj)
        self._q.put(None)

    def wait_for(self, pred, timeout: float = 30.0) -> dict[str, Any]:
        """The first line from now on for which `pred(line)` holds; fails at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no such line within {timeout}s; stderr: {self.stderr()}"
            try:
                obj = self._q.get(timeout=left)
            except queue.Empty:
                continue
            assert obj is not None, f"stream ended early: {self.stderr()}"
            if pred(obj):
                return obj

    def finish(self, timeout: float = 30.0) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(10)
        self._err.close()
        return rc

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if not self._err.closed:
            self._err.close()


# --- reading what came out -------------------------------------------------------------------
def epoch_of(iso_text: str) -> int:
    dt = datetime.fromisoformat(iso_text)
    assert dt.utcoffset() is not None and dt.utcoffset().total_seconds() == 19_800, iso_text
    return int(dt.timestamp())


def minutes_of(interval: str) -> int:
    return int(interval.removesuffix("min"))


def jsonl_candles(lines: list[dict]) -> dict[tuple[int, int, int], dict]:
    """Closed candles announced on stdout, keyed (token, interval minutes, start epoch)."""
    out = {}
    for c in lines:
        if c["type"] != "candle":
            continue
        assert c["closed"] is True
        key = (c["instrument_token"], minutes_of(c["interval"]), epoch_of(c["start"]))
        assert key not in out, f"candle announced twice: {key}"
        out[key] = {f: c[f] for f in FIELDS}
    return out


def store_candles(db: Path, closed: int | None = 1) -> dict[tuple[int, int, int], dict]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sql = ("SELECT instrument_token, interval_min, start, open, high, low, close, volume, oi, "
               "ticks, partial, synthetic, closed FROM candles")
        out = {}
        for row in con.execute(sql):
            if closed is not None and row[12] != closed:
                continue
            vals = dict(zip(FIELDS, row[3:12], strict=True))
            vals["partial"] = bool(vals["partial"])
            vals["synthetic"] = bool(vals["synthetic"])
            out[(row[0], row[1], row[2])] = vals
        return out
    finally:
        con.close()


def store_count(db: Path, sql: str) -> Any:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def exported_candles(path: Path) -> dict[tuple[int, int, int], dict]:
    """A `livecli candles --export` file read back with pandas, keyed like the others."""
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    out = {}
    for r in df.to_dict("records"):
        start = r["start"]
        start = epoch_of(start) if isinstance(start, str) else int(start.timestamp())
        vals = {f: r[f] for f in FIELDS}
        vals["oi"] = None if pd.isna(vals["oi"]) else int(vals["oi"])
        vals["partial"] = bool(vals["partial"])
        vals["synthetic"] = bool(vals["synthetic"])
        out[(int(r["instrument_token"]), minutes_of(r["interval"]), start)] = vals
    return out


def same(a: dict, b: dict) -> bool:
    """Equal candle fields; an index's oi is null on one side and 0 or null on the other."""
    for f in FIELDS:
        x, y = a[f], b[f]
        if f == "oi" and (x is None or y is None):
            if (x or 0) != (y or 0):
                return False
            continue
        if x != y:
            return False
    return True


def assert_same_candles(got: dict, want: dict, what: str) -> None:
    assert set(got) == set(want), (
        f"{what}: missing {sorted(set(want) - set(got))[:5]}, extra {sorted(set(got) - set(want))[:5]}"
    )
    bad = [k for k in want if not same(got[k], want[k])]
    assert not bad, f"{what}: {len(bad)} candles differ, e.g. {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"


def one_clean_line(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("livecli: error: "), stderr


# --- one recorded stream shared by the comparisons ----------------------------------------------
@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("recorded")
    db = base / "s.db"
    r = run_cli(base, "stream", *SYMBOLS, "--jsonl", "--record", "--interval", "1min",
                "--interval", "5min", "--speed", "60", "--duration", "8", "--db", str(db),
                "--sim-date", SIM_DATE, timeout=90)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    return {"base": base, "db": db, "lines": lines, "stderr": r.stderr}


def test_jsonl_lines_are_ticks_candles_and_status(recorded):
    lines = recorded["lines"]
    kinds = {x["type"] for x in lines}
    assert kinds == {"tick", "candle", "status"}
    final = [x for x in lines if x["type"] == "status"][-1]
    assert final["source"] == "SIMULATED" and final["state"] == "stopped"
    assert final["intervals"] == ["1min", "5min"]
    assert final["late_ticks"] == 0 and final["bad_ticks"] == 0 and final["store_error"] is None
    assert final["future_ticks"] == 0 and final["tick_lines_dropped"] == 0
    assert final["schema"] == 1 and len(final["links"]) == 1
    ticks = [x for x in lines if x["type"] == "tick"]
    assert {t["symbol"] for t in ticks} == {"RELIANCE", "INFY", "NIFTY 50"}
    assert all(t["exchange_timestamp"].startswith(SIM_DATE) for t in ticks)
    assert all(t["exchange_timestamp"].endswith("+05:30") for t in ticks)
    assert "stopped after 8 s (--duration)" in recorded["stderr"]


def test_jsonl_candles_equal_the_store(recorded):
    announced = jsonl_candles(recorded["lines"])
    stored = store_candles(recorded["db"], closed=1)
    # 8 simulated minutes from 09:15: at least five 1-minute and one 5-minute candle per symbol.
    for iv, least in ((1, 5), (5, 1)):
        per = {}
        for tok, m, _ in announced:
            if m == iv:
                per[tok] = per.get(tok, 0) + 1
        assert len(per) == 3 and min(per.values()) >= least, (iv, per)
    assert_same_candles(stored, announced, "store (closed=1) vs JSON lines")
    final = [x for x in recorded["lines"] if x["type"] == "status"][-1]
    assert final["candles_stored"] == len(announced)


def test_candles_rebuilt_from_the_recorded_ticks_equal_the_live_ones(recorded):
    """Every candle must match, the first one included.

    The recording holds every tick the live engine applied, in arrival order, so both paths see
    the same ticks. The stand-in opens at 09:15:00 but the first tick arrives a few simulated
    seconds later: that edge is decided by CANDLES.md rule 7 from the first tick alone (before
    09:16, volume counts from zero; later, the candle is partial with that tick as the baseline)
    in both paths, so even the first candle is exact. The last candles were still forming at the
    stop: the store keeps them as closed=0 and the rebuild (which has no clock to close them)
    must make the very same candles.
    """
    base, db = recorded["base"], recorded["db"]
    announced = jsonl_candles(recorded["lines"])
    forming = store_candles(db, closed=0)
    # Stopped near 09:23: every 5-minute candle is mid-way. A 1-minute one is forming only if
    # the instrument ticked in the last minute (at the stop, those the clock passed closed).
    assert {(tok, m) for tok, m, _ in forming if m == 5} == {(t, 5) for t, _, _ in announced}
    assert not set(forming) & set(announced)
    n_ticks = sum(1 for x in recorded["lines"] if x["type"] == "tick")
    assert store_count(db, "SELECT COUNT(*) FROM ticks") == n_ticks
    for fmt in ("csv", "parquet"):
        tick_file = base / f"ticks.{fmt}"
        r = run_cli(base, "ticks", "--db", str(db), "-o", str(tick_file), "--force")
        assert r.returncode == 0, r.stderr
        assert f"wrote {n_ticks:,} ticks" in r.stdout
        for iv in ("1min", "5min"):
            out = base / f"rebuilt-{fmt}-{iv}.csv"
            r = run_cli(base, "candles", "--ticks", str(tick_file), "--interval", iv,
                        "-o", str(out), "--force")
            assert r.returncode == 0, r.stderr
            rebuilt = exported_candles(out)
            m = minutes_of(iv)
            want = {k: v for k, v in {**announced, **forming}.items() if k[1] == m}
            assert_same_candles(rebuilt, want, f"rebuilt from {fmt} ticks vs live, {iv}")


def test_candles_derived_from_the_store_equal_the_live_5min(recorded):
    """`livecli candles --db` derives 5-minute candles from the stored 1-minute ones."""
    base, db = recorded["base"], recorded["db"]
    out = base / "derived-5min.parquet"
    r = run_cli(base, "candles", "--db", str(db), "--interval", "5min", "-o", str(out),
                "--force")
    assert r.returncode == 0, r.stderr
    derived = exported_candles(out)
    live5 = {k: v for k, v in jsonl_candles(recorded["lines"]).items() if k[1] == 5}
    assert live5 and set(live5) <= set(derived)
    assert_same_candles({k: derived[k] for k in live5}, live5, "derived 5min vs live 5min")


# --- livecli ticks ---------------------------------------------------------------------------
def test_ticks_export_columns_filters_and_refusals(recorded, tmp_path):
    from livecli.store.tickfile import TICK_COLUMNS

    db = recorded["db"]
    out = tmp_path / "infy.csv"
    r = run_cli(tmp_path, "ticks", "INFY", "--db", str(db), "--from", f"{SIM_DATE}T09:16",
                "--to", f"{SIM_DATE}T09:18", "-o", str(out))
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out, dtype={"exchange_timestamp": str})
    assert tuple(df.columns) == TICK_COLUMNS
    assert set(df["tradingsymbol"]) == {"INFY"} and set(df["exchange"]) == {"NSE"}
    assert df["exchange_timestamp"].str.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+05:30").all()
    times = df["exchange_timestamp"].map(epoch_of)
    lo, hi = epoch_of(f"{SIM_DATE}T09:16:00+05:30"), epoch_of(f"{SIM_DATE}T09:18:00+05:30")
    assert len(df) > 10 and times.between(lo, hi).all()
    infy = [x for x in recorded["lines"] if x["type"] == "tick" and x["symbol"] == "INFY"
            and lo <= epoch_of(x["exchange_timestamp"]) <= hi]
    assert len(df) == len(infy)
    assert df["last_price"].tolist() == [x["last_price"] for x in infy]
    assert df["volume_traded"].tolist() == [x["volume_traded"] for x in infy]
    # The index has no volume: its column stays empty rather than a made-up zero.
    idx = tmp_path / "index.parquet"
    r = run_cli(tmp_path, "ticks", "NSE:NIFTY 50", "--db", str(db), "-o", str(idx))
    assert r.returncode == 0, r.stderr
    dfi = pd.read_parquet(idx)
    assert len(dfi) > 0 and dfi["volume_traded"].isna().all()
    assert str(dfi["exchange_timestamp"].dt.tz) in ("+05:30", "UTC+05:30")
    # An existing file is refused without --force and left as it was.
    before = out.read_bytes()
    r = run_cli(tmp_path, "ticks", "--db", str(db), "-o", str(out))
    assert r.returncode == 6 and "--force" in r.stderr
    one_clean_line(r.stderr)
    assert out.read_bytes() == before
    # Unknown symbol names what was recorded; a missing folder is an export error.
    r = run_cli(tmp_path, "ticks", "TCS", "--db", str(db), "-o", str(tmp_path / "t.csv"))
    assert r.returncode == 7 and "TCS" in r.stderr and "INFY" in r.stderr
    one_clean_line(r.stderr)
    r = run_cli(tmp_path, "ticks", "--db", str(db), "-o", str(tmp_path / "no" / "t.csv"))
    assert r.returncode == 5 and "does not exist" in r.stderr
    one_clean_line(r.stderr)
    assert not list(tmp_path.glob(".*.partial")) and not (tmp_path / "t.csv").exists()
    # Without --export: what was recorded, per instrument.
    r = run_cli(tmp_path, "ticks", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "NSE:INFY" in r.stdout and "NSE:RELIANCE" in r.stdout and "NSE:NIFTY 50" in r.stdout


def test_ticks_export_of_a_store_without_recorded_ticks_is_no_data(tmp_path):
    from livecli.core.candles import Candle
    from livecli.store.writer import StoreWriter

    db = tmp_path / "candles-only.db"
    with StoreWriter(db) as w:
        w.register_instruments({738561: ("RELIANCE", "NSE")})
        w.put_candles([Candle(738561, 1, 1_765_338_300, 10.0, 11.0, 9.0, 10.5, 100, None, 3)])
    r = run_cli(tmp_path, "ticks", "--db", str(db), "-o", str(tmp_path / "t.csv"))
    assert r.returncode == 11 and "--record" in r.stderr
    one_clean_line(r.stderr)
    assert not (tmp_path / "t.csv").exists()


# --- signals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_stream_loses_nothing(tmp_path, sig):
    # SIGHUP: the terminal closed or SSH dropped; it used to kill the stream mid-write.
    db = tmp_path / "s.db"
    s = Stream(tmp_path, "RELIANCE", "INFY", "--jsonl", "--record", "--interval", "5min",
               "--speed", "60", "--db", str(db), "--sim-date", SIM_DATE)
    try:
        # Mid-stream: after each symbol's second minute closed, while the next one is forming
        # (on a loaded machine the first minute the session sees may be 09:16, not 09:15).
        minutes: set[tuple[int, str]] = set()

        def two_minutes_each(x: dict) -> bool:
            if x["type"] == "candle" and x["interval"] == "1min":
                minutes.add((x["instrument_token"], x["start"]))
            return len(minutes) >= 4 and len({tok for tok, _ in minutes}) == 2

        s.wait_for(two_minutes_each)
        s.proc.send_signal(sig)
        rc = s.finish()
    finally:
        s.kill()
    err = s.stderr()
    assert rc == 0, err
    assert "stopped by signal" in err and "Traceback" not in err
    final = s.lines[-1]
    assert final["type"] == "status" and final["state"] == "stopped"
    announced = jsonl_candles(s.lines)
    stored = store_candles(db, closed=1)
    assert len(announced) >= 4  # two minutes for both symbols
    assert_same_candles(stored, announced, "store vs JSON lines after the signal")
    n_ticks = sum(1 for x in s.lines if x["type"] == "tick")
    assert n_ticks == final["ticks"] > 0
    assert store_count(db, "SELECT COUNT(*) FROM ticks") == n_ticks
    forming = store_candles(db, closed=0)
    # The 09:15 five-minute candles were mid-way; a forming minute exists if its symbol ticked.
    assert {(tok, m) for tok, m, _ in forming if m == 5} == {(738561, 5), (408065, 5)}
    for tok, m, start in forming:
        closed_starts = [k[2] for k in announced if k[:2] == (tok, m)]
        assert not closed_starts or start > max(closed_starts)
    assert store_count(db, "SELECT clean_stop FROM sessions ORDER BY id DESC LIMIT 1") == 1
    assert store_count(db, "SELECT state FROM sessions ORDER BY id DESC LIMIT 1") == "stopped"


def test_a_killed_stream_leaves_a_store_that_opens_and_reads(tmp_path):
    db = tmp_path / "s.db"
    s = Stream(tmp_path, "RELIANCE", "INFY", "--jsonl", "--record", "--speed", "60",
               "--db", str(db), "--sim-date", SIM_DATE)
    try:
        # Kill once the store has committed closed candles (status reports what was flushed).
        flushed = s.wait_for(lambda x: x["type"] == "status" and x["candles_stored"] >= 2)
        s.proc.send_signal(signal.SIGKILL)
        assert s.finish() == -signal.SIGKILL
    finally:
        s.kill()
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    stored = store_candles(db, closed=1)
    assert len(stored) >= flushed["candles_stored"]
    announced = jsonl_candles(s.lines)
    both = set(stored) & set(announced)
    assert len(both) >= flushed["candles_stored"]
    assert_same_candles({k: stored[k] for k in both}, {k: announced[k] for k in both},
                        "killed: stored vs announced")
    out = tmp_path / "after-kill.csv"
    r = run_cli(tmp_path, "candles", "--db", str(db), "--interval", "1min", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert len(exported_candles(out)) == sum(1 for k in stored if k[1] == 1)
    r = run_cli(tmp_path, "candles", "RELIANCE", "--db", str(db))
    assert r.returncode == 0 and "RELIANCE" in r.stdout, r.stderr


# --- the dashboard on a terminal --------------------------------------------------------------
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\r")


def run_on_pty(base: Path, args: list[str], until: str, timeout: float = 30.0
               ) -> tuple[int, str, str]:
    """Run the command with stdout on a 160x45 pseudo-terminal until regex `until` shows, then SIGINT.

    Returns (exit code, the screen bytes with ANSI codes stripped, stderr).
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 160, 0, 0))
    env = cli_env(base, COLUMNS="160", LINES="45", TERM="xterm-256color")
    err_path = base / "pty-stderr.txt"
    with err_path.open("w") as err:
        p = subprocess.Popen([sys.executable, "-m", "livecli", *args], cwd=base, env=env,
                             stdin=slave, stdout=slave, stderr=err, close_fds=True)
    os.close(slave)
    buf = b""
    try:
        deadline = time.monotonic() + timeout
        want = re.compile(until.encode())
        while not want.search(ANSI.sub(b"", buf)) and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    buf += os.read(master, 65536)
                except OSError:
                    break
        p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # drain until the child closed the terminal
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if p.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child exited and the pty closed
                break
            if not chunk:
                break
            buf += chunk
        rc = p.wait(20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        os.close(master)
    return rc, ANSI.sub(b"", buf).decode("utf-8", "replace"), err_path.read_text()


def test_dashboard_shows_its_three_panels_on_a_terminal(tmp_path):
    db = tmp_path / "s.db"
    # Wait until a closed candle is counted, so the panels have had data for a while.
    rc, screen, err = run_on_pty(tmp_path, ["stream", "RELIANCE", "INFY", "--speed", "60", "--db",
                                            str(db), "--record", "--sim-date", SIM_DATE],
                                 "candles stored [2-9]")
    assert rc == 0, err
    assert "Traceback" not in err and "stopped by signal" in err
    for panel in ("Instruments · 1min", "Latest ticks", "Connection"):
        assert panel in screen, panel
    assert "SIMULATED" in screen and "source SIMULATED" in screen
    assert re.search(r"RELIANCE\s+NSE\s+\d,\d{3}\.\d\d", screen), screen[-3000:]
    assert re.search(r"INFY\s+NSE\s+\d,\d{3}\.\d\d", screen)
    assert re.search(r"\d\d:\d\d:\d\d (RELIANCE|INFY)\s+\d,\d{3}\.\d\d", screen)  # a latest tick
    assert "time source exchange" in screen and "state connected" in screen
    assert '"type"' not in screen  # a terminal gets the dashboard, not JSON lines
    # The prices shown are the feed's: the last frame (drawn after the stop) shows RELIANCE at
    # the price of the last tick the store recorded for it.
    last = store_count(db, "SELECT last_price FROM ticks WHERE instrument_token = 738561 "
                           "ORDER BY rowid DESC LIMIT 1")
    final_frame = screen[screen.rindex("Instruments · 1min"):]
    assert re.search(rf"RELIANCE\s+NSE\s+{re.escape(f'{last:,.2f}')}", final_frame), final_frame


def test_dashboard_warns_that_quote_mode_is_timed_by_receive_time(tmp_path):
    rc, screen, err = run_on_pty(tmp_path, ["stream", "RELIANCE", "--mode", "quote", "--speed", "60",
                                            "--db", str(tmp_path / "s.db"), "--sim-date", SIM_DATE],
                                 r"\d\d:\d\d:\d\d RELIANCE +\d")
    assert rc == 0, err
    flat = " ".join(screen.split())
    assert "mode quote: Kite sends no exchange timestamp" in flat
    assert "time source receive time" in flat and "mode quote" in flat


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["RELIANCEE"], 7, ["RELIANCEE", "closest", "NSE:RELIANCE"]),
        (["RELIANCE", "--interval", "7x"], 3, ["7x", "45min"]),
        (["RELIANCE", "--interval", "500min"], 3, ["500min"]),
        (["RELIANCE", "--mode", "depth"], 2, ["--mode", "depth", "full"]),
        (["RELIANCE", "--speed", "0"], 2, ["--speed"]),
        (["RELIANCE", "--db", "{tmp}/missing/s.db"], 10, ["missing", "does not exist"]),
        ([f"S{i}" for i in range(9001)], 8, ["9001", "9000"]),
    ],
    ids=["unknown-symbol", "bad-interval", "interval-too-long", "bad-mode", "bad-speed",
         "db-folder-missing", "too-many-instruments"],
)
def test_bad_input_fails_in_one_line(tmp_path, args, code, words):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--db" not in args:
        args += ["--db", str(tmp_path / "s.db")]
    t0 = time.monotonic()
    r = run_cli(tmp_path, "stream", *args, "--jsonl", "--duration", "30", timeout=60)
    assert r.returncode == code, r.stderr
    one_clean_line(r.stderr)
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    assert r.stdout == ""  # nothing streamed
    assert time.monotonic() - t0 < 20  # refused up front, not after --duration
    assert not (tmp_path / "s.db").exists()  # nothing half-written


# --- real Kite credentials: never a silent simulation -----------------------------------------
KEY = "kite-test-key"
GOOD = "good-access-token-0123456789"
BAD = "bad-access-token-9876543210"


@pytest.fixture
def kite_standin():
    StandIn = pytest.importorskip("livecli.sim").StandIn
    with StandIn(api_key=KEY, access_token=GOOD, seed=5, speed=60, date=SIM_DATE) as s:
        yield s


def kite_env(base: Path, standin, token: str) -> dict[str, str]:
    return cli_env(base, KITE_API_KEY=KEY, KITE_ACCESS_TOKEN=token,
                   LIVECLI_KITE_WS_URL=standin.ws_url, LIVECLI_KITE_API_URL=standin.api_url)


@pytest.mark.parametrize("case", ["wrong-token", "token-revoked"])
def test_bad_kite_credentials_fail_fast_and_never_simulate(tmp_path, kite_standin, case):
    token = BAD if case == "wrong-token" else GOOD
    if case == "token-revoked":
        kite_standin.reject_auth(True)
    t0 = time.monotonic()
    r = run_cli(tmp_path, "stream", "RELIANCE", "--jsonl", "--duration", "30", "--db",
                str(tmp_path / "s.db"), env=kite_env(tmp_path, kite_standin, token), timeout=60)
    elapsed = time.monotonic() - t0
    assert r.returncode == 12, r.stderr
    one_clean_line(r.stderr)
    assert "livecli login" in r.stderr
    assert token not in r.stderr and token not in r.stdout  # never printed in full
    assert "SIMULATED" not in r.stdout
    assert elapsed < 15, elapsed


def test_good_kite_credentials_stream_from_kite(tmp_path, kite_standin):
    db = tmp_path / "s.db"
    r = run_cli(tmp_path, "stream", "RELIANCE", "INFY", "--jsonl", "--duration", "3", "--db",
                str(db), env=kite_env(tmp_path, kite_standin, GOOD), timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    statuses = [x for x in lines if x["type"] == "status"]
    assert statuses and all(x["source"] == "KITE" for x in statuses)
    assert statuses[-1]["ticks"] > 0 and statuses[-1]["state"] == "stopped"
    assert kite_standin.connections_accepted >= 1
    assert GOOD not in r.stdout and GOOD not in r.stderr
    assert store_count(db, "SELECT source FROM sessions ORDER BY id DESC LIMIT 1") == "KITE"


def test_unknown_symbol_with_kite_credentials_connects_nothing(tmp_path, kite_standin):
    r = run_cli(tmp_path, "stream", "RELIANCE", "NOSUCHSYM", "--jsonl", "--duration", "30",
                "--db", str(tmp_path / "s.db"), env=kite_env(tmp_path, kite_standin, GOOD))
    assert r.returncode == 7, r.stderr
    one_clean_line(r.stderr)
    assert "NOSUCHSYM" in r.stderr
    assert kite_standin.connections_accepted == 0  # the ticker was never opened
    assert not (tmp_path / "s.db").exists()


def test_quote_mode_in_the_simulated_market_times_ticks_by_the_markets_clock(tmp_path):
    # Quote packets carry no time, so ticks take their receive time; in the simulated market that
    # is the market's session clock, so candles form on the simulated day whatever the hour here.
    proc = run_cli(tmp_path, "stream", "RELIANCE", "--mode", "quote", "--jsonl", "--speed", "60",
                   "--sim-date", SIM_DATE, "--duration", "4", "--db", str(tmp_path / "q.db"),
                   timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    candles = [ln for ln in lines if ln["type"] == "candle"]
    assert candles, proc.stderr
    assert {c["start"][:10] for c in candles} == {SIM_DATE}
    # The first minute the session saw: 09:15, or a little later on a loaded machine (the
    # market runs at 60x from the moment the stand-in starts); never the wall clock's hour.
    # (Compared without the "+05:30": a string with it sorts after the same minute without.)
    assert f"{SIM_DATE}T09:15:00" <= candles[0]["start"][:19] <= f"{SIM_DATE}T09:17:00", \
        candles[0]
    ticks = [ln for ln in lines if ln["type"] == "tick"]
    assert ticks and all(t["exchange_timestamp"] is None for t in ticks)


def test_config_file_settings_apply_unless_a_flag_is_given(tmp_path):
    (tmp_path / "livecli.toml").write_text('[stream]\nintervals = ["3min"]\nmode = "quote"\n')
    args = ("stream", "RELIANCE", "--jsonl", "--speed", "60", "--sim-date", SIM_DATE,
            "--duration", "1.5", "--db", str(tmp_path / "c.db"))
    proc = run_cli(tmp_path, *args, timeout=60)
    assert proc.returncode == 0, proc.stderr
    status = [json.loads(ln) for ln in proc.stdout.splitlines() if '"type": "status"' in ln][-1]
    assert (status["mode"], status["intervals"]) == ("quote", ["1min", "3min"])
    proc = run_cli(tmp_path, *args, "--mode", "full", "--interval", "5min", timeout=60)
    assert proc.returncode == 0, proc.stderr
    status = [json.loads(ln) for ln in proc.stdout.splitlines() if '"type": "status"' in ln][-1]
    assert (status["mode"], status["intervals"]) == ("full", ["1min", "5min"])


def test_a_store_that_cannot_be_written_at_shutdown_is_an_error_not_a_silent_loss(tmp_path):
    db = tmp_path / "locked.db"
    stream = Stream(tmp_path, "RELIANCE", "--jsonl", "--speed", "60", "--sim-date", SIM_DATE,
                    "--duration", "2", "--db", str(db))
    try:
        stream.wait_for(lambda ln: ln["type"] == "status")  # the store is open and written
        blocker = sqlite3.connect(db, timeout=1, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the store from now on
        try:
            rc = stream.finish(timeout=60)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    finally:
        stream.kill()
    assert rc == 10, stream.stderr()
    err = [ln for ln in stream.stderr().splitlines() if ln.startswith("livecli: error:")]
    assert len(err) == 1 and "could not be written" in err[0] and "Traceback" not in stream.stderr()
