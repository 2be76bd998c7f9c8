"""One writer per store: an exclusive lock that dies with the process holding it.

Two streams writing one store overwrite each other's candles, so a `StoreWriter` owns its store
for as long as it runs. The lock is `flock` on a side file `<db>.lock`: the kernel drops it when
the holder exits however it exits (SIGKILL, power-off of a container), so a crashed stream never
leaves a store locked. The side file (never the database: SQLite's own POSIX locks are
independent of flock, but a side file can carry the holder's pid, host and start time for the
refusal message) is removed on a clean release; after a crash it stays, unlocked and harmless.

Removing a lock file while others may open it is only safe with the inode check in `acquire`:
a process that locked a file which was unlinked in the meantime tries again with the new one.
Readers (`livecli candles`, `status`) never take the lock: WAL lets them read while a stream
writes.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from livecli.errors import StoreError

# What a user refused by a busy store can do instead. A store that `livecli serve` writes is
# attached to, not refused (livecli.store.served); sharing one stream is done that way.
IN_USE_ADVICE = ("stop that stream first, or pass another --db; to share one stream, run it "
                 "as `livecli serve` and attach with `livecli stream --attach URL`")


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a store, as its lock file says (fields may be missing while it is written)."""

    pid: int | None
    host: str | None
    since: float | None

    def describe(self) -> str:
        from livecli.core.timeutil import iso

        parts = [f"pid {self.pid}" if self.pid else "another process"]
        if self.host and self.host != socket.gethostname():
            parts.append(f"on {self.host}")
        if self.since:
            parts.append(f"since {iso(self.since)[:19].replace('T', ' ')} IST")
        return " ".join(parts)


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def _read_holder(fd: int) -> Holder:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    pid, host, since = data.get("pid"), data.get("host"), data.get("since")
    return Holder(
        pid if isinstance(pid, int) else None,
        host if isinstance(host, str) else None,
        float(since) if isinstance(since, (int, float)) else None,
    )


def in_use_error(db: Path, holder: Holder) -> StoreError:
    return StoreError(
        f"the store {db} is being written by another livecli ({holder.describe()}); "
        f"two writers would overwrite each other's candles: {IN_USE_ADVICE}"
    )


class StoreLock:
    """The exclusive right to write the store at `db`, held from `acquire()` to `release()`."""

    def __init__(self, db: Path) -> None:
        self.db = Path(db)
        self.path = lock_path(self.db)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> StoreLock:
        """Take the lock or raise StoreError at once, naming who holds it."""
        if self._fd is not None:
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise StoreError(
                    f"cannot lock the store {self.db} ({self.path}: {exc.strerror or exc}): "
                    "check the folder's permissions"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise in_use_error(self.db, holder) from None
            except OSError as exc:  # a file system without flock
                os.close(fd)
                raise StoreError(f"cannot lock the store {self.db}: {exc.strerror or exc}") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # its holder removed that file as we opened it: take the new one
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode("utf-8"), 0)
        except OSError:
            pass  # the lock is what counts; the record only makes the refusal friendlier
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.unlink(self.path)  # while still locked: see the module docstring
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_of(db: Path) -> Holder | None:
    """Who writes the store at `db` now, or None when nobody does.

    A probe for a process about to write: it takes a shared lock for an instant, which could
    make a writer starting in that same instant refuse, so readers must not poll it.
    """
    try:
        fd = os.open(lock_path(Path(db)), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        except OSError:
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def check_not_in_use(db: Path) -> None:
    """StoreError when another process writes `db` now: the early check before connecting."""
    holder = holder_of(db)
    if holder is not None:
        raise in_use_error(Path(db), holder)
