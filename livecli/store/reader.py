"""CandleStoreReader: read-only access to a candle store, fast enough for a million rows.

Opened with SQLite's `mode=ro` URI, so reading never creates a file, never takes a write lock,
and works while `livecli stream` writes (WAL). Candles come back column-wise as `CandleArrays`:
the rows stream out of the cursor straight into one float64 numpy buffer (every stored number
is exact in float64), which avoids building a list of a million tuples and is about twice as
fast as pandas' read_sql on the same query (see bench/export.py).
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livecli.core.timeutil import DAY_S
from livecli.errors import StoreError
from livecli.store.meta import read_source
from livecli.store.schema import JSON_COLUMNS, has_origin, open_for_read

if TYPE_CHECKING:
    from livecli.core.derive import CandleArrays

# The flags travel as one number (partial + 2*synthetic + 4*closed + 8*origin code): one Python
# object fewer per row. A store of schema 1 has no origin column: all its candles are live.
_ORIGIN_CODE_SQL = "(CASE origin WHEN 'history' THEN 8 WHEN 'repaired' THEN 16 ELSE 0 END)"
_SELECT = (
    "SELECT instrument_token, start, open, high, low, close, volume, COALESCE(oi, -1), ticks, "
    f"partial | (synthetic << 1) | (closed << 2) | {_ORIGIN_CODE_SQL} FROM candles"
)
_SELECT_V1 = _SELECT.replace(f" | {_ORIGIN_CODE_SQL}", "")
# Per exchange, for one IST day: the latest closed real minute. One index seek per instrument
# (the primary key leads with the token), never a scan of the day's candles.
_LATEST_MINUTE = (
    "SELECT i.exchange, MAX((SELECT c.start FROM candles c WHERE c.instrument_token = "
    "i.instrument_token AND c.interval_min = 1 AND c.start >= ? AND c.start < ? AND c.closed = 1 "
    "AND c.synthetic = 0 ORDER BY c.start DESC LIMIT 1)) FROM instruments i"
)
_NCOLS = 10


@dataclass(frozen=True, slots=True)
class SymbolSpan:
    """What the store holds for one instrument at one interval."""

    instrument_token: int
    symbol: str
    exchange: str
    first_start: int
    last_start: int
    candles: int


class CandleStoreReader:
    """Read candles, instruments and sessions from a livecli store (never writes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._conn = open_for_read(self.path)
        try:
            self._select = _SELECT if has_origin(self._conn) else _SELECT_V1
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> CandleStoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, tuple(args))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    def source(self) -> str | None:
        """Whose candles the store holds: KITE, SIMULATED, MIXED (an older store), or None."""
        try:
            return read_source(self._conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    # --- instruments ---------------------------------------------------------------------------
    def symbols(self) -> dict[int, tuple[str, str]]:
        """{token: (symbol, exchange)} of every instrument the store knows."""
        rows = self._query("SELECT instrument_token, symbol, exchange FROM instruments").fetchall()
        return {int(t): (s, e) for t, s, e in rows}

    def intervals(self) -> list[int]:
        """The candle lengths (minutes) stored, shortest first."""
        rows = self._query(
            "SELECT DISTINCT interval_min FROM candles ORDER BY interval_min"
        ).fetchall()
        return [int(r[0]) for r in rows]

    def spans(self, interval_min: int = 1) -> list[SymbolSpan]:
        """Per instrument: the first and last closed candle stored at `interval_min`, and how many."""
        names = self.symbols()
        rows = self._query(
            "SELECT instrument_token, MIN(start), MAX(start), COUNT(*) FROM candles "
            "WHERE interval_min = ? AND closed = 1 GROUP BY instrument_token",
            (interval_min,),
        ).fetchall()
        out = []
        for tok, a, b, n in rows:
            sym, ex = names.get(int(tok), (str(tok), ""))
            out.append(SymbolSpan(int(tok), sym, ex, int(a), int(b), int(n)))
        return sorted(out, key=lambda s: s.symbol)

    # --- candles -------------------------------------------------------------------------------
    def candles(
        self,
        interval_min: int,
        tokens: Iterable[int] | None = None,
        start: float | None = None,
        end: float | None = None,
        *,
        closed_only: bool = True,
    ) -> CandleArrays:
        """Stored candles of one interval, rows sorted by (token, start).

        `start` inclusive, `end` exclusive (epoch seconds); None leaves that side open.
        """
        where = ["interval_min = ?"]
        args: list[Any] = [int(interval_min)]
        if closed_only:
            where.append("closed = 1")
        toks = sorted({int(t) for t in tokens}) if tokens is not None else None
        if toks is not None:
            if not toks:
                from livecli.core.derive import CandleArrays

                return CandleArrays.empty()
            where.append(f"instrument_token IN ({', '.join('?' * len(toks))})")
            args += toks
        if start is not None:
            where.append("start >= ?")
            args.append(int(-(-start // 1)))  # starts are whole seconds: ceil keeps >= exact
        if end is not None:
            where.append("start < ?")
            args.append(int(-(-end // 1)))
        cur = self._query(f"{self._select} WHERE {' AND '.join(where)}", args)
        return _to_arrays(cur)

    def recording_clocks(
        self, days: Iterable[int], exchanges: Iterable[str] | None = None
    ) -> dict[tuple[str, int], int]:
        """{(exchange, day): end of the latest closed real minute stored that day}.

        `days` are IST midnights as epoch seconds; what `core.derive.derive` takes as `clocks`
        to judge whether an interval is over when it was given only some instruments' minutes.
        """
        wanted = sorted(set(exchanges)) if exchanges is not None else None
        sql = _LATEST_MINUTE
        if wanted is not None:
            if not wanted:
                return {}
            sql += f" WHERE i.exchange IN ({', '.join('?' * len(wanted))})"
        sql += " GROUP BY i.exchange"
        out: dict[tuple[str, int], int] = {}
        for day in sorted({int(d) for d in days}):
            for ex, latest in self._query(sql, [day, day + DAY_S, *(wanted or [])]).fetchall():
                if latest is not None:
                    out[(str(ex), day)] = int(latest) + 60
        return out

    def one_minute(
        self, tokens: Iterable[int] | None = None, start: float | None = None,
        end: float | None = None,
    ) -> CandleArrays:
        """Closed 1-minute candles, the source every other interval is derived from."""
        return self.candles(1, tokens, start, end)

    # --- sessions ------------------------------------------------------------------------------
    def latest_session(self) -> dict[str, Any] | None:
        """The most recent stream session's row (JSON columns decoded), or None."""
        cur = self._query("SELECT * FROM sessions ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
        if row is None:
            return None
        out = dict(zip([d[0] for d in cur.description], row, strict=True))
        for key in JSON_COLUMNS:
            if out.get(key):
                try:
                    out[key] = json.loads(out[key])
                except ValueError:
                    out[key] = None
        return out


def _to_arrays(cur: sqlite3.Cursor) -> CandleArrays:
    import numpy as np

    from livecli.core.derive import CandleArrays

    # Iterating the cursor itself is faster than fetchall/fetchmany: no list of row tuples.
    flat = np.fromiter(itertools.chain.from_iterable(cur), np.float64)
    if len(flat) == 0:
        return CandleArrays.empty()
    m = flat.reshape(-1, _NCOLS)
    i8 = np.int64
    flags = m[:, 9].astype(i8)
    arrays = CandleArrays(
        m[:, 0].astype(i8), m[:, 1].astype(i8), m[:, 2].copy(), m[:, 3].copy(), m[:, 4].copy(),
        m[:, 5].copy(), m[:, 6].astype(i8), m[:, 7].astype(i8), m[:, 8].astype(i8),
        (flags & 1).astype(np.bool_), (flags & 2).astype(np.bool_), (flags & 4).astype(np.bool_),
        (flags >> 3).astype(np.int8),
    )
    # The primary key already orders a full scan by (token, start); sorted() only checks.
    return arrays.sorted()
