"""`livecli serve`: one live session shared over the Live Data API (REST + WebSocket push)."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from livecli.cli.bus_flags import PublishOption
from livecli.cli.options import (
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

HELP = """Serve one live session over HTTP: REST under /api/live, WebSocket push, docs at /docs.

Every terminal, notebook and strategy can then share one Kite connection, one store and one
candle engine (Kite allows 3 connections per api_key). With SYMBOLs it starts streaming at
once; without, it waits for POST /api/live/start. Binds 127.0.0.1 by default; any other
address requires the API key (made on first use, kept 0600 in the user data folder).

Example: livecli serve RELIANCE INFY --interval 5min --port 8000
"""


def serve(
    symbols: Annotated[
        list[str] | None,
        typer.Argument(help="RELIANCE, NSE:INFY, 'NSE:NIFTY 50' (none: start idle)",
                       metavar="SYMBOL"),
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind [default: 127.0.0.1].",
                                 metavar="ADDRESS")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port; 0 for any free port [default: 8000].",
                                 metavar="PORT")
    ] = None,
    require_key: Annotated[
        bool, typer.Option("--require-key", help="Require the API key even on loopback.")
    ] = False,
    exchange: ExchangeOption = None,
    mode: ModeOption = None,
    interval: IntervalsOption = None,
    sim: SimOption = False,
    speed: SpeedOption = None,
    record: RecordOption = False,
    duration: DurationOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
    seed: SeedOption = 1,
    sim_date: SimDateOption = None,
    publish: PublishOption = None,
    no_history: NoHistoryOption = False,
) -> None:
    from livecli.cli.live_flags import live_session
    from livecli.server.runner import ServeOptions, ServeRunner

    if port is not None and not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port: use 1-65535, or 0 for any free port")
    session, _ = live_session(
        exchange=exchange, mode=mode, interval=interval, sim=sim, speed=speed, record=record,
        db=db, config=config, seed=seed, sim_date=sim_date, no_history=no_history,
        extra={"serve.host": host, "serve.port": port},
    )
    settings = session.settings
    sv = settings.serve
    from livecli.cli.watchlists import expand_symbols

    opts = ServeOptions(
        host=sv.host or "127.0.0.1", port=sv.port,
        symbols=tuple(expand_symbols(symbols or (), settings)),
        exchange=settings.stream.exchange, mode=settings.stream.mode, duration=duration,
        require_key=require_key, cors_origins=tuple(sv.cors_origins),
        client_queue=sv.client_queue,
    )
    _quiet_uvicorn()
    runner = ServeRunner(session, settings, opts)
    publication = session.publish(publish)  # None unless --publish or [publish] url
    try:
        reason = runner.run(announce=_announce)
    finally:
        if publication is not None:
            publication.close(session.live_status() if session.started_at else None)
    if session.failure is not None:  # the last streaming run ended in failure (as `stream`)
        raise session.failure
    final = session.status()
    stored = _get(final, "candles_stored") or 0
    where = f" in {session.db_path}" if session.db_path else ""
    sys.stderr.write(f"livecli: {reason}; {stored:,} candles stored{where}\n")


def _get(status: object, key: str) -> object:
    from livecli.server.status import status_json

    return status_json(status).get(key)


def _announce(runner: object) -> None:
    from livecli.server.runner import ServeRunner

    assert isinstance(runner, ServeRunner)
    auth = runner.auth
    key = (f"; API key required ({auth.masked}, in {auth.path}"
           f"{', made now' if auth.created else ''})") if auth.required else ""
    sys.stderr.write(f"livecli: serving {runner.url}/api/live (docs {runner.url}/docs){key}\n")
    sys.stderr.flush()


def _quiet_uvicorn() -> None:
    """uvicorn's own log lines go through livecli's one-line stderr handler, warnings only."""
    ours = logging.getLogger("livecli")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = list(ours.handlers)
        lg.propagate = False
        lg.setLevel(logging.WARNING)
