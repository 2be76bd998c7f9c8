"""The instrument master: which instrument token a symbol such as `NSE:RELIANCE` stands for.

The ticker speaks only in instrument tokens, users only in symbols, and Kite publishes the
mapping as one CSV dump per exchange each morning (about 08:30 IST). Symbols are resolved here,
before anything connects, so a typo fails at once with the closest real symbols named. Tokens
can be reused for other instruments from one day to the next, so the key is always exchange +
tradingsymbol and the dump is re-fetched once per trading day: a copy fetched before today's
08:30 IST publication is stale after it. All times are IST via livecli.core.timeutil.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livecli.config.files import atomic_path
from livecli.config.schema import EXCHANGES
from livecli.core.text import printable
from livecli.core.timeutil import DAY_S, day_start, ist_day
from livecli.errors import SymbolError

if TYPE_CHECKING:
    from livecli.config.settings import Settings

log = logging.getLogger("livecli.instruments")

PUBLISH_S = 8 * 3600 + 30 * 60  # Kite's daily dump is out by about 08:30 IST
CACHE_VERSION = 1
MAX_UNKNOWN_SHOWN = 5  # unknown symbols named (with their closest matches) in one error
INDEX_SEGMENT = "INDICES"
_FIELDS = (
    "instrument_token", "exchange_token", "tradingsymbol", "name", "exchange", "segment",
    "instrument_type", "tick_size", "lot_size", "expiry", "strike",
)


@dataclass(frozen=True, slots=True)
class Instrument:
    """One row of Kite's instrument dump (last_price left out: it is stale by design)."""

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    exchange: str
    segment: str
    instrument_type: str
    tick_size: float
    lot_size: int
    expiry: date | None
    strike: float

    @property
    def key(self) -> str:
        """`EXCHANGE:TRADINGSYMBOL`, the way users write it and livecli stores it."""
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_index(self) -> bool:
        return self.segment == INDEX_SEGMENT

    def to_row(self) -> list[Any]:
        row = [getattr(self, f) for f in _FIELDS]
        row[_FIELDS.index("expiry")] = self.expiry.isoformat() if self.expiry else None
        return row

    @classmethod
    def from_row(cls, row: list[Any]) -> Instrument:
        d = dict(zip(_FIELDS, row, strict=True))
        d["expiry"] = date.fromisoformat(d["expiry"]) if d["expiry"] else None
        return cls(**d)

    @classmethod
    def from_kite(cls, row: dict[str, Any]) -> Instrument:
        """From kiteconnect's parsed CSV row (expiry a date or "", exchange_token a string)."""
        expiry = row.get("expiry")
        if isinstance(expiry, str):
            expiry = date.fromisoformat(expiry) if len(expiry) == 10 else None
        etok = str(row.get("exchange_token", "0"))
        return cls(
            instrument_token=int(row["instrument_token"]),
            exchange_token=int(etok) if etok.isdigit() else 0,
            tradingsymbol=str(row["tradingsymbol"]),
            name=str(row.get("name") or ""),
            exchange=str(row["exchange"]),
            segment=str(row.get("segment") or ""),
            instrument_type=str(row.get("instrument_type") or ""),
            tick_size=float(row.get("tick_size") or 0.0),
            lot_size=int(row.get("lot_size") or 0),
            expiry=expiry,
            strike=float(row.get("strike") or 0.0),
        )


def last_publication(now: float) -> float:
    """The latest 08:30 IST at or before `now`: caches fetched earlier than this are stale."""
    publish = day_start(ist_day(now)) + PUBLISH_S
    return publish if now >= publish else publish - DAY_S


def is_fresh(fetched_at: float, now: float) -> bool:
    return fetched_at >= last_publication(now)


def parse_symbol(text: str, default_exchange: str = "NSE") -> tuple[str, str]:
    """(`EXCHANGE`, `TRADINGSYMBOL`) from `RELIANCE`, `NSE:RELIANCE` or `NSE:NIFTY 50`."""
    raw = text.strip()
    exchange, sep, symbol = raw.partition(":")
    if not sep:
        exchange, symbol = default_exchange, raw
    exchange = exchange.strip().upper()
    symbol = " ".join(symbol.split()).upper()
    if not symbol or not exchange:
        raise SymbolError(
            f"symbol '{printable(text, 60)}' is incomplete: write it as RELIANCE, NSE:RELIANCE "
            "or 'NSE:NIFTY 50'"
        )
    if exchange not in (*EXCHANGES, INDEX_SEGMENT):
        raise SymbolError(
            f"unknown exchange '{printable(exchange, 20)}' in symbol '{printable(text, 60)}': "
            f"use one of {', '.join(EXCHANGES)}"
        )
    return exchange, symbol


class _Table:
    """One exchange's instruments, indexed by tradingsymbol."""

    def __init__(self, instruments: list[Instrument]) -> None:
        self.instruments = instruments
        self.by_symbol = {i.tradingsymbol.upper(): i for i in instruments}


class InstrumentMaster:
    """Kite's instrument dumps, fetched once per trading day per exchange and cached on disk."""

    def __init__(
        self,
        api_key: str | None,
        access_token: str | None,
        api_url: str,
        cache_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key
        self.access_token = access_token
        self.api_url = api_url
        self.cache_dir = Path(cache_dir)
        self.clock = clock
        self._tables: dict[str, _Table] = {}
        self._loaded_at: dict[str, float] = {}  # exchange -> when its dump was fetched
        self.fetches = 0  # REST downloads made by this object (the cache saves the rest)

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> InstrumentMaster:
        return cls(
            settings.kite.api_key, settings.kite.access_token, settings.kite.api_url,
            settings.cache_dir / "instruments", **kw,
        )

    def cache_path(self, exchange: str) -> Path:
        return self.cache_dir / f"{exchange.upper()}.json"

    # --- loading -----------------------------------------------------------------------------
    def load(self, exchange: str, *, refresh: bool = False) -> list[Instrument]:
        """Every instrument of `exchange`: from memory, the day's disk cache, or Kite."""
        exchange = exchange.strip().upper()
        if exchange not in EXCHANGES:
            raise SymbolError(
                f"unknown exchange '{printable(exchange, 20)}': use one of {', '.join(EXCHANGES)}"
            )
        table = None if refresh else self._tables.get(exchange)
        if table is None or not self._fresh_in_memory(exchange):
            cached = None if refresh else self._read_cache(exchange)
            if cached is None:
                cached = self._fetch(exchange)
            table = _Table(cached)
            self._tables[exchange] = table
        return table.instruments

    def _fresh_in_memory(self, exchange: str) -> bool:
        return is_fresh(self._loaded_at.get(exchange, 0.0), self.clock())

    def _read_cache(self, exchange: str) -> list[Instrument] | None:
        path = self.cache_path(exchange)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if (
                doc.get("version") != CACHE_VERSION
                or doc.get("api_url") != self.api_url
                or doc.get("exchange") != exchange
                or not is_fresh(float(doc["fetched_at"]), self.clock())
            ):
                return None
            rows = [Instrument.from_row(r) for r in doc["rows"]]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.debug("ignoring unreadable instrument cache %s: %s", path, exc)
            return None
        self._loaded_at[exchange] = float(doc["fetched_at"])
        return rows

    def _fetch(self, exchange: str) -> list[Instrument]:
        from livecli.kite.rest import call, client

        kite = client(self.api_key, self.access_token, self.api_url)
        fetched_at = self.clock()
        rows = call(
            lambda: kite.instruments(exchange),
            doing=f"fetching the {exchange} instrument list",
            api_url=self.api_url,
        )
        self.fetches += 1
        instruments = [Instrument.from_kite(r) for r in rows]
        if not instruments:
            raise SymbolError(f"Kite lists no instruments for exchange {exchange}")
        self._write_cache(exchange, instruments, fetched_at)
        self._loaded_at[exchange] = fetched_at
        return instruments

    def _write_cache(self, exchange: str, instruments: list[Instrument], fetched_at: float) -> None:
        doc = {
            "version": CACHE_VERSION,
            "exchange": exchange,
            "api_url": self.api_url,
            "fetched_at": fetched_at,
            "fields": list(_FIELDS),
            "rows": [i.to_row() for i in instruments],
        }
        path = self.cache_path(exchange)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
                json.dump(doc, fh, separators=(",", ":"))
        except OSError as exc:
            # The cache only saves a download; failing to write it must not fail the command.
            log.warning("cannot cache instruments at %s: %s", path, exc.strerror)

    # --- lookups -----------------------------------------------------------------------------
    def _table(self, exchange: str) -> _Table:
        self.load(exchange)
        return self._tables[exchange]

    def resolve(self, symbols: Iterable[str], default_exchange: str = "NSE") -> list[Instrument]:
        """The instruments for `symbols`, in order, duplicates dropped.

        Raises SymbolError naming every unknown symbol with its closest matches.
        """
        found: list[Instrument] = []
        seen: set[str] = set()  # keys already in `found`: a list test here was O(n^2)
        unknown: list[tuple[str, str]] = []
        for text in symbols:
            exchange, symbol = parse_symbol(text, default_exchange)
            inst = self._lookup(exchange, symbol)
            if inst is None:
                unknown.append((exchange, symbol))
            elif inst.key not in seen:
                seen.add(inst.key)
                found.append(inst)
        if unknown:
            # Closest matches cost a scan of the exchange each: name them for the first few.
            msgs = [self._unknown_message(ex, sym) for ex, sym in unknown[:MAX_UNKNOWN_SHOWN]]
            if len(unknown) > MAX_UNKNOWN_SHOWN:
                msgs.append(f"and {len(unknown) - MAX_UNKNOWN_SHOWN} more unknown symbols")
            raise SymbolError("; ".join(msgs))
        return found

    def _lookup(self, exchange: str, symbol: str) -> Instrument | None:
        if exchange == INDEX_SEGMENT:  # `INDICES:NIFTY 50`: indices are listed under NSE/BSE
            for ex in ("NSE", "BSE"):
                inst = self._table(ex).by_symbol.get(symbol)
                if inst is not None and inst.is_index:
                    return inst
            return None
        return self._table(exchange).by_symbol.get(symbol)

    def _unknown_message(self, exchange: str, symbol: str) -> str:
        ex = "NSE" if exchange == INDEX_SEGMENT else exchange
        close = self.closest(symbol, ex)
        msg = f"unknown symbol {exchange}:{printable(symbol, 60)}"
        if close:
            msg += f" (closest: {', '.join(i.key for i in close)})"
        elif re.search(r"\d(FUT|CE|PE)$", symbol) and ex not in ("NFO", "BFO", "CDS", "BCD", "MCX"):
            msg += f" (derivatives are listed under NFO: try NFO:{printable(symbol, 60)})"
        return msg + f"; find symbols with `livecli instruments --exchange {ex} TEXT`"

    def closest(self, symbol: str, exchange: str, n: int = 5) -> list[Instrument]:
        """Up to `n` instruments whose tradingsymbol looks like `symbol` (prefix, then difflib)."""
        table = self._table(exchange)
        symbol = symbol.upper()
        names = list(table.by_symbol)
        picks = sorted((k for k in names if k.startswith(symbol)), key=len)[:n]
        if len(picks) < n:
            for k in difflib.get_close_matches(symbol, names, n=n, cutoff=0.6):
                if k not in picks:
                    picks.append(k)
        return [table.by_symbol[k] for k in picks[:n]]

    def search(self, text: str, exchange: str, limit: int | None = None) -> list[Instrument]:
        """Instruments of `exchange` whose tradingsymbol or name contains `text`, best first:
        exact symbol, then symbol prefix, then symbol substring, then name substring."""
        instruments = self.load(exchange)
        needle = " ".join(text.split()).upper()
        if not needle:
            hits = sorted(instruments, key=lambda i: i.tradingsymbol)
        else:
            scored = []
            for i in instruments:
                ts, name = i.tradingsymbol.upper(), i.name.upper()
                if ts == needle:
                    rank = 0
                elif ts.startswith(needle):
                    rank = 1
                elif needle in ts:
                    rank = 2
                elif needle in name:
                    rank = 3
                else:
                    continue
                scored.append((rank, len(ts), ts, i))
            scored.sort(key=lambda t: t[:3])
            hits = [t[3] for t in scored]
        return hits[:limit] if limit else hits
