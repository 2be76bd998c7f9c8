"""The options several commands share, declared once.

`livecli candles --db X` and `livecli stream --db X` must mean the same thing, say it the same
way in `--help` and show the same placeholder, so each shared option is one `Annotated` alias
here and commands use it as their parameter's type:

    def candles(db: DbOption = None, config: ConfigOption = None, ...) -> None: ...

Placeholders say what a value is (FILE, DATE, INTERVAL), never a Python type; an option whose
default is decided at run time says so with `show_default="..."`. The defaults themselves
stay in the command's signature.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from livecli.errors import SymbolError, UsageError

# --- where things are ------------------------------------------------------------------------
DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db", metavar="FILE",
        help="Candle store (SQLite file).",
        show_default="the user store, see `livecli config`",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", metavar="FILE", dir_okay=False,
        help="Read only this TOML file (instead of ./livecli.toml and the user config).",
        show_default=False,
    ),
]

# --- what to read ----------------------------------------------------------------------------
FromOption = Annotated[
    str | None,
    typer.Option(
        "--from", metavar="DATE",
        help="Start at DATE (the whole day) or DATETIME, IST: 2025-01-06, 2025-01-06T09:15.",
        show_default="the earliest",
    ),
]
ToOption = Annotated[
    str | None,
    typer.Option(
        "--to", metavar="DATE",
        help="End with DATE (the whole day) or DATETIME, IST.",
        show_default="the latest",
    ),
]
ExchangeOption = Annotated[
    str | None,
    typer.Option(
        "--exchange", "-e", metavar="EXCHANGE",
        help="Exchange of symbols written without one: NSE, BSE, NFO, MCX...",
        show_default="[stream] exchange, NSE",
    ),
]

INTERVAL_HELP = "Candle length: 1min, 5min, 45min, 1h, 5minute (any whole number of minutes)."
IntervalOption = Annotated[
    str, typer.Option("--interval", "-i", metavar="INTERVAL", help=INTERVAL_HELP),
]
"""One interval (`candles`); the command gives the default."""
IntervalsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--interval", "-i", metavar="INTERVAL", help=INTERVAL_HELP + " Repeatable.",
        show_default="[stream] intervals, 1min",
    ),
]
"""Several intervals (`stream`): each `-i` adds one."""

# --- a live session: `stream` and `serve` ---------------------------------------------------------
SYMBOLS_HELP = "RELIANCE, NSE:INFY, NFO:NIFTY25DECFUT, 'NSE:NIFTY 50'."
SymbolsArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="SYMBOL", show_default=False, help=SYMBOLS_HELP),
]
"""At least one symbol (`stream`); give it no default."""
ModeOption = Annotated[
    str | None,
    typer.Option("--mode", "-m", metavar="MODE",
                 help="Tick mode: full (exchange time, depth), quote or ltp.",
                 show_default="[stream] mode, full"),
]
SimOption = Annotated[
    bool, typer.Option("--sim", help="Use the built-in simulated market, even with Kite credentials."),
]
SpeedOption = Annotated[
    float | None,
    typer.Option("--speed", metavar="FACTOR", min=0.01,
                 help="Simulated market speed: 60 runs a minute a second.", show_default="1"),
]
RecordOption = Annotated[bool, typer.Option("--record", help="Also store every raw tick.")]
NoHistoryOption = Annotated[bool, typer.Option(
    "--no-history", help="No warm start or gap repair from Kite's historical API.")]
DurationOption = Annotated[
    float | None,
    typer.Option("--duration", metavar="SECONDS", min=0.1, help="Stop cleanly after SECONDS.",
                 show_default="until Ctrl-C"),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Simulated market seed.", hidden=True)]
SimDateOption = Annotated[
    str | None,
    typer.Option("--sim-date", metavar="DATE", help="Simulated trading day (YYYY-MM-DD).",
                 hidden=True),
]

# --- writing files ---------------------------------------------------------------------------
ExportOption = Annotated[
    bool,
    typer.Option(
        "--export",
        help="Write a file instead of printing, named after the symbols and dates "
             "(-o names it yourself).",
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", metavar="PATH",
        help="Write to PATH (implies --export); .csv or .parquet unless --format says.",
        show_default=False,
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", metavar="csv|parquet",
        help="File format of the export.",
        show_default="the extension's, else csv",
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Overwrite the export file if it exists."),
]


# --- what --export, -o and --format ask for ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExportTarget:
    """Where an export goes: `path` None means a name made from what is written."""

    path: Path | None
    fmt: str


_FILE_LIKE = re.compile(r"[/\\]|\.[A-Za-z][A-Za-z0-9]{0,7}$")


def export_target(export: bool, output: Path | None, fmt: str | None,
                  symbols: Sequence[str] = ()) -> ExportTarget | None:
    """The export that `--export`, `-o PATH` and `--format` ask for; None when none is.

    Checked before anything is read, so a bad format or a misplaced file name fails at once:
    `--export` takes no value, and a symbol that looks like a file (`out.csv`, `dir/x`) is
    what used to follow it.
    """
    from livecli.store.export import choose_format

    if not export and output is None:
        if fmt is not None:
            raise UsageError(f"--format {fmt} is for an export: add --export or -o PATH")
        return None
    for s in symbols:
        if _FILE_LIKE.search(s):
            raise UsageError(
                f"{s!r} reads as a symbol but looks like a file name: --export takes no value; "
                f"name the file with -o {s}"
            )
    path = output.expanduser() if output is not None else None
    return ExportTarget(path, choose_format(path, fmt))


def with_export_hint(exc: SymbolError, target: ExportTarget | None,
                     symbols: Sequence[str]) -> SymbolError:
    """An unknown symbol given with a bare --export may have been meant as the file's name."""
    if target is None or target.path is not None or not symbols:
        return exc
    return SymbolError(f"{exc}; if {symbols[-1]!r} was meant as the file name, "
                       f"write -o {symbols[-1]}.{target.fmt}")
