"""`livecli candles`: show or export candles, rebuilt from a tick file or read from the store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from livecli.cli.options import (
    ConfigOption,
    DbOption,
    ExportOption,
    ForceOption,
    FormatOption,
    FromOption,
    IntervalOption,
    OutputOption,
    ToOption,
)

if TYPE_CHECKING:
    from livecli.cli.options import ExportTarget
    from livecli.store.query import CandleResult

HELP = """Show or export OHLCV candles.

From a recorded tick file (--ticks FILE, CSV or Parquet) the candles are rebuilt exactly as the
live session builds them. From the store (--db, default: the store `livecli stream` writes) any
whole-minute interval is derived from the stored 1-minute candles.

The table shows the latest candles of each symbol; --export writes all of them to a CSV or
Parquet file named after the symbols, interval and dates, -o PATH to a file you name.
"""


def candles(
    symbols: Annotated[
        list[str] | None,
        typer.Argument(metavar="SYMBOL", show_default=False,
                       help="Symbols to show: RELIANCE, NSE:INFY, or a token; default all."),
    ] = None,
    interval: IntervalOption = "1min",
    ticks: Annotated[
        Path | None,
        typer.Option("--ticks", metavar="FILE",
                     help="Rebuild from this tick file (CSV or Parquet) instead of the store."),
    ] = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option("--symbol", "-s", metavar="SYMBOL", show_default=False,
                     help="Only this symbol (repeatable; the same as giving it as an argument)."),
    ] = None,
    db: DbOption = None,
    start: FromOption = None,
    end: ToOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", min=1,
                          help="Candles shown per symbol (the table only).")
    ] = 20,
    export: ExportOption = False,
    output: OutputOption = None,
    fmt: FormatOption = None,
    force: ForceOption = False,
    fill_gaps: Annotated[
        bool, typer.Option("--fill-gaps", help="Add flat synthetic candles for empty intervals.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    from livecli.cli.options import export_target, with_export_hint
    from livecli.core.intervals import parse_interval
    from livecli.errors import SymbolError
    from livecli.store.query import CandleQuery, TimeRange

    iv = parse_interval(interval)
    wanted = [*(symbols or []), *(symbol or [])]
    rng = TimeRange.parse(start, end, labels=("--from", "--to"))
    target = export_target(export, output, fmt, symbols or [])
    query = CandleQuery(interval=iv, symbols=wanted, time_range=rng, fill_gaps=fill_gaps)
    from livecli.config import load_settings

    settings = load_settings(config_path=config)
    try:
        if ticks is not None:
            from livecli.store.query import candles_from_ticks

            result = candles_from_ticks(ticks, query, sessions=settings.session_table())
        else:
            from livecli.store.query import candles_from_store, store_path

            path = store_path(db, settings)
            result = candles_from_store(path, query, sessions=settings.session_table())
    except SymbolError as exc:
        raise with_export_hint(exc, target, symbols or []) from None
    if len(result.arrays) == 0:
        raise result.no_data()  # exit 11, and no empty export file
    if target is not None:
        _export(result, target, force)
    else:
        from livecli.cli.render import print_candle_table

        print_candle_table(result, limit)
    if result.skipped:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(result.skipped_reasons.items()))
        sys.stderr.write(
            f"livecli: skipped {result.skipped} row(s) with unusable values ({reasons})\n"
        )


def _export(result: CandleResult, target: ExportTarget, force: bool) -> None:
    from livecli.cli.render import export_progress, human_size
    from livecli.store.export import candle_table, write_candles

    f = target.fmt
    path = target.path or Path(result.default_file_name(f))
    table = candle_table(result.arrays, result.interval.minutes, result.names, result.market)
    with export_progress(table.num_rows) as progress:
        res = write_candles(table, path, f, force=force, progress=progress)
    typer.echo(f"wrote {res.rows:,} {result.interval.name} candles to {res.path} "
               f"({f}, {human_size(res.bytes)})")
