"""The engine's compiled kernel (livecli/core/kernel.py): who loads it, and how to choose.

That it gives the numpy path's candles is shown by the rule and property tests, which run on
both paths (conftest.engine_kernel); these tests show that a session of many instruments takes it
without being asked, that a session of a few never pays numba's memory and load time for it, and
that `stream.engine` overrides both ways. Each runs a real session against the stand-in over
loopback, in a fresh interpreter (what is imported is the point).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from livecli.config.schema import KERNEL_MIN_INSTRUMENTS
from tests.conftest import REPO, hermetic_env

numba = pytest.importorskip("numba", reason="the compiled kernel needs numba")

PROBE = textwrap.dedent("""
    import json, sys, threading
    from livecli.core import kernel
    from livecli.session.live import LiveSession
    from livecli.sim import StandIn

    n = int(sys.argv[1])
    with StandIn(api_key="k-key", access_token="k-token-0123456789", speed=60,
                 date="2025-01-06", extra_instruments=n) as sim:
        s = LiveSession(intervals=["1min"], db=False, overrides={
            "kite.api_key": "k-key", "kite.access_token": "k-token-0123456789",
            "kite.ws_url": sim.ws_url, "kite.api_url": sim.api_url,
            "stream.fetch_history": False})
        closed = threading.Event()
        s.on_candle_close("1min", lambda tok, c: closed.set())
        s.start([f"SIM{i:05d}" for i in range(1, n + 1)])
        try:
            got = closed.wait(60)
            for t in threading.enumerate():
                if t.name == "livecli-kernel":
                    t.join(60)
            print(json.dumps({"closed": got, "loaded": kernel.loaded() is not None,
                              "failed": kernel.failed(), "numba": "numba" in sys.modules}))
        finally:
            s.stop()
""")


def probe(tmp_path, instruments: int, **extra: str) -> dict:
    env = hermetic_env(tmp_path, **extra)
    done = subprocess.run([sys.executable, "-c", PROBE, str(instruments)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


LOADED = {"closed": True, "loaded": True, "failed": None, "numba": True}
NUMPY = {"closed": True, "loaded": False, "failed": None, "numba": False}


def test_a_session_of_many_instruments_loads_the_kernel_by_itself(tmp_path):
    assert probe(tmp_path, KERNEL_MIN_INSTRUMENTS) == LOADED


def test_a_session_of_a_few_instruments_never_imports_numba(tmp_path):
    # The CI's run of the kernel's first landing: every small stream paid numba's import (half a
    # second of a core, 110 MB) and, on a fresh clone, its compile while the feed was starting.
    assert probe(tmp_path, 3) == NUMPY


@pytest.mark.parametrize(("engine", "instruments", "want"), [
    ("numpy", KERNEL_MIN_INSTRUMENTS, NUMPY), ("compiled", 3, LOADED)])
def test_stream_engine_overrides_the_choice(tmp_path, engine, instruments, want):
    assert probe(tmp_path, instruments, LIVECLI_STREAM_ENGINE=engine) == want


def test_the_kernel_is_never_imported_by_the_cli_alone(tmp_path):
    # `livecli --help` and the commands that build no live engine stay quick: numba is loaded
    # by a session, on a thread, never by importing livecli.
    code = ("import sys; from livecli.cli.app import app; import livecli.core.engine; "
            "print('numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=hermetic_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
