"""`livecli stream`: the live session with its dashboard (or JSON lines when piped)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from livecli.cli.bus_flags import DurableOption, PublishOption
from livecli.cli.options import (
    SYMBOLS_HELP,
    ConfigOption,
    DbOption,
    DurationOption,
    ExchangeOption,
    IntervalsOption,
    ModeOption,
    NoHistoryOption,
    RecordOption,
    SeedOption,
    SimDateOption,
    SimOption,
    SpeedOption,
)
from livecli.errors import UsageError

if TYPE_CHECKING:
    from livecli.core.intervals import Interval
    from livecli.dashboard.builder import SnapshotBuilder
    from livecli.dashboard.interactive import Dashboard
    from livecli.session.jsonl import JsonLines
    from livecli.session.live import LiveSession

HELP = """Stream live ticks, build candles, show the dashboard and keep everything in the store.

With no Kite credentials configured it streams the built-in simulated market (shown as
SIMULATED); --sim forces that. When stdout is not a terminal, or with --jsonl, it writes one
JSON object per line (ticks, closed candles, status) instead of the dashboard. Ctrl-C, SIGTERM
and SIGHUP stop it cleanly; so does its reader closing the pipe (`| head`). In the dashboard, q
quits and ? lists the keys (sort, filter, scroll, intervals, a symbol's chart, add and remove
symbols). SYMBOL may be @NAME, a [watchlists] entry of the config.

When the store is served by `livecli serve` (or with --attach URL), it attaches to that server
instead of connecting again: the same dashboard or lines, its symbols added to what it streams.
--publish nats://HOST:4222 also publishes ticks, candles and status to NATS JetStream, for
other machines; there, --attach nats://HOST:4222 shows that feed (no Kite, no store but --db).
"""

OptionalSymbolsArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="SYMBOL", show_default=False,
                   help=SYMBOLS_HELP + " Optional with --attach."),
]


AttachOption = Annotated[
    str | None,
    typer.Option("--attach", metavar="URL",
                 help="Attach to a `livecli serve` (http://127.0.0.1:8000) instead of "
                      "connecting: its session, with these symbols added; or show a feed "
                      "published to NATS (nats://HOST:4222), these symbols only.",
                 show_default="the store's server when it is served"),
]


def stream(
    symbols: OptionalSymbolsArgument = None,
    exchange: ExchangeOption = None,
    mode: ModeOption = None,
    interval: IntervalsOption = None,
    sim: SimOption = False,
    speed: SpeedOption = None,
    record: RecordOption = False,
    duration: DurationOption = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="JSON lines on stdout, no dashboard.")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    seed: SeedOption = 1,
    sim_date: SimDateOption = None,
    no_history: NoHistoryOption = False,
    attach: AttachOption = None,
    publish: PublishOption = None,
    durable: DurableOption = None,
) -> None:
    from livecli.cli.live_flags import live_session
    from livecli.core.intervals import parse_interval

    if attach is not None:
        from livecli.cli.attached import refuse_local_flags

        refuse_local_flags(sim=sim, speed=speed is not None, record=record,
                           sim_date=sim_date is not None, no_history=no_history)
        from livecli.session.attach import NATS_SCHEMES, scheme_of

        if scheme_of(attach) in NATS_SCHEMES:  # a published feed: no Kite, no store but --db
            from livecli.cli.bus_flags import run_attached

            run_attached(attach, symbols or [], jsonl=jsonl, duration=duration, db=db,
                         durable=durable, shown=interval[0] if interval else None)
            return
    session, intervals = live_session(
        exchange=exchange, mode=mode, interval=interval, sim=sim, speed=speed, record=record,
        db=db, config=config, seed=seed, sim_date=sim_date, no_history=no_history,
    )
    from livecli.cli.watchlists import expand_symbols

    symbols = expand_symbols(symbols or [], session.settings)
    if _attached(session, attach, symbols, mode, intervals, jsonl, duration):
        return
    if not symbols:
        raise UsageError("missing argument SYMBOL: name at least one, e.g. `livecli stream "
                         "RELIANCE`, or attach to a server or a NATS feed with --attach URL (see "
                         "`livecli stream --help`)")
    st = session.settings.stream
    shown = parse_interval(intervals[0] if intervals else st.intervals[0])
    as_lines = jsonl or not sys.stdout.isatty()
    publication = session.publish(publish)  # None unless --publish or [publish] url
    try:
        _run(session, symbols, st.exchange, st.mode, shown, as_lines, duration)
    finally:
        if publication is not None:
            publication.close(session.live_status() if session.started_at else None)


def _attached(session: LiveSession, url: str | None, symbols: list[str], mode: str | None,
              intervals: list[Interval], jsonl: bool, duration: float | None) -> bool:
    """Stream attached to `url`, or to the server of this store when it is served (then True);
    False: stream here."""
    found = False
    if url is None:
        from livecli.cli.attached import api_key
        from livecli.session.attach import served_url

        url = served_url(session.db_path, api_key=api_key(session.settings))
        found = url is not None
    if url is None:
        return False
    from livecli.cli.attached import AttachRequest, stream_attached

    st = session.settings.stream
    stream_attached(AttachRequest(
        url=url, symbols=tuple(symbols), exchange=st.exchange, mode=mode,
        interval=intervals[0] if intervals else None,
        as_lines=jsonl or not sys.stdout.isatty(), duration=duration, found=found,
    ), session.settings)
    return True




def _run(session: LiveSession, symbols: list[str], exchange: str, mode: str, shown: Interval,
         as_lines: bool, duration: float | None) -> None:
    from livecli.cli.stopping import catch_stop_signals

    done, give_up = catch_stop_signals()  # a second signal: stop waiting
    sink: JsonLines | None = None
    dash: Dashboard | None = None
    builder: SnapshotBuilder | None = None
    if as_lines:
        from livecli.session.jsonl import JsonLines

        sink = JsonLines(session).start()
    else:
        from livecli.cli.watchlists import expander
        from livecli.dashboard.interactive import Dashboard

        dash = Dashboard.open(session, shown, title="livecli stream",
                              refresh_per_s=session.settings.stream.refresh_per_s,
                              on_quit=done.set, exchange=exchange,
                              expand=expander(session.settings))
        builder = dash.builder
        builder.message = "connecting…"
    reason = "stopped"
    try:
        session.start(symbols, exchange=exchange, mode=mode)
        if session.source is not None and session.source.note:  # once: why it is simulated
            sys.stderr.write(f"livecli: note: {session.source.note}\n")
        if builder is not None:
            builder.message = None
        deadline = None if duration is None else _now() + duration
        while not done.is_set():
            left = None if deadline is None else deadline - _now()
            if left is not None and left <= 0:
                reason = f"stopped after {duration:g} s (--duration)"
                break
            if sink is not None and sink.reader_gone.is_set():
                reason = "stopped: stdout was closed by its reader"
                break
            if session.wait(timeout=0.2 if left is None else min(0.2, left)):
                break
        else:
            reason = "stopped by q" if dash is not None and dash.quit_requested \
                else "stopped by signal"
    finally:
        session.stop(reason)
        final = session.live_status()
        if sink is not None:
            sink.close(final if session.started_at else None, give_up=give_up)
        if dash is not None:
            why = session.stopped_reason or reason
            dash.close(final_message=f"{why}; {final.candles_stored:,} candles stored")
    if session.failure is not None:
        raise session.failure
    if sink is not None and sink.reader_gone.is_set():
        return  # `| head`: end quietly, as Unix tools do
    where = f" in {session.db_path}" if session.db_path else ""
    try:
        sys.stderr.write(f"livecli: {reason}; {final.candles_stored:,} candles stored{where}\n")
    except OSError:
        pass  # SIGHUP: the terminal that would show it is gone; the store has it all


def _now() -> float:
    import time

    return time.monotonic()
