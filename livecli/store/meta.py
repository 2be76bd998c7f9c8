"""Which market a store's candles come from: Kite's or the simulated one, never both.

Simulated candles carry Kite's real instrument tokens and (by default) today's date, so once
mixed into a store of real candles nothing can tell them apart. The first session that writes a
store records its source in the `meta` table (key `source`); a session of the other source is
refused with one line, before it writes anything. Stores written by a livecli older than this
rule have no such key: their source is what their sessions recorded, MIXED when those disagree
(such a store is refused to both sources, since nobody can untangle it any more).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from livecli.errors import StoreError

SOURCE_KEY = "source"
MIXED = "MIXED"


def read_source(conn: sqlite3.Connection) -> str | None:
    """KITE, SIMULATED, MIXED (an old store that holds both), or None (nothing recorded yet)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (SOURCE_KEY,)).fetchone()
    if row is not None:
        return str(row[0])
    try:
        found = sorted({str(r[0]).upper() for r in conn.execute("SELECT DISTINCT source FROM sessions")})
    except sqlite3.OperationalError:  # no sessions table yet
        return None
    if not found:
        return None
    return found[0] if len(found) == 1 else MIXED


def _describe(source: str) -> str:
    return "both Kite and simulated candles" if source == MIXED else f"{source} candles"


def claim_source(conn: sqlite3.Connection, path: Path, source: str) -> None:
    """Record `source` as the store's, or raise StoreError when it holds another's.

    Runs inside the caller's write transaction, so the claim and the first session row land
    together or not at all.
    """
    source = source.upper()
    held = read_source(conn)
    if held is not None and held != source:
        raise StoreError(
            f"the store {path} holds {_describe(held)}; a {source} session must not write "
            "into it: pass another --db"
        )
    if conn.execute("SELECT 1 FROM meta WHERE key = ?", (SOURCE_KEY,)).fetchone() is None:
        # A new store, or an older one whose sessions agree: from now on it says so itself.
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (SOURCE_KEY, source))


def store_source(path: str | Path) -> str | None:
    """The source of the candles in the store at `path` (see `read_source`); read-only.

    NoDataError when there is no store there, StoreError when it is not a livecli store.
    """
    from livecli.store.schema import open_for_read

    p = Path(path).expanduser()
    conn = open_for_read(p)
    try:
        return read_source(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {p}: {exc}") from None
    finally:
        conn.close()
