"""The engine's compiled kernel (livecli/core/kernel.py): who loads it, and how to turn it off.

That it gives the numpy path's candles is shown by the rule and property tests, which run on
both paths (conftest.engine_kernel); these tests show that a session takes it without being
asked, and that `LIVECLI_KERNEL=numpy` keeps the numpy path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO, hermetic_env

numba = pytest.importorskip("numba", reason="the compiled kernel needs numba")

PROBE = textwrap.dedent("""
    import json, threading
    from livecli.core import kernel
    from livecli.session.live import LiveSession

    before = kernel.loaded() is not None
    s = LiveSession(source="sim", intervals=["1min"], db=False, speed=60,
                    sim_date="2025-01-06", overrides={"stream.fetch_history": False})
    closed = threading.Event()
    s.on_candle_close("1min", lambda tok, c: closed.set())
    s.start(["RELIANCE", "INFY"])
    try:
        got = closed.wait(60)
        for t in threading.enumerate():
            if t.name == "livecli-kernel":
                t.join(60)
        print(json.dumps({"before": before, "closed": got,
                          "loaded": kernel.loaded() is not None, "failed": kernel.failed()}))
    finally:
        s.stop()
""")


def probe(tmp_path, **extra: str) -> dict:
    env = hermetic_env(tmp_path, **extra)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_session_loads_the_kernel_by_itself(tmp_path):
    got = probe(tmp_path)
    assert got == {"before": False, "closed": True, "loaded": True, "failed": None}


def test_livecli_kernel_numpy_keeps_the_numpy_path(tmp_path):
    got = probe(tmp_path, LIVECLI_KERNEL="numpy")
    assert got == {"before": False, "closed": True, "loaded": False, "failed": None}


def test_the_kernel_is_never_imported_by_the_cli_alone(tmp_path):
    # `livecli --help` and the commands that build no live engine stay quick: numba is loaded
    # by a session, on a thread, never by importing livecli.
    code = ("import sys; from livecli.cli.app import app; import livecli.core.engine; "
            "print('numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=hermetic_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
