"""The stand-in as a load-test instrument: 9000 instruments at 60x through the real commands.

`livecli sim --extra-instruments 9000 --speed 60` and `livecli stream` of all 9000 (three links
of 3000, as Kite allows) pointed at it, for 20 s. Before, heartbeats waited behind the encoding
of a 3000-instrument frame, the client's 5 s watchdog dropped every link, and each reconnect
started over: no ticks at all, a reconnect every few seconds. Now the links must stay up, ticks
must flow, and few may be late (a tick is late when livecli's candle engine has already
closed its minute, which happens when one link runs ahead of another by more than the grace).

What could be late here: the snapshot each subscription starts with, for instruments whose last
trade lies in a minute another link already closed. The stand-in advertises its speed, the
session's clock is the stand-in's, and the grace (2 s of arrival skew) spans 54 market seconds
at 60x, so the links' snapshots land inside it.
"""

from __future__ import annotations

import pytest

from tests.sim_proc import Proc, SimProc, last_status

# Both cores for the stand-in and the stream: run alone (scripts/test runs `serial` tests after
# the parallel part).
pytestmark = [pytest.mark.slow, pytest.mark.serial]

DATE = "2025-12-10"
N = 9000


def test_9000_instruments_at_60x_stream_with_under_1_percent_late_ticks(tmp_path):
    with SimProc(tmp_path, "--speed", "60", "--date", DATE, "--extra-instruments", str(N)) as sim:
        out = tmp_path / "stream.jsonl"
        symbols = [f"SIM{i:05d}" for i in range(1, N + 1)]
        with Proc(tmp_path, "stream", *symbols, "--jsonl", "--duration", "20",
                  "--db", str(tmp_path / "load.db"), env=sim.client_env(tmp_path),
                  stdout_file=out) as stream:
            assert stream.proc.wait(180) == 0, stream.stderr()[-2000:]
        status = last_status(out)
        assert sim.stop() == 0
    assert status["reconnects"] == 0, status["last_error"]
    # Ticks must flow (the defect delivered none); how many depends on the CPU the stand-in and
    # the stream get on a shared 2-core machine (0.1-1M in 20 s), so the bound is loose.
    assert status["ticks"] >= 30_000, status
    # The grace is real seconds of arrival skew, scaled by the speed the stand-in advertises
    # (CANDLES.md rule 8), and quiet is judged behind the receiving thread's backlog (rule 9):
    # 0.01-0.03% late in separate runs (the target is 1%), from 0.7-35% before. On a
    # loaded machine (CI: 54%) the stand-in's warm-up fell behind, each link then made its 3000
    # instruments' next chunk one by one and fell silent for seconds; the client rightly moved
    # its clock on and what followed was late. Tapes now make such chunks in batches
    # (tests/test_sim_market.py): with two busy loops beside it, 11 runs in a row stayed under
    # 0.6% (1 in 5 failed before). The bound stays loose; a lost wiring (27%+) still fails it.
    assert status["late_ticks"] < 0.05 * status["ticks"], status
