"""`livecli sim`: run the local Kite stand-in in the foreground.

So anyone can try livecli (dashboard, candles, store) without a Kite subscription or market
hours: it serves Kite's ticker and REST protocols on loopback from a simulated market, prints
where it listens and how to point livecli at it, and stops cleanly on Ctrl-C or SIGTERM.
`--fault KIND@SECONDS[+DURATION]` rehearses a bad day on a timetable (livecli.sim.faults).
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

_DEFAULT_KEY = "livecli-sim"
_DEFAULT_TOKEN = "sim-access-token"
_DEFAULT_SECRET = "sim-secret"
_FAULT_HELP = (
    "Schedule a fault, KIND@SECONDS[+DURATION] in real seconds from the start (repeatable). "
    "drop: cut every ticker link (+D: and every new one for D s); silent: send nothing, not even "
    "heartbeats (+D: for D s); reject: refuse the credentials (+D: for D s); malformed: cut the "
    "next frame short (+D: every frame for D s); text: send an error text message (+D: one a "
    "second). E.g. --fault drop@30 --fault silent@60+10."
)


def _shown(value: str, default: str) -> str:
    """The built-in credentials are public (see --help); anything a user chose is masked."""
    from livecli.config import mask

    return value if value == default else mask(value)


def sim(
    port: int = typer.Option(8765, "--port", help="Ticker WebSocket port (0 picks a free one)."),
    api_port: int = typer.Option(8766, "--api-port", help="REST API port (0 picks a free one)."),
    api_key: str = typer.Option(_DEFAULT_KEY, "--api-key", help="api_key the stand-in accepts."),
    access_token: str = typer.Option(
        _DEFAULT_TOKEN, "--access-token", help="access_token the stand-in accepts."),
    api_secret: str = typer.Option(
        _DEFAULT_SECRET, "--api-secret", help="api_secret for the login checksum (/session/token)."),
    speed: float = typer.Option(
        1.0, "--speed", help="Simulated seconds per real second (60: a minute per second)."),
    seed: int = typer.Option(1, "--seed", help="Market seed: the same seed gives the same ticks."),
    date: str | None = typer.Option(
        None, "--date", help="Trading day to simulate, YYYY-MM-DD (default today; Friday on weekends)."),
    start: str | None = typer.Option(
        None, "--start", help="Simulated time of day to start at, HH:MM IST (default 09:15)."),
    extra_instruments: int = typer.Option(
        0, "--extra-instruments", help="Add this many synthetic NSE stocks (load tests)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    fault: Annotated[list[str] | None, typer.Option(
        "--fault", metavar="KIND@SECONDS[+DURATION]", help=_FAULT_HELP)] = None,
) -> None:
    """Run a local stand-in for Kite (ticker + REST) with a simulated market, until Ctrl-C."""
    from livecli.errors import UsageError
    from livecli.sim.clock import parse_sim_date, parse_start
    from livecli.sim.faults import parse_faults

    parse_sim_date(date)  # bad input fails before anything listens
    parse_start(start)
    faults = parse_faults(fault or [])
    if not 0 <= port <= 65535 or not 0 <= api_port <= 65535:
        raise UsageError("ports must be 0..65535 (0 picks a free port)")
    if port and port == api_port:
        raise UsageError(f"--port and --api-port are both {port}: give them different ports")

    from livecli.sim.standin import StandIn

    standin = StandIn(
        api_key=api_key, access_token=access_token, api_secret=api_secret, seed=seed, speed=speed,
        date=date, host=host, ws_port=port, api_port=api_port,
        extra_instruments=extra_instruments, start_time=start,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        standin.start()
        hhmm = standin.start_time.strftime("%H:%M")
        lines = [
            f"livecli sim: {standin.date_note}; clock starts {hhmm} IST at {speed:g}x, seed {seed}, "
            f"{len(standin.instruments)} instruments",
            f"  ticker   {standin.ws_url}",
            f"  api      {standin.api_url}",
            f"  accepts  api_key={_shown(api_key, _DEFAULT_KEY)} "
            f"access_token={_shown(access_token, _DEFAULT_TOKEN)} "
            f"api_secret={_shown(api_secret, _DEFAULT_SECRET)}",
            "Point livecli at it:",
            f"  export LIVECLI_KITE_WS_URL={standin.ws_url}",
            f"  export LIVECLI_KITE_API_URL={standin.api_url}",
            f"  export KITE_API_KEY={_shown(api_key, _DEFAULT_KEY)}",
            f"  export KITE_ACCESS_TOKEN={_shown(access_token, _DEFAULT_TOKEN)}",
        ]
        if faults:
            lines.append(f"Faults scheduled: {', '.join(str(f) for f in faults)}")
        lines.append("Press Ctrl-C to stop.")
        typer.echo("\n".join(lines))
        if faults:
            standin.schedule_faults(faults, lambda line: typer.echo(f"livecli sim: fault {line}"))
        while not stop.wait(0.5):
            if not standin.running:
                raise UsageError("the stand-in stopped unexpectedly; rerun with LIVECLI_DEBUG=1")
    finally:
        standin.stop()
        for s, h in old.items():
            signal.signal(s, h)
    typer.echo("livecli sim: stopped")
