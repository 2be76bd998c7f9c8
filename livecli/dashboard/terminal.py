"""The terminal while the dashboard runs: keys without echo, and everything put back on exit.

`KeyReader` puts the controlling terminal's input in cbreak mode without echo (keys arrive one
at a time and never print over the frame; Ctrl-C still raises SIGINT, so a hung dashboard can
always be stopped), reads keys on a thread of its own and hands them to a callback. `restore()`
puts back the exact terminal attributes it found; it runs on `stop()`, at interpreter exit, and is
safe to call twice, so q, Ctrl-C, SIGTERM and an error all leave the terminal as it was. The
alternate screen itself is rich Live's (`screen=True`), which leaves it on stop. Ctrl-Z gives
the terminal back before the process stops and takes it again on `fg`.

POSIX only (termios); elsewhere, or when stdin is not a terminal, no keys are read and nothing
is changed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from livecli.dashboard.keys import decode

POLL_S = 0.1  # how often the reader looks at its stop flag while no key comes
SHOW_CURSOR_LEAVE_ALT = "\x1b[?25h\x1b[?1049l"
ENTER_ALT_HIDE_CURSOR = "\x1b[?1049h\x1b[?25l\x1b[2J"


def _write(text: str) -> None:
    """Straight to the terminal (rich's Live may be holding sys.stdout redirected)."""
    with contextlib.suppress(OSError, ValueError):
        os.write(sys.__stdout__.fileno() if sys.__stdout__ else 1, text.encode())


class KeyReader:
    """Reads keys from `fd` (default stdin) and calls `on_key(name)` for each, until `stop()`."""

    def __init__(self, on_key: Callable[[str], None], fd: int | None = None) -> None:
        self.on_key = on_key
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._saved: list[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_resume: Callable[[], None] | None = None
        self._old_tstp: Any = None
        self.errors = 0

    @staticmethod
    def available(fd: int | None = None) -> bool:
        try:
            import termios  # noqa: F401

            fd = sys.stdin.fileno() if fd is None else fd
            if not os.isatty(fd):
                return False
            # In the background (`livecli stream X &`), changing the terminal's modes would
            # stop the process (SIGTTOU): keys belong to whoever is in the foreground.
            try:
                return os.tcgetpgrp(fd) == os.getpgrp()
            except OSError:
                return True  # no job control on this terminal (no controlling terminal)
        except (ImportError, OSError, ValueError):
            return False

    def start(self, on_resume: Callable[[], None] | None = None) -> KeyReader:
        """Raw keys from now on. From the main thread, Ctrl-Z is handled too: the terminal is
        put back (modes, main screen, cursor) before the process stops, and taken again when
        it is continued (`on_resume` then redraws)."""
        import termios

        self._saved = termios.tcgetattr(self.fd)
        self._raw()
        atexit.register(self.restore)
        self._on_resume = on_resume
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTSTP"):
            self._old_tstp = signal.signal(signal.SIGTSTP, self._suspend)
        self._thread = threading.Thread(target=self._run, name="livecli-keys", daemon=True)
        self._thread.start()
        return self

    def _raw(self) -> None:
        import termios

        attrs = termios.tcgetattr(self.fd)
        # cbreak without echo: no line buffering, no echo of keys or of ^C; ISIG stays on.
        attrs[3] &= ~(termios.ICANON | termios.ECHO | termios.ECHONL | termios.IEXTEN)
        attrs[0] &= ~(termios.IXON | termios.ICRNL)  # Ctrl-S reaches us; Enter arrives as CR
        attrs[6][termios.VMIN] = 1
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def _suspend(self, _signum: int, _frame: object) -> None:
        """Ctrl-Z: give the terminal back, stop; on `fg`, take it again and redraw."""
        import termios

        saved = self._saved
        if saved is None:
            os.kill(os.getpid(), signal.SIGSTOP)
            return
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
        _write(SHOW_CURSOR_LEAVE_ALT)
        os.kill(os.getpid(), signal.SIGSTOP)  # stops here until SIGCONT
        if self._saved is None:
            return  # stopped meanwhile
        with contextlib.suppress(OSError, termios.error):
            self._raw()
        _write(ENTER_ALT_HIDE_CURSOR)
        if self._on_resume is not None:
            self._on_resume()

    def restore(self) -> None:
        """The terminal's input attributes as they were before `start()` (idempotent)."""
        saved, self._saved = self._saved, None
        if saved is None:
            return
        import termios

        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)

    def stop(self) -> None:
        if self._old_tstp is not None and threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signal.SIGTSTP, self._old_tstp)
            self._old_tstp = None
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(1.0)
        self.restore()
        atexit.unregister(self.restore)

    def _run(self) -> None:
        import select

        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], POLL_S)
                if not ready:
                    continue
                data = os.read(self.fd, 1024)
            except (OSError, ValueError):
                return  # the terminal went away
            if not data:
                return
            for key in decode(data.decode("utf-8", "replace")):
                try:
                    self.on_key(key)
                except Exception:  # a key's action failing must not end key reading
                    self.errors += 1
