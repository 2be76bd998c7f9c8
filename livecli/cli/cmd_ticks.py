"""`livecli ticks`: what a store recorded with `stream --record`, and its export to a tick file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from livecli.cli.options import (
    ConfigOption,
    DbOption,
    ExportOption,
    ForceOption,
    FormatOption,
    FromOption,
    OutputOption,
    ToOption,
)

HELP = """List or export the raw ticks a store recorded (`livecli stream --record`).

Without --export it lists what was recorded, per instrument. With --export the ticks are
written, in the order they arrived, as a tick file (CSV or Parquet) named after the symbols and
dates, or to -o PATH; `livecli candles --ticks PATH` rebuilds it into the same candles.
"""


def ticks(
    symbols: Annotated[
        list[str] | None,
        typer.Argument(metavar="SYMBOL", show_default=False,
                       help="Symbols to export: RELIANCE, NSE:INFY, or a token; default all."),
    ] = None,
    db: DbOption = None,
    start: FromOption = None,
    end: ToOption = None,
    export: ExportOption = False,
    output: OutputOption = None,
    fmt: FormatOption = None,
    force: ForceOption = False,
    config: ConfigOption = None,
) -> None:
    from livecli.cli.options import export_target, with_export_hint
    from livecli.errors import SymbolError
    from livecli.store.query import TimeRange, store_path

    rng = TimeRange.parse(start, end, labels=("--from", "--to"))
    target = export_target(export, output, fmt, symbols or [])
    from livecli.config import load_settings

    path = store_path(db, load_settings(config_path=config))
    if target is None:
        _list(path)
        return
    from livecli.cli.render import human_size
    from livecli.store.tickexport import export_ticks

    f = target.fmt
    out = target.path or Path(_default_name(path, symbols or [], f))
    try:
        res = export_ticks(path, out, f, symbols=symbols or None, start=rng.start, end=rng.end,
                           force=force)
    except SymbolError as exc:
        raise with_export_hint(exc, target, symbols or []) from None
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
