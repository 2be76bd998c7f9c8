"""`livecli reconcile`: the store's live-built candles checked against Kite's historical candles."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from livecli.cli.options import ConfigOption, DbOption, IntervalOption, SeedOption

if TYPE_CHECKING:
    from livecli.config import Settings
    from livecli.core.derive import CandleArrays
    from livecli.kite.historical import HistoricalClient
    from livecli.session.source import Source
    from livecli.store.reconcile import ReconcileReport

HELP = """Check the candles livecli built from ticks against Kite's own historical candles.

For one day (--date, default the last day the store recorded) it fetches each symbol's minute
candles from Kite's historical API (within Kite's 3 requests a second) and compares them with
the store's, minute by minute (or per --interval, both sides derived from their minutes the same
way): per symbol and field how many match, the largest difference, and the minutes only one side
has. Candles the store took from Kite's history (warm start, repair), partial ones and the
recording's first of the day (it joined that minute after it began) are not judged. A store of the simulated market is checked against the simulated market's history.

Exit code 0 when everything matches within --tolerance; 15 when something does not.
"""


def _tolerance(text: str) -> float:
    from livecli.errors import UsageError

    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        value = -1.0
    if not (0 <= value < 1):  # NaN fails too
        raise UsageError(f"invalid --tolerance {text!r}: use a fraction from 0 to 1 or a "
                         "percentage, e.g. 0.001 or 0.1%")
    return value


def reconcile(
    symbols: Annotated[
        list[str] | None,
        typer.Argument(metavar="SYMBOL", show_default=False,
                       help="Symbols to check: RELIANCE, NSE:INFY, or a token; default all."),
    ] = None,
    date: Annotated[
        str | None, typer.Option("--date", metavar="DATE", show_default="the last day stored",
                                 help="The trading day to check (YYYY-MM-DD, IST).")
    ] = None,
    interval: IntervalOption = "1min",
    db: DbOption = None,
    tolerance: Annotated[
        str, typer.Option("--tolerance", metavar="FRACTION",
                          help="Allowed difference as a fraction of Kite's value, or N%.")
    ] = "0",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    config: ConfigOption = None,
    seed: SeedOption = 1,
) -> None:
    from livecli.config import load_settings
    from livecli.core.intervals import parse_interval
    from livecli.errors import ReconcileMismatchError
    from livecli.store.query import store_path

    iv = parse_interval(interval)
    tol = _tolerance(tolerance)
    day = _parse_date(date)
    settings = load_settings(config_path=config)
    path = store_path(db, settings)
    report = run_reconcile(path, settings, symbols or [], day, iv.minutes, tol, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps(report.to_json_dict()) + "\n")
    else:
        _print(report)
    sys.stdout.flush()
    if not report.ok:
        raise ReconcileMismatchError(
            f"{report.differences} difference(s) between the store {path} and Kite's history "
            f"for {report.date} ({report.interval}); --tolerance allows small ones"
        )


def _parse_date(text: str | None) -> int | None:
    """The IST day number of YYYY-MM-DD, or None."""
    if text is None:
        return None
    from datetime import date as ddate

    from livecli.errors import UsageError

    try:
        d = ddate.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"invalid --date {text!r}: use YYYY-MM-DD, e.g. 2025-12-10") from None
    return d.toordinal() - ddate(1970, 1, 1).toordinal()


def run_reconcile(path: Path, settings: Settings, wanted: list[str], day: int | None,
                  interval_min: int, tolerance: float, *, seed: int = 1) -> ReconcileReport:
    """Read the store, ask Kite (or the simulated market) and compare."""
    from datetime import date as ddate
    from datetime import timedelta

    from livecli.core.derive import derive
    from livecli.core.sessions import session_for
    from livecli.core.timeutil import DAY_S, day_start, ist_day
    from livecli.errors import NoDataError
    from livecli.kite.historical import HistoricalClient
    from livecli.store.query import match_symbols
    from livecli.store.reader import CandleStoreReader
    from livecli.store.reconcile import ReconcileReport, compare

    sessions = settings.session_table()
    with CandleStoreReader(path) as reader:
        names = reader.symbols()
        market = reader.source()
        tokens = match_symbols(wanted, names, f"the store {path}") if wanted else sorted(names)
        if day is None:
            spans = [s for s in reader.spans(1) if s.instrument_token in set(tokens)]
            if not spans:
                raise NoDataError(f"no closed candles in {path} to reconcile: run `livecli "
                                  "stream` first, or pass --db")
            day = ist_day(max(s.last_start for s in spans))
        stored = {tok: reader.candles(1, [tok], day_start(day), day_start(day) + DAY_S)
                  for tok in tokens}
    date_text = (ddate(1970, 1, 1) + timedelta(days=day)).isoformat()
    source = _history_source(settings, market, date_text, seed)
    try:
        client = HistoricalClient(source.api_key, source.access_token, source.api_url)
        reports = []
        exchanges = {t: ex for t, (_, ex) in names.items()}
        for tok in tokens:
            sym, ex = names.get(tok, (str(tok), ""))
            ses = session_for(ex, sessions)
            mine = stored[tok]
            theirs = _kite_day(client, tok, day_start(day) + ses.open_s,
                               day_start(day) + ses.close_s)
            if interval_min > 1:
                mine = derive(mine, interval_min, exchanges, sessions)
                theirs = derive(theirs, interval_min, exchanges, sessions)
            reports.append(compare(sym, tok, mine.to_candles(interval_min, names),
                                   theirs.to_candles(interval_min, names), tolerance))
    finally:
        source.close()
    return ReconcileReport(date_text, f"{interval_min}min", tolerance, tuple(reports))


def _kite_day(client: HistoricalClient, token: int, t_from: int, t_to: int) -> CandleArrays:
    from livecli.core.derive import CandleArrays

    return CandleArrays.from_candles(client.minutes(token, t_from, t_to))


def _history_source(settings: Settings, market: str | None, date_text: str, seed: int) -> Source:
    """Kite, or for a simulated store without Kite credentials the simulated market of that day
    (its clock after the close, so the whole day is history)."""
    from livecli.config.schema import DEFAULT_API_URL
    from livecli.errors import UsageError
    from livecli.session.source import SIMULATED, open_source

    if market == SIMULATED and not settings.kite_configured:
        return open_source("sim", settings, seed=seed, sim_date=date_text, sim_start="23:00")
    if market == SIMULATED and settings.kite.api_url == DEFAULT_API_URL:
        raise UsageError("this store holds the simulated market's candles, not Kite's: reconcile "
                         "it with no Kite credentials configured (it then asks the simulated "
                         "market), or point kite.api_url at a `livecli sim`")
    return open_source("kite", settings)


def _print(report: ReconcileReport) -> None:
    from livecli.core.timeutil import iso

    def hm(t: int | None) -> str:
        return "" if t is None else iso(t)[11:16]

    out = sys.stdout
    out.write(f"reconcile {report.date} {report.interval} against Kite's history "
              f"(tolerance {report.tolerance:g})\n")
    for s in report.symbols:
        verdict = "ok" if s.ok else "MISMATCH"
        out.write(f"{s.symbol}: {verdict}: {s.compared} candles compared, "
                  f"{len(s.only_store)} only in the store, {len(s.only_kite)} only at Kite, "
                  f"{s.skipped} not judged (history, repaired, partial or the first)\n")
        for f in s.fields:
            extra = "" if f.matched == f.compared else (
                f" (largest {f.max_diff:+g} at {hm(f.max_at)})")
            out.write(f"  {f.field:<7} {f.matched}/{f.compared} match{extra}\n")
        if s.only_store:
            out.write("  only in the store: " + " ".join(hm(t) for t in s.only_store[:20]) + "\n")
        if s.only_kite:
            out.write("  only at Kite: " + " ".join(hm(t) for t in s.only_kite[:20]) + "\n")
    out.write("all match\n" if report.ok else f"{report.differences} difference(s)\n")
