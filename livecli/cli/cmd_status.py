"""`livecli status`: is the stream running, and how is it doing?

Reads the session record `livecli stream` keeps in the candle store, so it works from any
terminal (or cron job) without talking to the streaming process. `--follow` redraws until
Ctrl-C: a Rich live view on a terminal, one plain line per update when piped, one JSON object
per line with --json.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from livecli.cli.options import ConfigOption, DbOption

if TYPE_CHECKING:
    from rich.console import RenderableType

    from livecli.cli.status_api import Served
    from livecli.config import Settings
    from livecli.store.reader import CandleStoreReader
    from livecli.store.status import SessionStatus


def _duration(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86_400)
    text = f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}d {text}" if days else text


def _when(epoch_s: float | None) -> str:
    from livecli.core.timeutil import iso

    return "-" if epoch_s is None else iso(int(epoch_s))[:19].replace("T", " ") + " IST"


def _age(age: float | None) -> str:
    if age is None:
        return "-"
    return f"{age:.1f} s" if age < 60 else _duration(age)


STATE_STYLES = {
    "running": "green", "connected": "green", "reconnecting": "yellow", "stale": "yellow",
    "starting": "cyan", "stopped": "dim", "stopped-unexpectedly": "bold red",
}


def _renderable(st: SessionStatus, served: Served | None = None) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    state = Text(st.state, style=STATE_STYLES.get(st.state, "red"))
    if st.reason:
        state.append(f"  ({st.reason})", style="dim")
    live = st.live
    rows: list[tuple[str, str | Text]] = [
        ("state", state),
        ("source", st.source),
        ("pid", f"{st.pid}" + (f" on {st.host}" if st.host else "")),
        ("started", _when(st.started_at)),
        ("uptime", _duration(st.uptime_s)),
        ("mode", f"{live.mode or '-'}, intervals {', '.join(live.intervals) or '-'}"),
        ("ticks/s", f"{live.ticks_per_s:,.1f}  ({live.ticks:,} ticks, {live.late_ticks:,} late, "
                    f"{live.bad_ticks:,} bad, {live.future_ticks:,} future)"),
        ("candles stored", f"{live.candles_stored:,}"),
        ("reconnects", str(live.reconnects)),
        ("last error", live.last_error or "-"),
        ("store", st.store),
    ]
    if st.ended_at is not None:
        rows.insert(4, ("ended", _when(st.ended_at)))
    if live.history_state != "off":  # Kite's history: warm start and gap repair (issue 13)
        rows.append(("history", f"{live.history_state}  ({live.history_done}/"
                                f"{live.history_total} instruments, {live.history_minutes:,} "
                                f"minutes, {live.history_repaired:,} repaired, "
                                f"{live.history_requests:,} requests)"))
    if served is not None:
        rows.insert(1, ("served", served.describe()))
    if live.tick_lines_dropped:
        rows.append(("tick lines dropped", f"{live.tick_lines_dropped:,} (JSON lines output)"))
    if live.store_error:
        rows.append(("store error", Text(live.store_error, style="red")))
    for k, v in rows:
        head.add_row(k, v)
    parts: list[RenderableType] = [head]
    if live.symbols:
        table = Table(title="symbols", title_justify="left")
        table.add_column("symbol")
        table.add_column("last price", justify="right")
        table.add_column("last tick", justify="right")
        for s in live.symbols:
            price = "-" if s.last_price is None else f"{s.last_price:,.2f}"
            age = st.age_of(s)
            table.add_row(s.symbol, price, _age(age) + (" ago" if age is not None else ""))
        parts.append(table)
    return Group(*parts)


def _line(st: SessionStatus) -> str:
    from livecli.core.timeutil import iso

    live = st.live
    return (
        f"{iso(int(st.now))} {st.state} pid={st.pid} source={st.source} "
        f"uptime={_duration(st.uptime_s)} ticks/s={live.ticks_per_s:.1f} "
        f"candles={live.candles_stored} reconnects={live.reconnects} "
        f"future_ticks={live.future_ticks} symbols={len(live.symbols)} "
        f"last_error={json.dumps(live.last_error) if live.last_error else '-'}"
    )


def status(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep redrawing until Ctrl-C.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (with --follow: one object per line).")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    every: Annotated[
        float, typer.Option("--every", min=0.05, hidden=True, help="Seconds between updates.")
    ] = 1.0,
    count: Annotated[
        int | None, typer.Option("--count", min=1, hidden=True, help="Stop after N updates.")
    ] = None,
    attach: Annotated[
        str | None,
        typer.Option("--attach", "--url", metavar="URL",
                     help="Ask this `livecli serve` (http://127.0.0.1:8000) over its API.",
                     show_default="the store's server when it is served, else the store"),
    ] = None,
) -> None:
    """Show the running (or last) stream session: state, uptime, ticks/s, candles, symbols."""
    from livecli.config import load_settings
    from livecli.store.query import store_path
    from livecli.store.reader import CandleStoreReader
    from livecli.store.status import read_status

    settings = load_settings(config_path=config)
    if attach is None:  # a store served now is read over its server's API
        from livecli.server.auth import local_key
        from livecli.session.attach import served_url

        attach = served_url(store_path(db, settings), api_key=local_key(settings.data_dir))
    if attach is not None:
        _served(attach, settings, follow, as_json, count)
        return
    with CandleStoreReader(store_path(db, settings)) as reader:
        st = read_status(reader)
        if not follow:
            if as_json:
                typer.echo(json.dumps(st.to_json()))
            else:
                from livecli.cli.render import stdout_console

                stdout_console().print(_renderable(st))
            return
        try:
            _follow(reader, st, as_json, every, count)
        except KeyboardInterrupt:
            return  # Ctrl-C is how a user leaves --follow: not an error


def _follow(reader: CandleStoreReader, st: SessionStatus, as_json: bool, every: float,
            count: int | None) -> None:
    from livecli.store.status import read_status

    shown = 0
    if not as_json and sys.stdout.isatty():
        from rich.live import Live

        from livecli.cli.render import stdout_console

        with Live(_renderable(st), console=stdout_console(), auto_refresh=False) as live:
            while True:
                live.update(_renderable(st), refresh=True)
                shown += 1
                if count is not None and shown >= count:
                    return
                time.sleep(every)
                st = read_status(reader)
    while True:
        text = json.dumps(st.to_json()) if as_json else _line(st)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        shown += 1
        if count is not None and shown >= count:
            return
        time.sleep(every)
        st = read_status(reader)


def _served(url: str, settings: Settings, follow: bool, as_json: bool, count: int | None) -> None:
    """The status of the session served at `url`, over its API (pushed with --follow)."""
    from livecli.cli import status_api
    from livecli.server.auth import local_key
    from livecli.session.attach import NATS_SCHEMES, attach, scheme_of

    if scheme_of(url) in NATS_SCHEMES:
        from livecli.errors import UsageError

        raise UsageError(f"`livecli status --attach` reads a `livecli serve` (http://...), not "
                         f"a NATS feed: its status is on livecli.status, e.g. `livecli stream "
                         f"--attach {url} --jsonl | grep '\"status\"'`")
    remote = attach(url, api_key=local_key(settings.data_dir))
    try:
        if not follow:
            st, served = status_api.read_once(remote)
            if as_json:
                typer.echo(json.dumps(status_api.to_json(st, served)))
            else:
                from livecli.cli.render import stdout_console

                stdout_console().print(_renderable(st, served))
            return
        try:
            status_api.follow(remote, as_json, count, _renderable, _line)
        except KeyboardInterrupt:
            return
    finally:
        remote.stop()
