"""The real `livecli stream` on a real pseudo-terminal, its screen read through pyte.

`PtyDashboard` opens a pty of the given size, runs the command with stdin, stdout and stderr's
terminal on it (stderr goes to a file, as a person's would scroll by), feeds every byte the
command writes into a pyte terminal emulator, and lets a test type keys and wait for the screen
to show something. Waits are bounded polls of the pty (select with deadlines), never sleeps.
pyte keeps one screen buffer (it ignores the alternate screen), so what a test reads is the
frame; whether the terminal was put back is read from the bytes and termios themselves.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import hermetic_env

pyte = pytest.importorskip("pyte")

SIM_DATE = "2025-12-10"  # a Wednesday: a full NSE session


def _own_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty (stdin), as a
    shell gives a command, so Ctrl-C typed on it is SIGINT to the command."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyDashboard:
    def __init__(self, base: Path, args: list[str], cols: int = 100, rows: int = 30,
                 **env: str) -> None:
        self.cols, self.rows = cols, rows
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.attrs_before = termios.tcgetattr(self.slave)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.err_path = base / "pty-stderr.txt"
        # No warm start from history (tests/test_history.py has it): these tests check screens
        # against candles computed from the ticks the stream recorded.
        env = {"LIVECLI_STREAM_FETCH_HISTORY": "false", **env}
        e = hermetic_env(base, COLUMNS=str(cols), LINES=str(rows), TERM="xterm-256color", **env)
        with self.err_path.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "livecli", *args], cwd=base,
                                         env=e, stdin=self.slave, stdout=self.slave, stderr=err,
                                         close_fds=True, preexec_fn=_own_terminal)

    # --- reading -----------------------------------------------------------------------------
    def pump(self, timeout: float = 0.2) -> bool:
        """Read what the command wrote within `timeout`; False once the pty is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        if not data:
            return False
        self.raw += data
        self.stream.feed(data)
        return True

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def wait_for(self, want: str | Callable[[str], bool], timeout: float = 30.0) -> str:
        """Pump until the screen matches regex `want` (or `want(text)` is true); the text."""
        test = (lambda t: re.search(want, t) is not None) if isinstance(want, str) else want
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pump(0.1):
                break
            while select.select([self.master], [], [], 0.02)[0]:  # a whole frame, not half
                if not self.pump(0):
                    break
            t = self.text()
            if test(t):
                return t
            if self.proc.poll() is not None:
                self.pump(0.1)
                break
        raise AssertionError(f"screen never showed {want!r}; it shows:\n{self.text()}\n"
                             f"stderr: {self.err_path.read_text()[-2000:]}")

    def settle(self, frames: int = 3, timeout: float = 10.0) -> str:
        """Pump until `frames` more frames were drawn (each repaint homes the cursor)."""
        deadline = time.monotonic() + timeout
        start = self.raw.count(b"\x1b[H")
        while self.raw.count(b"\x1b[H") < start + frames and time.monotonic() < deadline:
            if not self.pump(0.1):
                break
        return self.text()

    # --- typing ------------------------------------------------------------------------------
    def send(self, *keys: str) -> None:
        for k in keys:
            os.write(self.master, k.encode())
            self.pump(0.05)

    # --- ending ------------------------------------------------------------------------------
    def wait_exit(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.1)
        while self.pump(0.05) and self.proc.poll() is not None and select.select(
                [self.master], [], [], 0)[0]:
            pass
        return self.proc.wait(max(0.1, deadline - time.monotonic()))

    def stderr(self) -> str:
        return self.err_path.read_text()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> PtyDashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_args(*symbols: str, db: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return ["stream", *symbols, "--speed", "60", "--sim-date", SIM_DATE, "--db", str(db), *extra]


def table_rows(text: str, known: set[str]) -> list[list[str]]:
    """The instrument rows on screen (inside the panel's borders) whose first cell is a symbol
    in `known`, as lists of cells split on runs of spaces."""
    out = []
    for line in text.splitlines():
        inner = line.strip().strip("│").strip()
        cells = re.split(r"\s{2,}|\s(?=[+-]?\d)", inner)
        if cells and cells[0].split(" ")[0] in known:
            out.append([c for c in re.split(r"\s+", inner) if c])
    return out
