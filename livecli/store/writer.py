"""StoreWriter: the live session's way into the candle store, off the tick path.

The tick path must never wait for a disk, so every `put_*` call only appends to an in-memory
batch under a lock; a background thread owning its own connection writes each batch in one
transaction every `flush_interval_s`. A killed process therefore loses at most the last flush,
and the database always opens cleanly (SQLite's WAL journal guarantees the rest). A failed write
(disk full, file made read-only, locked by another program) never reaches the tick path: it is
recorded in `writer.error` for the session to report, and the batch is retried on the next flush.
Writes that keep failing for GIVE_UP_S are not a hiccup any more but a store that cannot be
written (disk full): the writer then sets `writer.failure`, which the session polls to stop.

A writer owns its store: it takes the store's lock (store.owner) before opening it and keeps it
until stop(), so a second stream on the same store is refused instead of overwriting candles.
It claims the store for its session's source (store.meta) in the same transaction as the
session's row, so a simulated session never writes into a store of Kite candles, or the reverse.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livecli.core.candles import Candle
from livecli.core.jsontext import dumps_in_pieces
from livecli.core.status import LiveStatus
from livecli.core.ticks import TickColumns
from livecli.errors import StoreError
from livecli.store.meta import claim_source
from livecli.store.owner import StoreLock
from livecli.store.schema import (
    JSON_COLUMNS,
    SESSION_STATUS_COLUMNS,
    TICK_ROW_COLUMNS,
    check_writable,
    open_for_write,
)

if TYPE_CHECKING:
    from livecli.core.closed import ClosedCandles

log = logging.getLogger("livecli.store")

# Beyond this many rows waiting (the disk has been failing for a long while) new rows are
# dropped and counted rather than growing memory without bound.
MAX_PENDING_CANDLES = 1_000_000
MAX_PENDING_TICKS = 5_000_000
HEARTBEAT_S = 1.0
# Failed writes for this long (several flushes in a row) mean the store cannot be written: long
# enough to ride out a lock held by another program for a moment, short enough that a stream
# on a full disk stops within seconds instead of running on and keeping nothing.
GIVE_UP_S = 2.5

UPSERT_CANDLE = """
INSERT INTO candles (instrument_token, interval_min, start, open, high, low, close, volume, oi,
                     ticks, partial, synthetic, closed, origin)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (instrument_token, interval_min, start) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume = excluded.volume, oi = excluded.oi, ticks = excluded.ticks,
    partial = excluded.partial, synthetic = excluded.synthetic, closed = excluded.closed,
    origin = excluded.origin
WHERE (excluded.closed = 1 OR candles.closed = 0) AND (excluded.partial = 0 OR candles.partial = 1)
"""
# A forming candle never overwrites a closed one (a late shutdown write cannot undo a close), and
# a partial one (a session that began mid-minute) never overwrites one that is not.

UPSERT_INSTRUMENT = """
INSERT INTO instruments (instrument_token, symbol, exchange) VALUES (?, ?, ?)
ON CONFLICT (instrument_token) DO UPDATE SET symbol = excluded.symbol, exchange = excluded.exchange
"""

INSERT_TICK = f"INSERT INTO ticks ({', '.join(TICK_ROW_COLUMNS)}) VALUES ({', '.join('?' * len(TICK_ROW_COLUMNS))})"


def _register_numpy_adapters() -> None:
    """Let numpy scalars (what decoded tick columns hold) be bound like Python numbers."""
    import numpy as np

    ints: tuple[type, ...] = (np.int64, np.int32, np.int16, np.int8,
                              np.uint64, np.uint32, np.uint16, np.uint8, np.bool_)
    for t in ints:
        sqlite3.register_adapter(t, int)  # numpy ints take int()
    for t in (np.float64, np.float32):
        sqlite3.register_adapter(t, float)  # type: ignore[arg-type]


_register_numpy_adapters()


def _candle_row(c: Candle) -> tuple:
    return (
        int(c.instrument_token), int(c.interval_min), int(c.start), float(c.open), float(c.high),
        float(c.low), float(c.close), int(c.volume), None if c.oi is None else int(c.oi),
        int(c.ticks), int(bool(c.partial)),
        int(bool(c.synthetic)), int(bool(c.closed)), c.origin,
    )


def _status_dict(status: dict[str, Any] | LiveStatus | None,
                 symbols_from: dict[str, Any] | LiveStatus | None) -> dict[str, Any] | None:
    """The session columns of `status`, its per-symbol part taken from `symbols_from` (an
    earlier status whose table is not written yet) or, when that is None, left as stored."""
    if status is None:
        return None
    if isinstance(status, LiveStatus):
        # Symbols as columns: 9000 of them a second encode in a fraction of the keyed form's time.
        out = _prepare_status(status.to_json_dict(symbol_columns=True))
    else:
        out = dict(status)
    if symbols_from is status:
        return out
    out.pop("per_symbol", None)
    if symbols_from is not None:
        table = _status_dict(symbols_from, symbols_from)
        if table is not None and "per_symbol" in table:
            out["per_symbol"] = table["per_symbol"]
    return out


def _tick_row(row: tuple | Mapping[str, Any]) -> tuple:
    if isinstance(row, Mapping):
        return tuple(row.get(col) for col in TICK_ROW_COLUMNS)
    t = tuple(row)
    if len(t) < len(TICK_ROW_COLUMNS):
        t = t + (None,) * (len(TICK_ROW_COLUMNS) - len(t))
    return t[: len(TICK_ROW_COLUMNS)]


class TickBlock:
    """One frame's ticks as the decoder gave them (numpy columns, Kite's sentinels: -1 for no
    volume or OI, NaN for no high or low), made into rows on the writer's thread.

    Handing the writer columns, not a tuple per tick, keeps the per-tick Python work off the
    receiving path and leaves no tracked object per queued tick for the garbage collector;
    the rows are made in a few C-level calls, so the writer never holds the GIL for long."""

    __slots__ = ("cols", "received_at")

    def __init__(self, cols: TickColumns, received_at: float) -> None:
        self.cols = cols
        self.received_at = received_at

    def __len__(self) -> int:
        return len(self.cols)

    def rows(self) -> list[tuple]:
        import numpy as np

        c = self.cols
        vol, oi = np.asarray(c.volume), np.asarray(c.oi)
        hi, lo = np.asarray(c.day_high), np.asarray(c.day_low)
        return list(zip(np.asarray(c.token).tolist(), np.asarray(c.time).tolist(),
                        np.asarray(c.price).tolist(), _none_where(vol, vol < 0),
                        _none_where(oi, oi < 0), _none_where(hi, np.isnan(hi)),
                        _none_where(lo, np.isnan(lo)), [self.received_at] * len(c), strict=True))


def _none_where(a: Any, absent: Any) -> list[Any]:
    """`a` as Python numbers, None where `absent`."""
    if not absent.any():
        return a.tolist()
    out = a.astype(object)
    out[absent] = None
    return out.tolist()


def _json(value: Any) -> str | None:
    # In pieces: the writer thread encodes a 9000-symbol status every second, and one
    # json.dumps of it would keep the receiving thread out for its whole length.
    return None if value is None else dumps_in_pieces(value, separators=(",", ":"), default=str)


class StoreWriter:
    """Writes candles, ticks and session status to a store from a background thread.

    Thread-safe: `put_*` may be called from any thread and return at once. `begin_session`
    is synchronous (it returns the session id); `stop()` flushes everything and closes.
    """

    def __init__(
        self, path: str | Path, flush_interval_s: float = 0.5, *, create_folder: bool = False,
        source: str | None = None,
    ) -> None:
        """Own and open the store at `path`; StoreError when another process writes it.

        `source` (KITE or SIMULATED) claims the store for that source at once, so a store of
        the other source is refused before anything is even queued; without it the claim is
        made by `begin_session`.
        """
        self.path = check_writable(Path(path), create_folder=create_folder)
        self.flush_interval_s = flush_interval_s
        self._owner = StoreLock(self.path).acquire()
        try:
            self._conn = open_for_write(self.path, create_folder=create_folder)
        except BaseException:
            self._owner.release()
            raise
        if source:
            try:
                self._claim(source)
            except BaseException:
                self._conn.close()
                self._owner.release()
                raise
        self._lock = threading.Lock()  # guards the pending batches: held for appends only
        self._db_lock = threading.Lock()  # guards the connection
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._candles: list[tuple | ClosedCandles] = []
        self._ticks: list[list | TickBlock] = []  # batches of rows, or of columns
        self._ticks_n = 0  # ticks in them
        self._instruments: dict[int, tuple[str, str]] = {}
        self._known: set[int] = set()
        self._status: dict[str, Any] | LiveStatus | None = None
        # The newest status given with its per-symbol part that is not written yet: a status
        # given without one (`put_status(symbols=False)`) leaves the stored table as it is.
        self._symbols_from: dict[str, Any] | LiveStatus | None = None
        self._end: tuple[str, bool] | None = None
        self._last_heartbeat = 0.0
        self._done = threading.Condition()
        self._requested = 0  # flush requests made / served, so flush() can wait for its own
        self._served = 0
        self.session_id: int | None = None
        self.candles_stored = 0
        self.ticks_stored = 0
        self.flushes = 0
        self.failures = 0
        self.dropped_candles = 0
        self.dropped_ticks = 0
        self.error: str | None = None
        self.error_at: float | None = None
        # Set once writes have failed for GIVE_UP_S; the session stops on it like on a dead feed.
        self.failure: StoreError | None = None
        self._failing_since: float | None = None  # monotonic time of the first failure in a row
        self._refused = False  # begin_session was refused: this writer writes nothing at all
        self._locked_out = False  # the last failure was another program holding the database
        self._thread = threading.Thread(target=self._run, name="livecli-store-writer", daemon=True)
        self._thread.start()

    # --- the tick path: append and return ----------------------------------------------------
    def put_candles(self, candles: Iterable[Candle]) -> None:
        """Closed (or, at shutdown, forming) candles; a closed one replaces a stored forming one."""
        candles = candles if isinstance(candles, list) else list(candles)
        rows = [_candle_row(c) for c in candles]
        names = {c.instrument_token: (c.symbol, c.exchange) for c in candles if c.symbol}
        with self._lock:
            if len(self._candles) >= MAX_PENDING_CANDLES:
                self.dropped_candles += len(rows)
                return
            self._candles.extend(rows)
            for tok, name in names.items():
                if tok not in self._known:
                    self._instruments[tok] = name

    def put_candle_batch(self, batch: ClosedCandles) -> None:
        """Closed candles as the engine closed them: queued as is, made into rows on the
        writer's thread (a minute's end with 9000 instruments costs the receiving path nothing)."""
        if not len(batch):
            return
        with self._lock:
            if len(self._candles) >= MAX_PENDING_CANDLES:
                self.dropped_candles += len(batch)
                return
            self._candles.append(batch)  # expanded in _take, in order with the other rows

    def put_ticks(self, rows: Iterable[tuple | Mapping[str, Any]]) -> None:
        """Raw ticks in TICK_ROW_COLUMNS order (tuples) or as dicts with those keys."""
        batch = list(rows)
        self._put_ticks(batch, len(batch))

    def put_tick_columns(self, cols: TickColumns, received_at: float) -> None:
        """One frame's raw ticks as columns (the receiving path's form: see TickBlock)."""
        self._put_ticks(TickBlock(cols, received_at), len(cols))

    def _put_ticks(self, batch: list | TickBlock, n: int) -> None:
        if not n:
            return
        with self._lock:
            if self._ticks_n >= MAX_PENDING_TICKS:
                self.dropped_ticks += n
                return
            self._ticks.append(batch)
            self._ticks_n += n

    def put_status(self, status: LiveStatus | Mapping[str, Any], symbols: bool = True) -> None:
        """The session's latest status: a `LiveStatus`, or a mapping of its JSON form.

        Its JSON form (`to_json_dict()`) is split into the session row's columns and the
        `status` JSON, which holds every other field, so a new field needs nothing here.
        With `symbols` False its per-symbol part is not written: the stored one stays (a
        session of thousands of instruments refreshes that part less often than each second).
        """
        if isinstance(status, LiveStatus):
            # Immutable: serialised on the writer's thread (9000 symbols take milliseconds the
            # session's clock thread, and the GIL the receiving path needs, are spared).
            prepared: dict[str, Any] | LiveStatus = status
        else:
            prepared = _prepare_status(status)  # serialised now: the caller may keep mutating it
        with self._lock:
            self._status = prepared
            if symbols:
                self._symbols_from = prepared

    def register_instruments(self, names: Mapping[int, tuple[str, str]]) -> None:
        """{token: (symbol, exchange)}, so stored candles can be asked for by symbol."""
        with self._lock:
            for tok, (sym, ex) in names.items():
                self._instruments[int(tok)] = (str(sym), str(ex))

    # --- session lifecycle --------------------------------------------------------------------
    def begin_session(self, info: Mapping[str, Any]) -> int:
        """Record a new stream session and return its id (pid defaults to this process).

        StoreError when the store holds another source's candles; the writer then writes
        nothing more (not even what was put before), and stop() only releases the store.
        """
        now = time.time()
        row = {
            "pid": int(info.get("pid") or os.getpid()),
            "host": info.get("host") or socket.gethostname(),
            "source": str(info.get("source") or "KITE").upper(),
            "started_at": float(info.get("started_at") or now),
            "updated_at": now,
            "state": info.get("state") or "starting",
            "mode": info.get("mode"),
            "intervals": _json(info.get("intervals")),
            "symbols": _json(info.get("symbols")),
            "per_symbol": _json(info.get("per_symbol")),
            "status": _json({k: v for k, v in info.items() if k not in _SESSION_INFO_KEYS} or None),
        }
        cols = ", ".join(row)
        marks = ", ".join("?" * len(row))
        with self._db_lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    claim_source(conn, self.path, str(row["source"]))
                    cur = conn.execute(
                        f"INSERT INTO sessions ({cols}) VALUES ({marks})", tuple(row.values())
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except StoreError:
                self._refuse()
                raise
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the store {self.path}: {exc}") from None
            assert cur.lastrowid is not None  # an INSERT always has one
            self.session_id = int(cur.lastrowid)
        return self.session_id

    def _claim(self, source: str) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                claim_source(conn, self.path, source)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the store {self.path}: {exc}") from None

    def _refuse(self) -> None:
        with self._lock:
            self._refused = True
            self._candles, self._ticks, self._instruments = [], [], {}
            self._ticks_n = 0
            self._status = self._end = self._symbols_from = None

    def end_session(self, state: str = "stopped", clean: bool = True) -> None:
        """Mark the session ended; written with the next flush (stop() flushes at once)."""
        with self._lock:
            self._end = (state, clean)
        self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Write everything queued so far now and wait for it; True when it was written."""
        with self._lock:
            self._requested += 1
            target = self._requested
        self._wake.set()
        with self._done:
            served = self._done.wait_for(
                lambda: self._served >= target or not self._thread.is_alive(), timeout
            )
        return bool(served) and self._served >= target and self.error is None

    def stop(self, timeout: float = 10.0) -> bool:
        """Flush everything queued, end the session (clean stop unless said otherwise), close.

        Returns True when everything was written.
        """
        if self._closed:
            return self.error is None
        with self._lock:
            if self.session_id is not None and self._end is None:
                self._end = ("stopped", True)
            self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        ok = not self._thread.is_alive() and self.error is None
        if not self._thread.is_alive():
            with self._db_lock:
                self._conn.close()
            self._owner.release()  # only now: a thread still writing still owns the store
            self._closed = True
        return ok

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._candles) + self._ticks_n

    # --- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self.flush_interval_s)
                self._wake.clear()
                with self._lock:
                    stopping = self._stopping
                    requested = self._requested
                ok = self._flush_once()
                if stopping and ok and self.pending:
                    ok = self._flush_once()  # anything appended while the last flush ran
                if stopping and not ok:
                    self._last_resort()
                with self._done:
                    self._served = requested
                    self._done.notify_all()
                if stopping:
                    return
        finally:
            with self._done:
                self._done.notify_all()

    def _take(self) -> tuple[list, list, dict, dict | None, tuple[str, bool] | None]:
        with self._lock:
            queued, self._candles = self._candles, []
            ticks, self._ticks = self._ticks, []
            self._ticks_n = 0
            inst, self._instruments = self._instruments, {}
            status, self._status = self._status, None
            symbols_from, self._symbols_from = self._symbols_from, None
            end, self._end = self._end, None
        status = _status_dict(status, symbols_from)
        candles: list[tuple] = []
        for item in queued:  # rows, and batches from put_candle_batch, in arrival order
            if isinstance(item, tuple):
                candles.append(item)
            else:
                candles.extend(item.rows())
                for tok, name in item.names().items():
                    # Names are registered up front; a token the store has not seen needs one.
                    if tok not in self._known and tok not in inst:
                        inst[tok] = name
        return candles, ticks, inst, status, end

    def _give_back(self, candles: list, ticks: list, inst: dict, status: dict | None,
                   end: tuple[str, bool] | None) -> None:
        """Requeue a batch that failed to write, in front of what arrived meanwhile."""
        with self._lock:
            if len(candles) + len(self._candles) <= MAX_PENDING_CANDLES:
                self._candles = candles + self._candles
            else:
                self.dropped_candles += len(candles)
            n = sum(len(b) for b in ticks)
            if n + self._ticks_n <= MAX_PENDING_TICKS:
                self._ticks = ticks + self._ticks
                self._ticks_n += n
            else:
                self.dropped_ticks += n
            self._instruments = {**inst, **self._instruments}
            if self._status is None:
                self._status = status
            if self._symbols_from is None and status is not None and "per_symbol" in status:
                self._symbols_from = status  # its table is still the newest to be written
            if self._end is None:
                self._end = end

    def _flush_once(self) -> bool:
        """Write what is queued in one transaction; False when it failed (it stays queued)."""
        if self._refused:
            return True
        candles, ticks, inst, status, end = self._take()
        now = time.time()
        beat = self.session_id is not None and now - self._last_heartbeat >= HEARTBEAT_S
        if not (candles or ticks or inst or status or end or beat):
            return True
        for row in candles:
            tok = row[0]
            if tok not in self._known and tok not in inst:
                from livecli.core.sessions import exchange_of_token

                inst[tok] = (str(tok), exchange_of_token(tok))
        closed = sum(1 for r in candles if r[12])
        try:
            with self._db_lock:
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if inst:
                        conn.executemany(
                            UPSERT_INSTRUMENT, [(t, s, e) for t, (s, e) in inst.items()]
                        )
                    if candles:
                        conn.executemany(UPSERT_CANDLE, candles)
                    if ticks:
                        conn.executemany(INSERT_TICK, chain.from_iterable(
                            b.rows() if isinstance(b, TickBlock) else map(_tick_row, b)
                            for b in ticks))
                    if self.session_id is not None:
                        self._write_session(conn, now, closed, status, end)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:  # SQLite may already have rolled back (disk full)
                        conn.execute("ROLLBACK")
                    raise
        except Exception as exc:  # disk full, read-only, locked: keep the tick path alive
            self._failed(exc, now)
            self._give_back(candles, ticks, inst, status, end)
            return False
        self._known.update(inst)
        self.candles_stored += closed
        self.ticks_stored += sum(len(b) for b in ticks)
        self.flushes += 1
        self._last_heartbeat = now
        self.error = None
        self._failing_since = None
        return True

    def _failed(self, exc: Exception, now: float) -> None:
        """Count a failed flush; warn once per run of failures; give up after GIVE_UP_S."""
        self.failures += 1
        self.error = f"cannot write the store {self.path}: {exc}"
        self.error_at = now
        code = getattr(exc, "sqlite_errorcode", None)
        self._locked_out = code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY,
                                                                 sqlite3.SQLITE_LOCKED)
        mono = time.monotonic()
        if self._failing_since is None:
            self._failing_since = mono
            if self.failure is None:
                log.warning("%s (retrying for %g s)", self.error, GIVE_UP_S)
        elif self.failure is None and mono - self._failing_since >= GIVE_UP_S:
            self.failure = StoreError(
                f"{self.error}; gave up after {mono - self._failing_since:.1f} s of failed "
                "writes: free some space or fix the store, and stream again"
            )
            log.debug("store writer gave up: %s", self.failure)

    def _last_resort(self) -> None:
        """At stop, after the last flush failed: make room if SQLite can, else end the session.

        A checkpoint moves the log's pages into the database, so a log that could not grow
        may be written again from its start; failing that, the session row alone (a few bytes,
        often rewritten in place) still records that the session ended and how. Not when
        another program holds the database: each try would only wait out the busy timeout.
        """
        if self._locked_out:
            return
        try:
            with self._db_lock:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass
        if self._flush_once():
            return
        with self._lock:
            held, held_symbols, end = self._status, self._symbols_from, self._end
        status = _status_dict(held, held_symbols)
        if self.session_id is None or end is None:
            return
        try:
            with self._db_lock:
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._write_session(conn, time.time(), 0, status, end)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            log.debug("could not record the end of the session either: %s", exc)
            return
        with self._lock:
            self._end = None
            if self._status is held:
                self._status = None
            if self._symbols_from is held_symbols:
                self._symbols_from = None

    def _write_session(self, conn: sqlite3.Connection, now: float, closed: int,
                       status: dict | None, end: tuple[str, bool] | None) -> None:
        sets = ["updated_at = ?", "candles_stored = candles_stored + ?"]
        args: list[Any] = [now, closed]
        if status:
            for key, value in status.items():
                sets.append(f"{key} = ?")
                args.append(value)
        if end:
            state, clean = end
            sets += ["ended_at = ?", "state = ?", "clean_stop = ?"]
            args += [now, state, int(bool(clean))]
        args.append(self.session_id)
        conn.execute(f"UPDATE sessions SET {', '.join(sets)} WHERE id = ?", args)


def _prepare_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """Session-column values ready for SQL; unknown keys gathered into the `status` JSON."""
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in status.items():
        if key == "symbols" and isinstance(value, Mapping):
            key = "per_symbol"  # {symbol: {...}} is the per-symbol view, a list is the names
        if key in SESSION_STATUS_COLUMNS:
            out[key] = _json(value) if key in JSON_COLUMNS else value
        elif key not in _SESSION_INFO_KEYS and key != "candles_stored":
            extra[key] = value
    if extra:
        out["status"] = _json(extra)
    return out


_SESSION_INFO_KEYS = frozenset(
    {"pid", "host", "source", "started_at", "state", "mode", "intervals", "symbols", "per_symbol"}
)
