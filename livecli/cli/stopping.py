"""How a running command learns it should stop: Ctrl-C, kill, or the terminal going away.

`stream`, attached or not, runs until one of these signals comes; a second one means "stop
waiting" (for a slow reader of stdout, say). One place installs the handlers for both.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # Ctrl-C, kill, the terminal or SSH went away


def catch_stop_signals() -> tuple[threading.Event, threading.Event]:
    """Install the handlers; returns (stop, give_up): set by the first signal, by the second."""
    stop = threading.Event()
    give_up = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            give_up.set()
        stop.set()

    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    return stop, give_up
