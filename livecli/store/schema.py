"""The candle store's SQLite schema, and opening a store safely for reading or writing.

A store is an ordinary SQLite file so users can query it with any tool; the `meta` table marks it
as livecli's, which lets us refuse (in one line) a database of another program or a garbage file
instead of failing later with an SQL error. WAL mode lets `livecli candles`/`status` read while a
stream writes; synchronous=NORMAL keeps every committed flush across a killed process (only a
power cut can lose the last commits) at a fraction of FULL's cost.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from livecli.errors import NoDataError, StoreError

APP = "livecli"
# 2: candles.origin (live, history, repaired). A version-1 store gains the column (default live,
# which is what every candle of that version was) when it is next opened for writing; read-only
# opens of a version-1 store read every candle as live.
SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 5_000

# The ticks table holds the tick-file columns (store.tickfile.TICK_COLUMNS) minus the names,
# which live in `instruments`, plus the time the tick was received.
TICK_ROW_COLUMNS = (
    "instrument_token", "exchange_timestamp", "last_price", "volume_traded",
    "oi", "high", "low", "received_at",
)

# Session columns a status update may set; anything else goes into the `status` JSON.
SESSION_STATUS_COLUMNS = (
    "state", "mode", "intervals", "reconnects", "last_error", "ticks_per_s", "ticks",
    "late_ticks", "bad_ticks", "symbols", "per_symbol",
)
JSON_COLUMNS = frozenset({"intervals", "symbols", "per_symbol", "status"})

DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS instruments (
        instrument_token INTEGER PRIMARY KEY,
        symbol TEXT NOT NULL,
        exchange TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS candles (
        instrument_token INTEGER NOT NULL,
        interval_min INTEGER NOT NULL,
        start INTEGER NOT NULL,
        open REAL NOT NULL,
        high REAL NOT NULL,
        low REAL NOT NULL,
        close REAL NOT NULL,
        volume INTEGER NOT NULL,
        oi INTEGER,
        ticks INTEGER NOT NULL,
        partial INTEGER NOT NULL DEFAULT 0,
        synthetic INTEGER NOT NULL DEFAULT 0,
        closed INTEGER NOT NULL DEFAULT 1,
        origin TEXT NOT NULL DEFAULT 'live',
        PRIMARY KEY (instrument_token, interval_min, start)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS ticks (
        instrument_token INTEGER NOT NULL,
        exchange_timestamp REAL NOT NULL,
        last_price REAL NOT NULL,
        volume_traded INTEGER,
        oi INTEGER,
        high REAL,
        low REAL,
        received_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        pid INTEGER NOT NULL,
        host TEXT,
        source TEXT NOT NULL,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        ended_at REAL,
        clean_stop INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'starting',
        mode TEXT,
        intervals TEXT,
        reconnects INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        ticks_per_s REAL NOT NULL DEFAULT 0,
        ticks INTEGER NOT NULL DEFAULT 0,
        candles_stored INTEGER NOT NULL DEFAULT 0,
        late_ticks INTEGER NOT NULL DEFAULT 0,
        bad_ticks INTEGER NOT NULL DEFAULT 0,
        symbols TEXT,
        per_symbol TEXT,
        status TEXT
    )""",
)


def _not_livecli(path: Path, why: str = "") -> StoreError:
    extra = f" ({why})" if why else ""
    return StoreError(
        f"{path} is not a livecli store{extra}: pass --db with a store written by `livecli stream`"
    )


def _check_identity(conn: sqlite3.Connection, path: Path, *, allow_new: bool) -> bool:
    """Raise StoreError unless `conn` is a livecli store; True when it is a brand-new database."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise _not_livecli(path, f"not an SQLite database: {exc}") from None
    if "meta" not in tables:
        if allow_new and not tables:
            return True
        raise _not_livecli(path, "no livecli meta table")
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise _not_livecli(path, str(exc)) from None
    if meta.get("app") != APP:
        raise _not_livecli(path, "its meta table belongs to another application")
    try:
        version = int(meta.get("schema_version", "0"))
    except ValueError:
        raise _not_livecli(path, "unreadable schema_version") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer livecli (store schema {version}, this one reads "
            f"{SCHEMA_VERSION}): upgrade livecli"
        )
    return False


def check_writable(path: Path, *, create_folder: bool = False) -> Path:
    """Fail early, before anything connects, when the store at `path` cannot be written.

    `create_folder` is for the default store in the user data folder; an explicit path whose
    folder is missing is a mistake worth reporting rather than papering over. A store another
    process is writing is refused too (the `StoreWriter` takes the lock itself later).
    """
    from livecli.store.owner import check_not_in_use

    path = _check_files(path, create_folder)
    check_not_in_use(path)
    return path


def _check_files(path: Path, create_folder: bool) -> Path:
    path = Path(path).expanduser()
    folder = path.parent
    if path.is_dir():
        raise StoreError(f"cannot use {path} as the store: it is a folder: give a file name")
    if not folder.exists():
        if not create_folder:
            raise StoreError(
                f"cannot create the store {path}: folder {folder} does not exist: create it first"
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store folder {folder}: {exc.strerror or exc}") from None
    if not folder.is_dir():
        raise StoreError(f"cannot create the store {path}: {folder} is not a folder")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(f"cannot write the store {path}: check its permissions")
    # WAL needs to create the -wal and -shm files next to the database.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write the store {path}: folder {folder} is not writable")
    return path


def open_for_write(path: Path, *, create_folder: bool = False) -> sqlite3.Connection:
    """A read-write connection to a livecli store, creating and initialising it when new.

    It does not lock the store: `StoreWriter` does, before it calls this.
    """
    path = _check_files(path, create_folder)
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from None
    try:
        new = _check_identity(conn, path, allow_new=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if new:
            conn.execute("BEGIN IMMEDIATE")
            for stmt in DDL:
                conn.execute(stmt)
            conn.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                [("app", APP), ("schema_version", str(SCHEMA_VERSION))],
            )
            conn.execute("COMMIT")
        else:
            _migrate(conn)
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open {path}: {exc}") from None
    return conn


def has_origin(conn: sqlite3.Connection) -> bool:
    """Whether the store's candles table has the origin column (schema 2 and later)."""
    return any(r[1] == "origin" for r in conn.execute("PRAGMA table_info(candles)"))


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store of an older schema up to SCHEMA_VERSION (additive columns only)."""
    if has_origin(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not has_origin(conn):  # another writer may have migrated it meanwhile
            conn.execute("ALTER TABLE candles ADD COLUMN origin TEXT NOT NULL DEFAULT 'live'")
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def open_for_read(path: Path) -> sqlite3.Connection:
    """A read-only connection that never creates a file; NoDataError when there is none."""
    path = Path(path).expanduser()
    if not path.exists():
        raise NoDataError(
            f"no candle store at {path}: run `livecli stream` to record one, or pass --db PATH"
        )
    if path.is_dir():
        raise StoreError(f"cannot open {path}: it is a folder, not a candle store")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from None
    try:
        _check_identity(conn, path, allow_new=False)
    except BaseException:
        conn.close()
        raise
    return conn
