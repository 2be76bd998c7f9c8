"""`livecli stream`'s JSON lines under pressure and in pipes, through the real command.

What a script relies on (issue 9): under pressure only tick lines are shed, counted, and the
count is in the status; every candle line and the final status line come out before exit; a
reader that goes away (`| head`) ends the stream at once, quietly. Each test runs the real CLI
against a stand-in over loopback and waits on output, never on fixed sleeps except where the
point is a reader that does not read.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_stream_e2e import SIM_DATE, cli_env, jsonl_candles, store_candles

pytestmark = pytest.mark.slow


def test_a_reader_that_goes_away_ends_the_stream_quietly(tmp_path):
    db = tmp_path / "h.db"
    t0 = time.monotonic()
    stream = subprocess.Popen(
        [sys.executable, "-m", "livecli", "stream", "RELIANCE", "INFY", "--jsonl", "--speed",
         "60", "--duration", "40", "--db", str(db), "--sim-date", SIM_DATE],
        cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    head = subprocess.Popen(["head", "-3"], stdin=stream.stdout, stdout=subprocess.PIPE)
    assert stream.stdout is not None
    stream.stdout.close()  # only head reads the pipe now: its exit closes it
    out, _ = head.communicate(timeout=60)
    try:
        rc = stream.wait(timeout=60)
    finally:
        if stream.poll() is None:
            stream.kill()
    elapsed = time.monotonic() - t0
    err = stream.stderr.read().decode() if stream.stderr else ""
    assert len(out.decode().splitlines()) == 3 and head.returncode == 0
    assert rc == 0, err
    assert elapsed < 20, f"ran on for {elapsed:.0f} s after head exited"  # --duration is 40
    # Quietly: no traceback, no broken-pipe noise; only the one note that the market is simulated.
    assert [ln for ln in err.splitlines() if not ln.startswith("livecli: note: ")] == [], err
    with sqlite3.connect(db) as con:  # and the store was closed properly
        assert con.execute("SELECT state, clean_stop FROM sessions").fetchone() == ("stopped", 1)


@pytest.fixture
def busy_standin():
    """A stand-in with 1000 extra instruments at 30x: some 10,000 ticks a second."""
    StandIn = pytest.importorskip("livecli.sim").StandIn
    with StandIn(api_key="load-key", access_token="load-token-0123456789", seed=3, speed=30,
                 date=SIM_DATE, extra_instruments=1000) as s:
        yield s


def test_under_pressure_only_tick_lines_are_shed_counted_and_nothing_else_lost(
        tmp_path, busy_standin):
    db = tmp_path / "p.db"
    env = cli_env(tmp_path, KITE_API_KEY="load-key", KITE_ACCESS_TOKEN="load-token-0123456789",
                  LIVECLI_KITE_WS_URL=busy_standin.ws_url,
                  LIVECLI_KITE_API_URL=busy_standin.api_url)
    symbols = [f"SIM{i:05d}" for i in range(1, 1001)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecli", "stream", *symbols, "--jsonl", "--duration", "8",
         "--db", str(db)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # streaming; from now on nobody reads for a while
        assert first
        peak = 0
        deadline = time.monotonic() + 5  # the point: a reader that stalls (the pipe fills)
        while time.monotonic() < deadline:
            peak = max(peak, _rss_mb(proc.pid))
            time.sleep(0.25)
        # Not communicate(): it reads the raw pipe and would lose what readline() buffered.
        rest = proc.stdout.read()
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err.decode()
    raw = [first, *rest.splitlines()]
    bad = [x for x in raw if not x.startswith(b"{") or not x.rstrip().endswith(b"}")]
    assert not bad, bad[:3]
    lines = [json.loads(x) for x in raw]
    final = lines[-1]
    assert final["type"] == "status" and final["state"] == "stopped" and final["schema"] >= 1
    ticks = sum(1 for x in lines if x["type"] == "tick")
    # Shed, and every shed tick counted: lines written + lines dropped = ticks received.
    assert final["tick_lines_dropped"] > 0
    assert ticks + final["tick_lines_dropped"] == final["ticks"]
    # Never shed: every candle line, equal to what the store holds, and the final status.
    announced = jsonl_candles(lines)
    assert len(announced) == final["candles_stored"] > 0
    assert set(store_candles(db, closed=1)) == set(announced)
    # The queue is bounded: a stalled reader costs tens of MB, not hundreds.
    assert 0 < peak < 400, peak


def _rss_mb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0
