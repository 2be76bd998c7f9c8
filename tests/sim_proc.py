"""`livecli sim` and `livecli stream` as subprocesses for the stand-in's tests.

A reader thread collects each process's stdout lines as they come, so a test waits for a line
(with a deadline) instead of sleeping. Environments are hermetic: own folders under the test's
tmp_path, no KITE_* or LIVECLI_* variables from the caller, this checkout first on the path.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def clean_env(base: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITE_", "LIVECLI_"))}
    for name in ("config", "data", "cache", "home"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env.update(
        LIVECLI_CONFIG_DIR=str(base / "config"), LIVECLI_DATA_DIR=str(base / "data"),
        LIVECLI_CACHE_DIR=str(base / "cache"), HOME=str(base / "home"), PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        # No warm start from history (tests/test_history.py has it): these runs compare what a
        # stream built from its ticks with its store, JSON lines or what it published.
        LIVECLI_STREAM_FETCH_HISTORY="false",
    )
    env.update(extra)
    return env


class Proc:
    """A livecli command in the background with its stdout lines queued by a thread."""

    def __init__(self, base: Path, *args: str, env: dict[str, str] | None = None,
                 stdout_file: Path | None = None) -> None:
        self.stderr_path = base / f"stderr-{args[0]}-{time.monotonic_ns()}.txt"
        self._err = self.stderr_path.open("w")
        self._out = stdout_file.open("w") if stdout_file else None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livecli", *args], cwd=base, env=env or clean_env(base),
            stdout=self._out or subprocess.PIPE, stderr=self._err, text=True)
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        if self._out is None:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def wait_line(self, pattern: str, timeout: float) -> str:
        """The first line (from here on) matching regex `pattern`; AssertionError at the deadline."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s; got "
                             f"{self.lines[-5:]}; stderr: {self.stderr()[-800:]}")

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
        self._err.close()
        if self._out is not None:
            self._out.close()
        return rc

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class SimProc(Proc):
    """`livecli sim` on free ports; `ws_url`, `api_url` once it prints where it listens."""

    def __init__(self, base: Path, *args: str, timeout: float = 60) -> None:
        super().__init__(base, "sim", "--port", "0", "--api-port", "0", *args)
        self.ws_url = re.search(r"LIVECLI_KITE_WS_URL=(\S+)",
                                self.wait_line(r"LIVECLI_KITE_WS_URL=", timeout))[1]
        self.api_url = re.search(r"LIVECLI_KITE_API_URL=(\S+)",
                                 self.wait_line(r"LIVECLI_KITE_API_URL=", timeout))[1]
        self.wait_line(r"Ctrl-C", timeout)

    def client_env(self, base: Path) -> dict[str, str]:
        """livecli pointed at this stand-in with its (default) credentials."""
        return clean_env(base, LIVECLI_KITE_WS_URL=self.ws_url, LIVECLI_KITE_API_URL=self.api_url,
                         KITE_API_KEY="livecli-sim", KITE_ACCESS_TOKEN="sim-access-token")


def last_status(path: Path) -> dict[str, Any]:
    """The last status object among the JSON lines in `path`."""
    status = None
    with path.open() as f:
        for line in f:
            if '"status"' in line:
                obj = json.loads(line)
                if obj.get("type") == "status":
                    status = obj
    assert status is not None, f"no status line in {path}"
    return status
