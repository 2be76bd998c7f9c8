"""One store, one owner, one source, and a store that cannot be written stops the stream.

The real `livecli stream` in subprocesses against the embedded stand-in (simulated market at
--speed 60 on a fixed day), or against a stand-in posing as Kite (credentials and URLs in the
environment), writing real SQLite stores in tmp_path:

* a second stream on a store that a stream is writing is refused at once (exit 10, one line
  naming the holder's pid) and changes nothing; before, it overwrote complete candles;
* a SIGKILLed stream leaves no lock behind: the next stream starts at once;
* a store keeps to the source that first wrote it: the other source is refused (exit 10);
  `candles` and exports say which source a store holds;
* a store that cannot be written (a real file-size limit, RLIMIT_FSIZE, which binds root as
  well: SQLite's writes fail with EFBIG) stops the stream within seconds with exit 10, one
  warning and one error line, and the session row marked failed.

Waiting is on output lines with deadlines, never on fixed sleeps.
"""

from __future__ import annotations

import csv
import json
import queue
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from livecli.store.meta import store_source
from tests.cli import hermetic_env

pytestmark = pytest.mark.slow

SIM_DATE = "2025-12-10"  # a Wednesday: a full NSE session
KEY = "kite-test-key"
TOKEN = "good-access-token-0123456789"


class Stream:
    """`livecli stream` in the background; its stdout JSON lines and stderr lines, timestamped."""

    def __init__(self, base: Path, *args: str, env: dict[str, str] | None = None,
                 preexec_fn=None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livecli", "stream", *args], cwd=base,
            env=env or hermetic_env(base), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, preexec_fn=preexec_fn,
        )
        self.lines: list[dict[str, Any]] = []
        self.err: list[tuple[float, str]] = []
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._out, daemon=True),
                         threading.Thread(target=self._errs, daemon=True)]
        for t in self._threads:
            t.start()

    def _out(self) -> None:
        for line in self.proc.stdout:
            obj = json.loads(line)
            self.lines.append(obj)
            self._q.put(obj)
        self._q.put(None)

    def _errs(self) -> None:
        for line in self.proc.stderr:
            self.err.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, pred, timeout: float = 30.0) -> dict[str, Any]:
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
        for t in self._threads:
            t.join(10)
        return rc

    def stderr(self) -> str:
        return "\n".join(line for _, line in self.err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def run_cli(base: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "livecli", *args], cwd=base,
                          env=env or hermetic_env(base), capture_output=True, text=True,
                          timeout=timeout)


def sim_stream_args(db: Path, *extra: str) -> list[str]:
    return ["RELIANCE", "--sim", "--jsonl", "--speed", "60", "--sim-date", SIM_DATE,
            "--db", str(db), *extra]


def stored(db: Path) -> dict[tuple[int, int, int], tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {(r[0], r[1], r[2]): r[3:] for r in con.execute(
            "SELECT instrument_token, interval_min, start, open, high, low, close, volume, ticks, "
            "partial FROM candles WHERE closed = 1")}
    finally:
        con.close()


def announced(lines: list[dict]) -> dict[tuple[int, int, int], tuple]:
    from datetime import datetime

    out = {}
    for c in lines:
        if c["type"] == "candle":
            start = int(datetime.fromisoformat(c["start"]).timestamp())
            out[(c["instrument_token"], int(c["interval"].removesuffix("min")), start)] = (
                c["open"], c["high"], c["low"], c["close"], c["volume"], c["ticks"],
                int(c["partial"]))
    return out


def sql(db: Path, query: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livecli: error: "), stderr
    return lines[0]


# --- one owner ---------------------------------------------------------------------------------
def test_a_second_stream_on_a_store_is_refused_and_overwrites_nothing(tmp_path):
    db = tmp_path / "s.db"
    first = Stream(tmp_path, *sim_stream_args(db))
    try:
        first.wait_for(lambda x: x["type"] == "status" and x["candles_stored"] >= 3)
        # Another market (another seed) on the same store: before, its candles replaced the
        # first stream's complete ones minute by minute.
        t0 = time.monotonic()
        second = run_cli(tmp_path, "stream", *sim_stream_args(db, "--seed", "2", "--duration", "5"))
        elapsed = time.monotonic() - t0
        assert second.returncode == 10, (second.returncode, second.stderr)
        line = one_error_line(second.stderr)
        assert f"pid {first.proc.pid}" in line and str(db) in line and "--db" in line
        assert "livecli stream --attach URL" in line  # the way to share a stream
        assert second.stdout == "" and elapsed < 10  # refused before anything connected
        first.wait_for(lambda x: x["type"] == "status" and x["candles_stored"] >= 6)
        first.proc.send_signal(signal.SIGINT)
        assert first.finish() == 0, first.stderr()
    finally:
        first.kill()
    assert stored(db) == announced(first.lines) and len(announced(first.lines)) >= 6
    assert sql(db, "SELECT pid, state FROM sessions") == [(first.proc.pid, "stopped")]
    assert not (tmp_path / "s.db.lock").exists()


def test_a_killed_stream_leaves_no_lock_behind(tmp_path):
    db = tmp_path / "s.db"
    first = Stream(tmp_path, *sim_stream_args(db))
    try:
        first.wait_for(lambda x: x["type"] == "status" and x["candles_stored"] >= 1)
        first.proc.send_signal(signal.SIGKILL)
        assert first.finish() == -signal.SIGKILL
    finally:
        first.kill()
    second = run_cli(tmp_path, "stream", *sim_stream_args(db, "--duration", "2"))
    assert second.returncode == 0, second.stderr
    assert [r[0] for r in sql(db, "SELECT pid FROM sessions ORDER BY id")] == [
        first.proc.pid, second_pid(second)]


def second_pid(res: subprocess.CompletedProcess[str]) -> int:
    statuses = [json.loads(x) for x in res.stdout.splitlines() if '"type": "status"' in x]
    return statuses[-1]["pid"]


# --- one source --------------------------------------------------------------------------------
@pytest.fixture
def kite_env(tmp_path):
    StandIn = pytest.importorskip("livecli.sim").StandIn
    with StandIn(api_key=KEY, access_token=TOKEN, seed=5, speed=60, date=SIM_DATE) as s:
        yield hermetic_env(tmp_path, KITE_API_KEY=KEY, KITE_ACCESS_TOKEN=TOKEN,
                           LIVECLI_KITE_WS_URL=s.ws_url, LIVECLI_KITE_API_URL=s.api_url)


def test_a_store_keeps_to_the_source_that_first_wrote_it(tmp_path, kite_env):
    sim_db, kite_db = tmp_path / "sim.db", tmp_path / "kite.db"
    r = run_cli(tmp_path, "stream", *sim_stream_args(sim_db, "--duration", "3"))
    assert r.returncode == 0, r.stderr
    before = stored(sim_db), sql(sim_db, "SELECT COUNT(*) FROM sessions")
    assert before[0]
    # Kite into the simulated store: refused before it connects, and nothing written.
    r = run_cli(tmp_path, "stream", "RELIANCE", "--jsonl", "--duration", "3", "--db",
                str(sim_db), env=kite_env)
    assert r.returncode == 10, (r.returncode, r.stderr)
    line = one_error_line(r.stderr)
    assert "holds SIMULATED candles" in line and "KITE" in line and "--db" in line
    assert r.stdout == ""  # refused before anything connected
    assert (stored(sim_db), sql(sim_db, "SELECT COUNT(*) FROM sessions")) == before
    # And the other way round.
    r = run_cli(tmp_path, "stream", "RELIANCE", "--jsonl", "--duration", "3", "--db",
                str(kite_db), env=kite_env)
    assert r.returncode == 0, r.stderr
    r = run_cli(tmp_path, "stream", *sim_stream_args(kite_db, "--duration", "3"))
    assert r.returncode == 10 and "holds KITE candles" in one_error_line(r.stderr)
    # The read side says whose candles a store holds: the table's title, the export's column.
    for db, source in ((sim_db, "SIMULATED"), (kite_db, "KITE")):
        r = run_cli(tmp_path, "candles", "--db", str(db))
        assert r.returncode == 0, r.stderr
        assert f"({source})" in " ".join(r.stdout.split())
        cwd = tmp_path / source
        cwd.mkdir()
        r = run_cli(cwd, "candles", "--db", str(db), "--format", "csv", "--export")
        assert r.returncode == 0, r.stderr
        (out,) = cwd.glob("candles_*.csv")
        header, *rows = list(csv.reader(out.read_text().splitlines()))
        assert header[-3:] == ["closed", "origin", "source"]
        assert rows and {row[-1] for row in rows} == {source}


# --- a store that cannot be written ------------------------------------------------------------
def test_a_store_that_cannot_be_written_stops_the_stream_within_seconds(tmp_path):
    db = tmp_path / "s.db"

    def small_files() -> None:  # files may not grow past 300 KB: SQLite's writes get EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (300 * 1024, resource.RLIM_INFINITY))

    # No warm start: its candles (2,250 minutes here) come in one transaction bigger than the
    # limit, so nothing at all would reach the store; live candles and ticks fill it by parts.
    s = Stream(tmp_path, "RELIANCE", "INFY", "TCS", "--sim", "--record", "--jsonl", "--speed",
               "60", "--sim-date", SIM_DATE, "--duration", "25", "--db", str(db),
               "--no-history", preexec_fn=small_files)
    try:
        rc = s.finish(timeout=60)
        ended = time.monotonic()
    finally:
        s.kill()
    assert rc == 10, (rc, s.stderr())
    assert "Traceback" not in s.stderr()
    warnings = [(t, x) for t, x in s.err if x.startswith("livecli: warning:")]
    errors = [x for _, x in s.err if x.startswith("livecli: error:")]
    assert len(warnings) == 1 and "cannot write the store" in warnings[0][1], s.stderr()
    assert len(errors) == 1 and "gave up" in errors[0] and str(db) in errors[0], s.stderr()
    assert len(s.err) == 2, s.stderr()  # before: a warning twice a second until --duration
    assert ended - warnings[0][0] < 8, "it stops within seconds of the first failed write"
    final = s.lines[-1]
    assert final["type"] == "status" and final["state"] != "connected"
    session = sql(db, "SELECT state, clean_stop, ended_at IS NOT NULL FROM sessions")
    assert session == [("failed", 0, 1)]
    # What did reach the store is what was announced.
    got, want = stored(db), announced(s.lines)
    assert got and all(want.get(k) == v for k, v in got.items())


def test_the_simulated_market_and_kite_have_default_stores_of_their_own(tmp_path, kite_env):
    """Without --db, a simulated stream writes livecli-sim.db and a Kite one livecli.db: the
    issue's defect was `stream --sim` overwriting the day's real candles in the one default."""
    data = tmp_path / "data"
    sim_args = ["RELIANCE", "--sim", "--jsonl", "--speed", "60", "--sim-date", SIM_DATE,
                "--duration", "3"]
    r = run_cli(tmp_path, "stream", *sim_args)
    assert r.returncode == 0, r.stderr
    assert (data / "livecli-sim.db").exists() and not (data / "livecli.db").exists()
    # Kite (here the stand-in posing as Kite, credentials in the environment) gets its own.
    r = run_cli(tmp_path, "stream", "RELIANCE", "--jsonl", "--duration", "3", env=kite_env)
    assert r.returncode == 0, r.stderr
    assert (data / "livecli.db").exists()
    assert store_source(data / "livecli.db") == "KITE"
    assert store_source(data / "livecli-sim.db") == "SIMULATED"
    # With Kite credentials configured, --sim still writes the simulated store, never Kite's.
    before = stored(data / "livecli.db")
    r = run_cli(tmp_path, "stream", *sim_args, env=kite_env)
    assert r.returncode == 0, r.stderr
    assert stored(data / "livecli.db") == before
    # And `candles` without --db reads the store of the source a stream would use now.
    r = run_cli(tmp_path, "candles")
    assert r.returncode == 0 and "(SIMULATED)" in " ".join(r.stdout.split()), r.stderr
    r = run_cli(tmp_path, "candles", env=kite_env)
    assert r.returncode == 0 and "(KITE)" in " ".join(r.stdout.split()), r.stderr
