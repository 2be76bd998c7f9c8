"""`livecli serve` in a subprocess against the embedded stand-in, for the server's tests.

Each server gets its own folders (no Kite credentials: the simulated market at --speed 60 on a
fixed trading day) and `--port 0`; its address is read from the one line it prints when it
listens. Waiting is on that line and on the API's answers, with deadlines.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIM_DATE = "2025-12-10"  # a Wednesday: a full NSE session
SERVING = re.compile(r"livecli: serving (http://\S+)/api/live")


def serve_env(base: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITE_", "LIVECLI_"))}
    for name in ("config", "data", "cache", "home"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env.update(
        LIVECLI_CONFIG_DIR=str(base / "config"), LIVECLI_DATA_DIR=str(base / "data"),
        LIVECLI_CACHE_DIR=str(base / "cache"), HOME=str(base / "home"),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONUNBUFFERED="1",
        # No warm start from history (tests/test_history.py has it): these tests compare what a
        # served session streamed with what it stored, and a history candle replacing the live
        # one of the first minute after it was pushed would be a difference of that test's own.
        LIVECLI_STREAM_FETCH_HISTORY="false",
    )
    env.update(extra)
    return env


class ServeProcess:
    """`livecli serve --sim ...` running; `url` once it listens."""

    def __init__(self, base: Path, *args: str, port: int = 0, env: dict[str, str] | None = None,
                 sim: bool = True, timeout: float = 60.0) -> None:
        cmd = [sys.executable, "-m", "livecli", "serve", *args, "--port", str(port)]
        if sim:
            cmd += ["--sim", "--speed", "60", "--sim-date", SIM_DATE]
        self.base = base
        self.proc = subprocess.Popen(cmd, cwd=base, env=env or serve_env(base),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._url = threading.Event()
        self.url = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._url.wait(timeout):
            self.kill()
            raise AssertionError(f"the server did not listen within {timeout}s: {self.stderr()}")
        assert self.url, self.stderr()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            m = SERVING.search(line)
            if m:
                self.url = m.group(1)
                self._url.set()
        self._url.set()  # ended before listening: the waiter sees no url

    @property
    def api(self) -> str:
        return f"{self.url}/api/live"

    @property
    def ws(self) -> str:
        return self.api.replace("http://", "ws://", 1)

    def stderr(self) -> str:
        return "".join(self.lines)

    def signal(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)


def wait_for(fn: Any, timeout: float = 30.0, every: float = 0.05) -> Any:
    """The first truthy value of `fn()` within `timeout` (polling the API for a state)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s (last: {last!r})")
