"""`livecli chart`: one symbol's candles from the store as a candlestick chart.

In a terminal it draws the dashboard's chart (livecli/dashboard/chart.py) as tall and wide as
the terminal; piped, the same chart as plain text at 100x30. `--output FILE.png|.svg` writes a
picture instead (livecli/cli/chart_picture.py, mplfinance over matplotlib, imported only then).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from livecli.cli.options import (
    ConfigOption,
    DbOption,
    ForceOption,
    FromOption,
    IntervalOption,
    ToOption,
)

if TYPE_CHECKING:
    from livecli.core.candles import Candle

HELP = """Draw one symbol's candles from the store as a candlestick chart with volume.

In a terminal the chart fills it (the day's high and low marked, times in IST); piped, it is
plain text. --output writes a PNG or SVG picture of the candles and their volume instead. The
candles are the store's, derived for --interval exactly as `livecli candles` shows them; without
--from/--to, the latest day the store holds for the symbol.
"""

PIPE_SIZE = (100, 30)  # the text chart's size when stdout is not a terminal
PICTURE_SUFFIXES = (".png", ".svg")


def chart(
    symbol: Annotated[str, typer.Argument(metavar="SYMBOL", show_default=False,
                                          help="The symbol: RELIANCE, NSE:INFY, or a token.")],
    interval: IntervalOption = "5min",
    start: FromOption = None,
    end: ToOption = None,
    db: DbOption = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE",
                     help="Write a picture to FILE (.png or .svg) instead of drawing in the terminal."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", min=1,
                          help="At most the newest N candles (a terminal shows what fits).")
    ] = 150,
    force: ForceOption = False,
    config: ConfigOption = None,
) -> None:
    from livecli.config import load_settings
    from livecli.core.intervals import parse_interval
    from livecli.errors import OutputExistsError, UsageError
    from livecli.store.query import CandleQuery, TimeRange, candles_from_store, store_path

    iv = parse_interval(interval)
    if output is not None:
        if output.suffix.lower() not in PICTURE_SUFFIXES:
            raise UsageError(f"--output {output}: a chart is written as .png or .svg; "
                             f"name the file e.g. chart.png")
        if output.exists() and not force:
            raise OutputExistsError(f"{output} exists; pass --force to overwrite it")
        if not output.parent.is_dir():
            raise UsageError(f"--output {output}: folder {output.parent} does not exist; "
                             "create it or write elsewhere")
    rng = TimeRange.parse(start, end, labels=("--from", "--to"))
    settings = load_settings(config_path=config)
    path = store_path(db, settings)
    result = candles_from_store(path, CandleQuery(interval=iv, symbols=[symbol], time_range=rng),
                                sessions=settings.session_table())
    if len(result.arrays) == 0:
        raise result.no_data()
    candles = result.arrays.to_candles(iv.minutes, result.names)
    if start is None and end is None:
        candles = latest_day(candles)
    candles = candles[-limit:]
    first = candles[0]
    name = f"{first.exchange}:{first.symbol}" if first.exchange else first.symbol
    tick = infer_tick_size(candles)
    if output is not None:
        from livecli.cli.chart_picture import write_chart

        write_chart(candles, output, title=f"{name} {iv.name}", tick_size=tick)
        typer.echo(f"wrote a chart of {len(candles)} {iv.name} candles of {name} to {output}")
        return
    _draw(candles, name, iv.name, tick)


def latest_day(candles: list[Candle]) -> list[Candle]:
    from livecli.core.timeutil import ist_day

    last = ist_day(candles[-1].start)
    return [c for c in candles if ist_day(c.start) == last]


def infer_tick_size(candles: list[Candle]) -> float:
    """The price step the candles move in (the largest that divides every price), at least
    0.01: the store keeps no instrument list, and the prices themselves say it (0.05 for NSE
    equities, 0.1 or 0.05 for futures)."""
    step = 0
    for c in candles[-200:]:
        for p in (c.open, c.high, c.low, c.close):
            step = math.gcd(step, round(p * 100))
    return max(step, 1) / 100


def _draw(candles: list[Candle], name: str, interval_name: str, tick: float) -> None:
    from rich.console import Console

    from livecli.dashboard.chart import CandleChart, fmt_tick
    from livecli.dashboard.render import fmt_clock

    tty = sys.stdout.isatty()
    console = Console() if tty else Console(width=PIPE_SIZE[0], height=PIPE_SIZE[1],
                                            color_system=None, highlight=False)
    height = (console.size.height - 2) if tty else PIPE_SIZE[1]
    hi = max(c.high for c in candles)
    lo = min(c.low for c in candles)
    last = candles[-1]
    console.print(
        f"{name}  {interval_name} candles  {fmt_clock(candles[0].start, with_date=True)[:16]} → "
        f"{fmt_clock(last.start, with_date=True)[11:16]} IST  ·  high {fmt_tick(hi, tick)}  "
        f"low {fmt_tick(lo, tick)}  last {fmt_tick(last.close, tick)}", highlight=False,
        soft_wrap=False, overflow="ellipsis", no_wrap=True)
    console.print(CandleChart(candles, max(8, height), tick, day_high=hi, day_low=lo))
