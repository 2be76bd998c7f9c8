"""`livecli ticks`: what a store recorded with `stream --record`, and its export to a tick file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HELP = """List or export the raw ticks a store recorded (`livecli stream --record`).

With --export PATH the ticks are written, in the order they arrived, as a tick file (CSV or
Parquet) that `livecli candles --ticks PATH` rebuilds into the same candles. `--export` alone
names the file after the symbols and dates. Without --export it lists what was recorded.
"""


def ticks(
    symbols: Annotated[
        list[str] | None,
        typer.Argument(help="Symbols to export (RELIANCE, NSE:INFY, or a token); default all.",
                       show_default=False),
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Candle store to read (default: the user store).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First tick: DATE or DATETIME (IST).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last tick: DATE (whole day) or DATETIME (IST).")
    ] = None,
    export: Annotated[
        str | None,
        typer.Option("--export", help="Write the ticks to PATH; `--export` alone names the file."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or parquet (default: from the extension).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="Config file to use.")] = None,
) -> None:
    from livecli.store.export import choose_format
    from livecli.store.query import TimeRange, store_path

    rng = TimeRange.parse(start, end, labels=("--from", "--to"))
    if fmt is not None:
        choose_format(None, fmt)
    from livecli.config import load_settings

    path = store_path(db, load_settings(config_path=config))
    if export is None:
        _list(path)
        return
    from livecli.cli.render import human_size
    from livecli.store.tickexport import export_ticks

    target = Path(export) if export else Path(_default_name(path, symbols or [],
                                                            choose_format(None, fmt)))
    f = choose_format(target, fmt)
    res = export_ticks(path, target, f, symbols=symbols or None, start=rng.start, end=rng.end,
                       force=force)
    typer.echo(f"wrote {res.rows:,} ticks to {res.path} ({f}, {human_size(res.bytes)})")


def _list(path: Path) -> None:
    from livecli.core.timeutil import iso
    from livecli.errors import NoDataError
    from livecli.store.tickexport import RecordedTicks

    with RecordedTicks(path) as rec:
        spans = rec.spans()
    if not spans:
        raise NoDataError(f"the store {path} holds no recorded ticks: stream with --record")
    for s in spans:
        typer.echo(f"{s.exchange}:{s.symbol}  {s.ticks:,} ticks  "
                   f"{iso(s.first)} to {iso(s.last)}")


def _default_name(db: Path, symbols: list[str], fmt: str) -> str:
    from livecli.core.timeutil import date_of, ist_day
    from livecli.store.tickexport import RecordedTicks

    with RecordedTicks(db) as rec:
        spans = rec.spans()
    wanted = {s.upper().split(":")[-1] for s in symbols}
    chosen = [s for s in spans if not wanted or s.symbol.upper() in wanted] or spans
    names = [s.symbol for s in chosen]
    label = "-".join(names[:3]) + (f"-and-{len(names) - 3}-more" if len(names) > 3 else "")
    label = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label) or "none"
    if chosen:
        d0 = date_of(ist_day(min(s.first for s in chosen)))
        d1 = date_of(ist_day(max(s.last for s in chosen)))
        dates = d0.isoformat() if d0 == d1 else f"{d0.isoformat()}_{d1.isoformat()}"
    else:
        dates = "empty"
    return f"ticks_{label}_{dates}.{fmt}"
