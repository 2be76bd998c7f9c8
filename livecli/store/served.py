"""Where a store's session is served: the record `livecli serve` leaves for others to attach.

While `livecli serve` runs, the store's `meta` table holds key `served`: the server's URL, pid,
host and start time (JSON). `livecli stream` and `livecli status` on the same store read it and
attach to that server instead of refusing (a second writer) or reading the store (status). The
record is removed when the server stops cleanly; one left behind by a killed server is stale,
and a record alone never causes an attach: the process must be alive on this host and the URL
must answer as a server of this very store (livecli.session.attach.served_url checks).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from livecli.errors import LivecliError

SERVED_KEY = "served"


@dataclass(frozen=True, slots=True)
class ServedRecord:
    """A `livecli serve` of a store, as it recorded itself."""

    url: str
    pid: int
    host: str | None
    since: float | None

    @property
    def here(self) -> bool:
        """Recorded by a process of this machine (its pid can be checked)."""
        return not self.host or self.host == socket.gethostname()


def record_served(db: Path, url: str, *, create_folder: bool = False) -> None:
    """Record that this process serves the store at `db` at `url` (creating the store if new)."""
    from livecli.store.schema import open_for_write

    value = json.dumps({"url": url, "pid": os.getpid(), "host": socket.gethostname(),
                        "since": time.time()})
    conn = open_for_write(Path(db), create_folder=create_folder)
    try:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (SERVED_KEY, value))
    finally:
        conn.close()


def clear_served(db: Path) -> None:
    """Remove this process's record (another server's, recorded since, stays)."""
    from livecli.store.schema import open_for_write

    try:
        conn = open_for_write(Path(db))
    except LivecliError:
        return
    try:
        rec = _read(conn)
        if rec is not None and rec.pid == os.getpid() and rec.here:
            conn.execute("DELETE FROM meta WHERE key = ?", (SERVED_KEY,))
    except sqlite3.Error:
        pass  # the record goes stale with this process: harmless
    finally:
        conn.close()


def served_record(db: Path) -> ServedRecord | None:
    """The record in the store at `db`, or None (no store, not a livecli store, no record)."""
    from livecli.store.schema import open_for_read

    try:
        conn = open_for_read(Path(db))
    except LivecliError:
        return None
    try:
        return _read(conn)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _read(conn: sqlite3.Connection) -> ServedRecord | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (SERVED_KEY,)).fetchone()
    if row is None:
        return None
    try:
        data = json.loads(row[0])
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        return None
    pid, host, since = data.get("pid"), data.get("host"), data.get("since")
    return ServedRecord(data["url"], pid if isinstance(pid, int) else 0,
                        host if isinstance(host, str) else None,
                        float(since) if isinstance(since, int | float) else None)
