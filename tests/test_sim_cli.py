"""`livecli sim` as a user runs it: a real subprocess that prints where it listens and stops on signals."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from livecli.config import mask


def _start(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "livecli", "sim", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _read_until(p: subprocess.Popen, marker: str, timeout: float = 20) -> str:
    out = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        out.append(line)
        if marker in line:
            break
    return "".join(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sim_prints_urls_serves_and_stops_cleanly(sig):
    p = _start("--port", "0", "--api-port", "0", "--speed", "60", "--date", "2025-12-10")
    try:
        text = _read_until(p, "Ctrl-C")
        ws = re.search(r"LIVECLI_KITE_WS_URL=(ws://127\.0\.0\.1:\d+)", text)
        api = re.search(r"LIVECLI_KITE_API_URL=(http://127\.0\.0\.1:\d+)", text)
        assert ws and api, text
        assert "KITE_API_KEY=livecli-sim" in text and "KITE_ACCESS_TOKEN=" in text
        assert "2025-12-10" in text
        import requests

        r = requests.get(api.group(1) + "/instruments/NSE", timeout=10)
        assert r.status_code == 200 and "RELIANCE" in r.text
        from tests.sim_client import SimClient

        with SimClient(ws.group(1), "livecli-sim", "sim-access-token") as c:
            c.subscribe([738561], "full")
            assert c.until(lambda g: g.ticks(), 5)
        p.send_signal(sig)
        rest, err = p.communicate(timeout=20)
        assert p.returncode == 0, err
        assert "stopped" in rest and "Traceback" not in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)


def test_sim_bad_date_is_a_usage_error():
    r = subprocess.run([sys.executable, "-m", "livecli", "sim", "--date", "10-12-2025"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--date" in r.stderr and "YYYY-MM-DD" in r.stderr


def test_sim_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "livecli", "sim", "--port", str(port),
                            "--api-port", "0"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert str(port) in r.stderr and "free" in r.stderr


def test_masked_credentials_are_not_printed_in_full():
    p = _start("--port", "0", "--api-port", "0", "--access-token", "my-very-secret-token-123")
    try:
        text = _read_until(p, "Ctrl-C")
        assert "my-very-secret-token-123" not in text and mask("my-very-secret-token-123") in text
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=20)
        assert p.returncode == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
