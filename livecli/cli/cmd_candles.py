"""`livecli candles`: show or export candles, rebuilt from a tick file or read from the store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

HELP = """Show or export OHLCV candles.

From a recorded tick file (--ticks FILE, CSV or Parquet) the candles are rebuilt exactly as the
live session builds them. From the store (--db, default: the store `livecli stream` writes) any
whole-minute interval is derived from the stored 1-minute candles.
"""


def candles(
    symbols: Annotated[
        list[str] | None,
        typer.Argument(help="Symbols to show (RELIANCE, NSE:INFY, or a token); default all.",
                       show_default=False),
    ] = None,
    interval: Annotated[
        str, typer.Option("--interval", "-i", help="Candle length: 1min, 5min, 45min, 1h, 5minute...")
    ] = "1min",
    ticks: Annotated[
        Path | None, typer.Option("--ticks", help="Rebuild from this tick file (CSV or Parquet).")
    ] = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", "-s", help="Only this symbol (repeatable).")
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Candle store to read (default: the user store).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First candle: DATE or DATETIME (IST).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last candle: DATE (whole day) or DATETIME (IST).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Candles shown per symbol (table only).")
    ] = 20,
    export: Annotated[
        str | None,
        typer.Option("--export", help="Write the candles to PATH; `--export` alone names the file."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or parquet (default: from the extension).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing export file.")] = False,
    fill_gaps: Annotated[
        bool, typer.Option("--fill-gaps", help="Add flat synthetic candles for empty intervals.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file to use.")
    ] = None,
) -> None:
    from livecli.core.intervals import parse_interval
    from livecli.store.query import CandleQuery, TimeRange

    iv = parse_interval(interval)
    wanted = [*(symbols or []), *(symbol or [])]
    rng = TimeRange.parse(start, end)
    export_path = None
    if export is not None:
        export_path = Path(export) if export else None
    if fmt is not None:
        from livecli.store.export import choose_format

        choose_format(None, fmt)
    query = CandleQuery(interval=iv, symbols=wanted, time_range=rng, fill_gaps=fill_gaps)
    from livecli.config import load_settings

    settings = load_settings(config_path=config)
    if ticks is not None:
        from livecli.store.query import candles_from_ticks

        result = candles_from_ticks(ticks, query, sessions=settings.session_table())
    else:
        from livecli.store.query import candles_from_store

        path = db.expanduser() if db is not None else settings.store.path
        result = candles_from_store(Path(path), query, sessions=settings.session_table())
    if len(result.arrays) == 0:
        raise result.no_data()  # exit 11, and no empty export file
    if export is not None:
        _export(result, export_path, fmt, force)
    else:
        from livecli.cli.render import print_candle_table

        print_candle_table(result, limit)
    if result.skipped:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(result.skipped_reasons.items()))
        sys.stderr.write(
            f"livecli: skipped {result.skipped} row(s) with unusable values ({reasons})\n"
        )


def _export(result, path: Path | None, fmt: str | None, force: bool) -> None:
    from livecli.cli.render import export_progress, human_size
    from livecli.store.export import candle_table, choose_format, write_candles

    if path is None:
        path = Path(result.default_file_name(choose_format(None, fmt)))
    f = choose_format(path, fmt)
    table = candle_table(result.arrays, result.interval.minutes, result.names, result.market)
    with export_progress(table.num_rows) as progress:
        res = write_candles(table, path, f, force=force, progress=progress)
    typer.echo(f"wrote {res.rows:,} {result.interval.name} candles to {res.path} "
               f"({f}, {human_size(res.bytes)})")
