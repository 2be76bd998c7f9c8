"""`livecli instruments`: list or search the day's instrument master of one exchange.

Users need the exact tradingsymbol (`NIFTY25DECFUT`, `NIFTY 50`) before they can stream it; this
is where they find it, from the same cached dump that `stream` resolves symbols against.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from livecli.cli.options import ConfigOption, ExchangeOption

COLUMNS = ("token", "symbol", "name", "type", "segment", "expiry", "strike", "tick", "lot")
# On a narrow terminal, columns are dropped from the end of this list rather than cut: a
# truncated symbol or token is worse than a missing one, since users copy them.
PRIORITY = ("token", "symbol", "type", "expiry", "strike", "lot", "name", "tick", "segment")


def _print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    widths = {c: max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(COLUMNS)}
    shown, used = [], 1
    for col in PRIORITY:
        # + 2 padding + 1 column divider (blank in SIMPLE_HEAD, but it takes a cell)
        need = (min(widths[col], 12) if col == "name" else widths[col]) + 3
        if col in ("token", "symbol") or used + need <= console.width:
            shown.append(col)
            used += need
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for col in COLUMNS:
        if col in shown:
            table.add_column(col, no_wrap=col != "name", overflow="fold")
    for row in rows:
        table.add_row(*(cell for col, cell in zip(COLUMNS, row, strict=True) if col in shown))
    console.print(table)


def instruments(
    search: Annotated[
        str | None, typer.Argument(metavar="SEARCH", help="Text to find in the tradingsymbol or name.")
    ] = None,
    exchange: ExchangeOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", min=0, help="Show at most N rows (0: all).")
    ] = 50,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Download the dump again even if today's is cached.")
    ] = False,
    sim: Annotated[
        bool, typer.Option("--sim", help="The simulated market's instruments (the default "
                                         "when no Kite credentials are configured).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """List or search the instrument master of an exchange (cached once per trading day)."""
    from livecli.config import load_settings
    from livecli.kite.instruments import InstrumentMaster
    from livecli.session.source import choose_source

    settings = load_settings(config_path=config, overrides={"stream.exchange": exchange})
    ex = settings.stream.exchange
    # The same policy as `stream`: any Kite credential means Kite's instruments; only with
    # none at all (or --sim) the built-in market's. Kite serves the dumps without a token.
    choice = choose_source("sim" if sim else "auto", settings)
    if choice.simulated:
        from livecli.sim import StandIn

        if choice.note:
            sys.stderr.write(f"livecli: note: {choice.note}\n")
        with StandIn() as standin:
            master = InstrumentMaster(standin.api_key, standin.access_token, standin.api_url,
                                      settings.cache_dir)
            master.load(ex, refresh=refresh)
    else:
        master = InstrumentMaster.from_settings(settings)
        master.load(ex, refresh=refresh)
    hits = master.search(search or "", ex)
    shown = hits[:limit] if limit else hits
    rows: list[tuple[str, ...]] = [
        (
            str(i.instrument_token),
            i.tradingsymbol,
            i.name,
            i.instrument_type,
            i.segment,
            i.expiry.isoformat() if i.expiry else "",
            f"{i.strike:g}" if i.strike else "",
            f"{i.tick_size:g}",
            str(i.lot_size),
        )
        for i in shown
    ]
    if sys.stdout.isatty():
        _print_table(f"{ex} instruments", rows)
    else:
        sys.stdout.write("\t".join(COLUMNS) + "\n")
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
    if len(shown) < len(hits):
        sys.stderr.write(f"{len(shown)} of {len(hits)} shown; use --limit 0 for all\n")
    elif not hits:
        sys.stderr.write(f"no {ex} instrument matches {search!r}\n")
