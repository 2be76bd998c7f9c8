"""`livecli sim --fault KIND@SECONDS[+DURATION]`: a bad day rehearsed from the command line.

The real `livecli sim` in a subprocess, observed by real clients over loopback: websockets'
client (to see bytes: a text message, a cut-short frame, a TCP abort, silence, a 403), and the
real `livecli stream`, which must ride the faults out. Each test waits for the stand-in's own
"fault ..." line, then for the effect, with deadlines.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from livecli.errors import UsageError
from livecli.kite import codec
from livecli.sim.faults import FORMS, TEXT_MESSAGE, Fault, parse_fault
from tests.sim_client import SimClient
from tests.sim_proc import Proc, SimProc, clean_env, last_status

RELIANCE, INFY = 738561, 408065
DATE = "2025-12-10"


@pytest.mark.parametrize(("text", "fault"), [
    ("drop@30", Fault("drop", 30.0)),
    ("silent@10+8", Fault("silent", 10.0, 8.0)),
    (" Reject@0.5+2.25 ", Fault("reject", 0.5, 2.25)),
    ("malformed@0", Fault("malformed", 0.0)),
    ("text@1.+.5", Fault("text", 1.0, 0.5)),
])
def test_fault_specs_are_read(text, fault):
    assert parse_fault(text) == fault
    assert parse_fault(str(fault)) == fault


@pytest.mark.parametrize("text", [
    "", "drop", "drop@", "@3", "boom@3", "drop@-1", "drop@1+0", "drop@1+-2", "drop@x",
    "drop@1+x", "drop@inf", "silent@nan", "drop@1e3", "drop@1+2+3", "drop 3", "drop@3\x1b[2J",
])
def test_bad_fault_specs_name_the_accepted_forms(text):
    with pytest.raises(UsageError) as e:
        parse_fault(text)
    msg = str(e.value)
    assert "KIND@SECONDS" in msg and "\n" not in msg and "\x1b" not in msg


def test_a_bad_fault_is_a_usage_error_before_anything_listens(tmp_path):
    r = subprocess.run([sys.executable, "-m", "livecli", "sim", "--port", "0", "--api-port", "0",
                        "--fault", "drop@5", "--fault", "flood@3"], capture_output=True,
                       text=True, timeout=60, env=clean_env(tmp_path))
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"livecli: error: invalid --fault 'flood@3': {FORMS}\n"
    assert "ticker" not in r.stdout


def _malformed(payload: bytes) -> bool:
    try:
        codec.decode_frame(payload, 0.0)
    except codec.MalformedFrame:
        return True
    return False


def test_every_kind_of_fault_reaches_a_real_client(tmp_path):
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    faults = ["text@2", "malformed@3", "drop@4", "silent@6+3", "reject@11+2"]
    with SimProc(tmp_path, "--speed", "60", "--date", DATE,
                 *[a for f in faults for a in ("--fault", f)]) as sim:
        assert f"Faults scheduled: {', '.join(faults)}" in sim.lines
        url, key, token = sim.ws_url, "livecli-sim", "sim-access-token"
        with SimClient(url, key, token) as a:
            a.subscribe([RELIANCE, INFY], "full")
            assert a.until(lambda g: g.frames(), 10)

            sim.wait_line(r"fault text@2 at .*: an error text sent to 1 clients", 10)
            assert a.until(lambda g: g.text, 5)
            assert json.loads(a.got.text[0][1]) == {"type": "error", "data": TEXT_MESSAGE}

            sim.wait_line(r"fault malformed@3 at .*: the next frame to 1 clients cut short", 10)
            assert a.until(lambda g: any(_malformed(b) for b in g.frames()), 5)

            sim.wait_line(r"fault drop@4 at .*: cut 1 connections", 10)
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(1000):
                    a.ws.recv(timeout=5)
            assert closed.value.rcvd is None  # the TCP connection was cut: no close frame

        with SimClient(url, key, token) as b:
            b.subscribe([RELIANCE], "full")
            assert b.until(lambda g: g.frames(), 10)
            sim.wait_line(r"fault silent@6\+3 at .*: silent for 3 s", 10)
            b.collect(0.3)  # what was already on its way
            quiet = b.collect(1.2)
            assert quiet.binary == [] and quiet.text == []  # not even heartbeats
            assert b.until(lambda g: len(g.frames()) > len(quiet.frames()) + 2, 10)  # it resumes

            sim.wait_line(r"fault reject@11\+2 at .*: credentials refused for 2 s", 15)
            with pytest.raises(InvalidStatus) as refused:
                SimClient(url, key, token)
            assert refused.value.response.status_code == 403
            n = len(b.got.frames())
            assert b.until(lambda g: len(g.frames()) > n, 5)  # an open link is left alone
            sim.wait_line(r"fault reject@11\+2 at .*: credentials accepted again", 10)
            with SimClient(url, key, token) as c:
                c.subscribe([INFY], "full")
                assert c.until(lambda g: g.frames(), 10)
        assert sim.stop() == 0
        assert "Traceback" not in sim.stderr()


def test_livecli_stream_rides_out_a_rehearsed_bad_day(tmp_path):
    # The real client: a malformed frame is skipped, a dropped link reconnects, the candles go on.
    with SimProc(tmp_path, "--speed", "60", "--date", DATE, "--fault", "malformed@3",
                 "--fault", "drop@5") as sim:
        out = tmp_path / "stream.jsonl"
        with Proc(tmp_path, "stream", "RELIANCE", "INFY", "--jsonl", "--duration", "10",
                  "--db", str(tmp_path / "s.db"), env=sim.client_env(tmp_path),
                  stdout_file=out) as stream:
            assert stream.proc.wait(60) == 0, stream.stderr()
        sim.wait_line(r"fault drop@5 at .*: cut 1 connections", 5)
        status = last_status(out)
        assert status["source"] == "KITE"  # to livecli the stand-in is Kite
        assert status["reconnects"] >= 1 and status["malformed_frames"] >= 1
        assert status["ticks"] > 0 and status["candles_stored"] > 0
        assert sim.stop() == 0
