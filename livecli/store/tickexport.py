"""Recorded ticks out of the store and into a tick file, so a recording rebuilds anywhere.

`livecli stream --record` keeps every raw tick in the store's `ticks` table; this module writes
them as a tick file (`livecli.store.tickfile` columns, in the order they were received) that
`livecli candles --ticks FILE` rebuilds into the candles the live session made. The names come
from the store's `instruments` table. CSV carries `exchange_timestamp` as ISO 8601 with +05:30
(to the second when whole, else to the microsecond); Parquet as a timestamp with time zone.
The file is written through a temporary file and renamed into place, whole or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livecli.errors import NoDataError, StoreError
from livecli.store.export import atomic_file, check_target
from livecli.store.schema import open_for_read
from livecli.store.tickfile import TICK_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

CHUNK_ROWS = 131_072

# Same order as TICK_COLUMNS; names from `instruments` (absent for an unregistered token).
_SELECT = (
    "SELECT t.instrument_token, t.exchange_timestamp, t.last_price, t.volume_traded, "
    "i.symbol, i.exchange, t.oi, t.high, t.low FROM ticks t "
    "LEFT JOIN instruments i ON i.instrument_token = t.instrument_token"
)


@dataclass(frozen=True, slots=True)
class TickSpan:
    """What the store recorded for one instrument."""

    instrument_token: int
    symbol: str
    exchange: str
    ticks: int
    first: float
    last: float


@dataclass(slots=True)
class TickExportResult:
    path: Path
    rows: int
    bytes: int
    format: str


class RecordedTicks:
    """Read-only view of the ticks a store recorded (never writes, works while a stream runs)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._conn = open_for_read(self.path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RecordedTicks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, args)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    def names(self) -> dict[int, tuple[str, str]]:
        rows = self._query("SELECT instrument_token, symbol, exchange FROM instruments").fetchall()
        return {int(t): (s, e) for t, s, e in rows}

    def spans(self) -> list[TickSpan]:
        """Per recorded instrument: how many ticks, first and last exchange time."""
        names = self.names()
        rows = self._query(
            "SELECT instrument_token, COUNT(*), MIN(exchange_timestamp), MAX(exchange_timestamp) "
            "FROM ticks GROUP BY instrument_token"
        ).fetchall()
        out = []
        for tok, n, a, b in rows:
            from livecli.store.tickfile import default_exchange

            sym, ex = names.get(int(tok), (str(tok), default_exchange(int(tok))))
            out.append(TickSpan(int(tok), sym, ex, int(n), float(a), float(b)))
        return sorted(out, key=lambda s: s.symbol)

    def chunks(
        self, tokens: list[int] | None, start: float | None, end: float | None
    ) -> Iterator[list[tuple]]:
        """Rows in TICK_COLUMNS order, in the order they were received, CHUNK_ROWS at a time.

        `start` and `end` are inclusive epoch seconds (None: open on that side).
        """
        where: list[str] = []
        args: list[Any] = []
        if tokens is not None:
            where.append(f"t.instrument_token IN ({', '.join('?' * len(tokens))})")
            args += tokens
        if start is not None:
            where.append("t.exchange_timestamp >= ?")
            args.append(start)
        if end is not None:
            where.append("t.exchange_timestamp <= ?")
            args.append(end)
        sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY t.rowid"
        cur = self._query(sql, tuple(args))
        while True:
            try:
                rows = cur.fetchmany(CHUNK_ROWS)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"cannot read {self.path}: {exc}") from None
            if not rows:
                return
            yield rows


def _table(rows: list[tuple], fmt: str) -> pa.Table:
    """One chunk as an Arrow table with the tick-file columns and types."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from livecli.store.tickfile import default_exchange

    cols = list(zip(*rows, strict=True))
    tokens = np.asarray(cols[0], np.int64)
    epoch = np.asarray(cols[1], np.float64)
    micros = np.round(epoch * 1e6).astype(np.int64)
    if fmt == "parquet":
        ts: pa.Array = pa.array(micros, pa.timestamp("us", tz="+05:30"))
    else:
        local = pa.array(micros + 19_800 * 10**6, pa.timestamp("us"))
        whole = pc.strftime(local.cast(pa.timestamp("s"), safe=False),
                            format="%Y-%m-%dT%H:%M:%S+05:30")
        fine = pc.strftime(local, format="%Y-%m-%dT%H:%M:%S+05:30")  # %S carries the fraction
        ts = pc.if_else(pa.array(micros % 1_000_000 == 0), whole, fine)
    syms = [s if s is not None else str(t) for s, t in zip(cols[4], cols[0], strict=True)]
    exs = [e if e is not None else default_exchange(int(t)) for e, t in zip(cols[5], cols[0], strict=True)]
    table = pa.table({
        "instrument_token": pa.array(tokens, pa.int64()),
        "exchange_timestamp": ts,
        "last_price": pa.array(cols[2], pa.float64()),
        "volume_traded": pa.array(cols[3], pa.int64()),
        "tradingsymbol": pa.array(syms, pa.string()),
        "exchange": pa.array(exs, pa.string()),
        "oi": pa.array(cols[6], pa.int64()),
        "high": pa.array(cols[7], pa.float64()),
        "low": pa.array(cols[8], pa.float64()),
    })
    return table.select(list(TICK_COLUMNS))


def _schema(fmt: str) -> pa.Schema:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="+05:30") if fmt == "parquet" else pa.string()
    types = {
        "instrument_token": pa.int64(), "exchange_timestamp": ts, "last_price": pa.float64(),
        "volume_traded": pa.int64(), "tradingsymbol": pa.string(), "exchange": pa.string(),
        "oi": pa.int64(), "high": pa.float64(), "low": pa.float64(),
    }
    return pa.schema([(c, types[c]) for c in TICK_COLUMNS])


def export_ticks(
    db: str | Path,
    path: Path,
    fmt: str,
    *,
    symbols: list[str] | None = None,
    start: float | None = None,
    end: float | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> TickExportResult:
    """Write the store's recorded ticks to a tick file at `path` atomically.

    Raises NoDataError when the store recorded no ticks at all (or none match), SymbolError
    naming what it holds for an unknown symbol, OutputExistsError/ExportError for the target.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from livecli.store.query import match_symbols

    check_target(path, force)
    with RecordedTicks(db) as rec:
        spans = rec.spans()
        if not spans:
            raise NoDataError(
                f"the store {rec.path} holds no recorded ticks: stream with --record to keep them"
            )
        names = {s.instrument_token: (s.symbol, s.exchange) for s in spans}
        tokens = match_symbols(symbols, names, f"the ticks of {rec.path}") if symbols else None
        total = 0
        schema = _schema(fmt)
        with atomic_file(path) as tmp:
            if fmt == "parquet":
                writer: Any = pq.ParquetWriter(tmp, schema, compression="zstd")
            else:
                opts = pacsv.WriteOptions(include_header=True, quoting_style="needed")
                writer = pacsv.CSVWriter(tmp, schema, write_options=opts)
            with writer:
                for rows in rec.chunks(tokens, start, end):
                    writer.write_table(_table(rows, fmt))
                    total += len(rows)
                    if progress is not None:
                        progress(total)
            if total == 0:
                raise NoDataError(
                    f"no recorded ticks in {rec.path} match: it holds "
                    + ", ".join(f"{s.symbol} ({s.ticks:,})" for s in spans[:20])
                )
    return TickExportResult(path, total, path.stat().st_size, fmt)
