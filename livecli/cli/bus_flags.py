"""The NATS flags of `stream` and `serve` (`--publish`, `--attach`, `--durable`), and the
attached stream: the dashboard or JSON lines of a feed published elsewhere.

`--attach URL` dispatches on the URL's scheme (livecli/session/attach.py); nats:// is a feed
published with `--publish`. An attached stream has no Kite connection and no store of its own
unless `--db` is given; its JSON lines are the published messages as they came.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

PublishOption = Annotated[
    str | None,
    typer.Option("--publish", metavar="URL",
                 help="Also publish ticks, candles and status to NATS JetStream, e.g. "
                      "nats://HOST:4222 ([publish] in the config).",
                 show_default="[publish] url"),
]
DurableOption = Annotated[
    str | None,
    typer.Option("--durable", metavar="NAME",
                 help="With --attach nats://: a named consumer that resumes closed candles "
                      "where it stopped."),
]


def run_attached(url: str, symbols: list[str], *, jsonl: bool, duration: float | None,
                 db: Path | None, durable: str | None, shown: str | None) -> None:
    """`livecli stream --attach URL`: until Ctrl-C, --duration, or the reader leaves."""
    from livecli.core.intervals import parse_interval
    from livecli.session.attach import attach

    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        done.set()

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    options: dict[str, object] = {"db": db}
    if durable:
        options["durable"] = durable
    as_lines = jsonl or not sys.stdout.isatty()
    session = attach(url, symbols=tuple(symbols), **options)
    reader_gone = threading.Event()
    runner = None
    if as_lines:
        lock = threading.Lock()

        def write(kind: str, line: str) -> None:
            if reader_gone.is_set():
                return
            try:
                with lock:
                    sys.stdout.write(line if line.endswith("\n") else line + "\n")
                    sys.stdout.flush()
            except (BrokenPipeError, ValueError, OSError):
                reader_gone.set()
                done.set()

        session.add_message_listener(write)
    else:
        from livecli.dashboard.builder import SnapshotBuilder
        from livecli.dashboard.live import DashboardRunner

        builder = SnapshotBuilder(session, parse_interval(shown or "1min"),
                                  title=f"livecli stream --attach {url}")
        runner = DashboardRunner(builder, refresh_per_s=4.0)
        runner.start()
    reason = "stopped by signal"
    try:
        session.start()
        deadline = None if duration is None else time.monotonic() + duration
        while not done.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                reason = f"stopped after {duration:g} s (--duration)"
                break
            if session.wait(0.2):
                reason = "the feed's connection ended"
                break
        if reader_gone.is_set():
            reason = "stopped: stdout was closed by its reader"
    finally:
        session.stop(reason)
        if runner is not None:
            runner.stop(final_message=f"{reason}; {session.candles:,} closed candles received")
    if reader_gone.is_set():
        return
    try:
        sys.stderr.write(f"livecli: {reason}; {session.ticks:,} ticks and {session.candles:,} "
                         f"closed candles received from {url}\n")
    except OSError:
        pass
