"""`livecli stream` attached to a `livecli serve`: the same dashboard or JSON lines, over the API.

Chosen by `--attach URL`, or by itself when the store the stream would write is served now
(livecli.session.attach.served_url): one Kite connection and one writer are shared instead of
a second stream being refused. The symbols named are added to what the server streams (in its
mode); the dashboard reads the attached session through the same typed read API as a local one;
`--jsonl` writes the same lines. Ctrl-C, SIGTERM, SIGHUP, `--duration` and a reader that goes
away detach this client only: the served session goes on for everyone else. When the server
restarts, the client reconnects by itself and the dashboard says so meanwhile.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livecli.errors import UsageError

if TYPE_CHECKING:
    from livecli.config import Settings
    from livecli.core.intervals import Interval
    from livecli.dashboard.live import DashboardRunner
    from livecli.session.remote import RemoteSession
    from livecli.session.remote_lines import AttachedLines



@dataclass(frozen=True, slots=True)
class AttachRequest:
    """What an attached stream was asked for."""

    url: str
    symbols: tuple[str, ...]
    exchange: str
    mode: str | None  # None: the served session's
    interval: Interval | None  # None: the served session's first
    as_lines: bool
    duration: float | None
    found: bool  # True when found by the store's record (not --attach)


def refuse_local_flags(**given: bool) -> None:
    """`--attach` with flags that only a local session uses: one line naming them."""
    named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v]
    if named:
        raise UsageError(f"{', '.join(named)} cannot be used with --attach: the server runs "
                         "the market and the store (give them to `livecli serve`)")


def api_key(settings: Settings) -> str | None:
    """A key a server of this user requires (same data folder), sent only when one exists."""
    from livecli.server.auth import local_key

    return local_key(settings.data_dir)


def stream_attached(req: AttachRequest, settings: Settings) -> None:
    from livecli.session.attach import attach

    remote: RemoteSession = attach(req.url, api_key=api_key(settings))
    try:
        _run(remote, req, settings.stream.refresh_per_s)
    finally:
        remote.stop()


def _run(remote: RemoteSession, req: AttachRequest, refresh_per_s: float) -> None:
    st = remote.status()  # unreachable: ConnectionFailedError (exit 14) before anything shows
    built = [i for i in (st.get("intervals") or ())]
    shown = req.interval
    if shown is not None and built and shown.name not in built:
        raise UsageError(f"{shown.name} candles are not built by the server at {remote.url} "
                         f"(built: {', '.join(built)}): pick one of those with --interval, "
                         f"or serve with --interval {shown.name}")
    if shown is None:
        from livecli.core.intervals import parse_interval

        shown = parse_interval(built[0] if built else "1min")
    from livecli.cli.stopping import catch_stop_signals

    done, give_up = catch_stop_signals()  # a second signal: stop waiting
    sink: AttachedLines | None = None
    runner: DashboardRunner | None = None
    if req.as_lines:
        from livecli.session.remote_lines import AttachedLines

        sink = AttachedLines(remote).start()
    else:
        from livecli.dashboard.builder import SnapshotBuilder
        from livecli.dashboard.live import DashboardRunner

        remote.follow(shown)
        builder = SnapshotBuilder(remote, shown, title=f"livecli stream (attached to {remote.url})")
        runner = DashboardRunner(builder, refresh_per_s=refresh_per_s)
        builder.terminal_lines = lambda: runner.console.size.height
        runner.start()
    reason = "detached"
    try:
        if req.symbols:
            remote.start(list(req.symbols), exchange=req.exchange, mode=req.mode)
        else:
            remote.attach()
        served = st.get("db")
        how = "the store's server" if req.found else "the server"
        sys.stderr.write(f"livecli: note: attached to {how} at {remote.url}"
                         + (f" (it writes {served})" if served else "") + "\n")
        sys.stderr.flush()
        deadline = None if req.duration is None else time.monotonic() + req.duration
        while not done.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                reason = f"detached after {req.duration:g} s (--duration)"
                break
            if sink is not None and sink.reader_gone.is_set():
                reason = "detached: stdout was closed by its reader"
                break
            if remote.wait(timeout=0.2 if left is None else min(0.2, left)):
                reason = "the served session stopped"
                break
        else:
            reason = "detached by signal"
    finally:
        final = remote.live_status()
        if runner is not None:  # its last frame still reads the attached session
            runner.stop(final_message=f"{reason}; {final.candles_stored:,} candles stored by "
                                      "the server")
        remote.stop()
        if sink is not None:
            sink.close(final, give_up=give_up)
    if sink is not None and sink.reader_gone.is_set():
        return
    try:
        sys.stderr.write(f"livecli: {reason} ({remote.url}); {final.candles_stored:,} candles "
                         "stored by the server\n")
    except OSError:
        pass
