"""Which candles a user asked for, and getting them from a tick file or from the store.

The CLI's `candles` command is a thin shell around this module: it parses arguments into a
`CandleQuery` and prints or exports the `CandleResult`. Library users can call it directly.
Nothing here loads settings or knows the CLI's option names: callers pass what they have (the
sessions table, the settings whose store to open, the labels their users typed for a bound).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

from livecli.core.intervals import Interval
from livecli.core.text import printable
from livecli.core.timeutil import at_ist, date_of, epoch, ist_day
from livecli.errors import NoDataError, SymbolError, UsageError

if TYPE_CHECKING:
    from livecli.config.settings import Settings
    from livecli.core.derive import CandleArrays


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Candle starts from `start` (inclusive) to `end` (inclusive), epoch seconds; None = open."""

    start: float | None = None
    end: float | None = None
    start_text: str | None = None
    end_text: str | None = None

    @staticmethod
    def _parse(text: str, is_end: bool, label: str) -> float:
        s = text.strip()
        try:
            if len(s) == 10:
                d = date.fromisoformat(s)
                return at_ist(d, time(23, 59, 59)) if is_end else at_ist(d, time(0, 0))
            return epoch(datetime.fromisoformat(s.replace(" ", "T", 1)))
        except ValueError:
            raise UsageError(
                f"{label} '{printable(text, 60)}' is not a date or time: use YYYY-MM-DD or "
                "YYYY-MM-DDTHH:MM (IST)"
            ) from None

    @classmethod
    def parse(
        cls, start: str | None, end: str | None, *, labels: tuple[str, str] = ("start", "end")
    ) -> TimeRange:
        """The range from `start` and `end` as users write them (a date, or a date and time).

        `labels` name the two bounds in errors the way the caller's user gave them (the CLI
        passes its option names, `("--from", "--to")`).
        """
        a = cls._parse(start, False, labels[0]) if start else None
        b = cls._parse(end, True, labels[1]) if end else None
        if a is not None and b is not None and a > b:
            raise UsageError(f"{labels[0]} {start} is after {labels[1]} {end}: swap them")
        return cls(a, b, start, end)

    def mask(self, starts):
        import numpy as np

        m = np.ones(len(starts), np.bool_)
        if self.start is not None:
            m &= starts >= self.start
        if self.end is not None:
            m &= starts <= self.end
        return m


@dataclass(slots=True)
class CandleQuery:
    interval: Interval
    symbols: list[str] = field(default_factory=list)
    time_range: TimeRange = field(default_factory=TimeRange)
    fill_gaps: bool = False


@dataclass(slots=True)
class CandleResult:
    """Candles of one interval, sorted by (token, start), with their names.

    `source` is where they were read (the store's or the tick file's path); `market` whose
    candles they are (KITE, SIMULATED, MIXED for an older store that holds both), None when
    that is not recorded (a tick file, a store no stream session wrote).
    """

    arrays: CandleArrays
    interval: Interval
    names: dict[int, tuple[str, str]]
    source: str
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    available: list[str] = field(default_factory=list)
    market: str | None = None

    def no_data(self) -> NoDataError:
        """The error for a request that matched nothing, saying what there is instead."""
        held = ", ".join(self.available[:15])
        extra = f"; it holds {held}" if held else ""
        return NoDataError(
            f"no {self.interval.name} candles in {self.source} for this request{extra}"
        )

    def symbols(self) -> list[str]:
        import numpy as np

        return [self.names.get(t, (str(t), ""))[0] for t in np.unique(self.arrays.token).tolist()]

    def default_file_name(self, fmt: str) -> str:
        """A name that says the symbols, the interval and the dates: candles_INFY_5min_2025-01-06.csv"""
        syms = sorted(self.symbols())
        label = "-".join(syms[:3]) + (f"-and-{len(syms) - 3}-more" if len(syms) > 3 else "")
        label = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label) or "none"
        if len(self.arrays):
            d0 = date_of(ist_day(int(self.arrays.start.min())))
            d1 = date_of(ist_day(int(self.arrays.start.max())))
            dates = d0.isoformat() if d0 == d1 else f"{d0.isoformat()}_{d1.isoformat()}"
        else:
            dates = "empty"
        return f"candles_{label}_{self.interval.name}_{dates}.{fmt}"


def match_symbols(
    wanted: list[str], names: Mapping[int, tuple[str, str]], where: str
) -> list[int]:
    """Tokens for symbols as users write them (SYM, EX:SYM, or a token number)."""
    by_key: dict[str, int] = {}
    for tok, (sym, ex) in names.items():
        by_key[sym.upper()] = tok
        by_key[f"{ex.upper()}:{sym.upper()}"] = tok
        by_key[str(tok)] = tok
    out: list[int] = []
    missing: list[str] = []
    for w in wanted:
        found = by_key.get(w.strip().upper())
        if found is None:
            missing.append(w)
        else:
            out.append(found)
    if missing:
        held = sorted({sym for sym, _ in names.values()})
        shown = ", ".join(printable(h, 40) for h in held[:20]) + (
            f" and {len(held) - 20} more" if len(held) > 20 else ""
        )
        asked = ", ".join(printable(m, 60) for m in missing)
        raise SymbolError(f"{asked} not in {where}: it holds {shown or 'no symbols'}")
    return out


def _select(arrays: CandleArrays, tokens: list[int] | None, rng: TimeRange) -> CandleArrays:
    import numpy as np

    m = rng.mask(arrays.start)
    if tokens:
        m &= np.isin(arrays.token, np.array(tokens, np.int64))
    return arrays if m.all() else arrays.take(np.flatnonzero(m))


def candles_from_ticks(
    path: Path, query: CandleQuery, *, sessions: Mapping[str, object] | None = None
) -> CandleResult:
    """Rebuild candles from a tick file (CANDLES.md: the live session's answer)."""
    from livecli.core.batch import rebuild_arrays
    from livecli.core.derive import CandleArrays
    from livecli.core.sessions import check_interval_fits
    from livecli.store.tickfile import read_tick_file

    tf = read_tick_file(path)
    exchanges = {tok: ex for tok, (_, ex) in tf.names.items()}
    check_interval_fits(query.interval, sorted(set(exchanges.values())) or ["NSE"],
                        sessions)  # type: ignore[arg-type]
    tokens = match_symbols(query.symbols, tf.names, str(path)) if query.symbols else None
    res = rebuild_arrays(tf.columns, [query.interval], exchanges=exchanges,
                         sessions=sessions)  # type: ignore[arg-type]
    arrays = res.candles[query.interval.minutes]
    arrays = _select(arrays, tokens, query.time_range)
    if query.fill_gaps:
        from livecli.core.batch import fill_candle_gaps

        filled = fill_candle_gaps(arrays.to_candles(query.interval.minutes, tf.names))
        arrays = CandleArrays.from_candles(filled)
    return CandleResult(arrays, query.interval, tf.names, str(path), tf.skipped, tf.skipped_reasons)


def store_location(
    db: Path | None, settings: Settings, *, simulated: bool | None = None
) -> tuple[Path, bool]:
    """The store to use and whether it is the default one (whose folder may be created).

    `db` (the CLI's --db) wins; otherwise the settings' store for the source
    (`Settings.store_path_for`: flags > env > files > default). `simulated=None` means the
    source a stream would use now: Kite when any Kite credential is configured, else the
    simulated market, so that `candles` after a plain `stream` reads what that stream wrote.
    """
    if db is not None:
        return Path(db).expanduser(), False
    if simulated is None:
        simulated = not settings.kite_configured
    path = settings.store_path_for(simulated)
    return Path(path).expanduser(), settings.sources.get("store.path", "default") == "default"


def store_path(db: Path | None, settings: Settings, *, simulated: bool | None = None) -> Path:
    """The candle store a read command should open (see `store_location`)."""
    return store_location(db, settings, simulated=simulated)[0]


def _describe_span(span) -> str:
    from livecli.core.timeutil import iso

    a = iso(span.first_start)[:16].replace("T", " ")
    b = iso(span.last_start)[:16].replace("T", " ")
    return f"{span.symbol} ({a} to {b})"


def candles_from_store(
    path: Path, query: CandleQuery, *, sessions: Mapping[str, object] | None = None
) -> CandleResult:
    """Candles of any whole-minute interval, derived from the store's closed 1-minute candles.

    Derivation anchors at each exchange's session open (CANDLES.md rule 2), so a named interval
    equals what the live session built. Raises NoDataError when there is no store at `path`,
    StoreError when it is not a livecli store, SymbolError naming what the store holds.
    """
    import numpy as np

    from livecli.core.derive import derive
    from livecli.core.sessions import check_interval_fits, exchange_of_token
    from livecli.core.timeutil import DAY_S, IST_OFFSET_S
    from livecli.store.reader import CandleStoreReader

    path = Path(path)
    with CandleStoreReader(path) as reader:
        market = reader.source()
        names = reader.symbols()
        tokens = (
            match_symbols(query.symbols, names, f"the store {path}") if query.symbols else None
        )
        exchanges = {tok: ex for tok, (_, ex) in names.items()}
        chosen = tokens if tokens is not None else list(names)
        check_interval_fits(query.interval, sorted({exchanges[t] for t in chosen}) or ["NSE"],
                            sessions)  # type: ignore[arg-type]
        rng = query.time_range
        # A derived candle starting at or before `end` holds minutes up to end + its length.
        hi = None if rng.end is None else rng.end + query.interval.seconds
        # Forming minutes too: they are shown and exported, marked not closed, and they keep
        # the longer candle they fall in from being closed.
        m1 = reader.candles(1, tokens, rng.start, hi, closed_only=False)
        clocks = None
        if query.interval.minutes > 1 and len(m1) and (tokens is not None or rng.end is not None):
            # Only some instruments' minutes, or not the latest ones, were read: whether an
            # interval is over is for the whole store to say (core.derive's docstring).
            days = np.unique((m1.start + IST_OFFSET_S) // DAY_S * DAY_S - IST_OFFSET_S)
            held = {exchanges.get(t) or exchange_of_token(t) for t in np.unique(m1.token).tolist()}
            clocks = reader.recording_clocks(days.tolist(), held)
        arrays = derive(m1, query.interval.minutes, exchanges=exchanges or None,
                        sessions=sessions, clocks=clocks)  # type: ignore[arg-type]
        arrays = _select(arrays, None, rng)
        if query.fill_gaps and len(arrays):
            from livecli.core.batch import fill_candle_gaps
            from livecli.core.derive import CandleArrays

            filled = fill_candle_gaps(arrays.to_candles(query.interval.minutes, names))
            arrays = CandleArrays.from_candles(filled)
        available: list[str] = []
        if len(arrays) == 0:
            wanted = None if tokens is None else set(tokens)
            available = [
                _describe_span(s) for s in reader.spans(1)
                if wanted is None or s.instrument_token in wanted
            ]
    return CandleResult(arrays, query.interval, names, str(path), available=available,
                        market=market)


__all__ = [
    "CandleQuery",
    "CandleResult",
    "TimeRange",
    "candles_from_store",
    "candles_from_ticks",
    "match_symbols",
    "store_location",
    "store_path",
]
