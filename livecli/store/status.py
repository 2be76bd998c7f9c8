"""What `livecli status` reports: the running or last stream session recorded in a store.

A session writes its own state ("running", "reconnecting", "stale", ...), but a process that
was killed cannot write "I died". So the state shown is judged here: a session that never
recorded a clean stop is `stopped-unexpectedly` once its process is gone or its status has not
been refreshed for STALE_AFTER_S (the writer refreshes it every second while the process lives).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from livecli.core.status import LiveStatus, SymbolStatus
from livecli.core.timeutil import iso
from livecli.errors import NoDataError
from livecli.store.schema import SESSION_STATUS_COLUMNS

STALE_AFTER_S = 10.0
STOPPED_UNEXPECTEDLY = "stopped-unexpectedly"
LIVE_STATES = frozenset({"starting", "running", "connected", "connecting", "reconnecting", "stale"})


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """One session as `livecli status` shows it: judged from its row, with the last `LiveStatus`
    it reported (`live`). Times are epoch seconds; `now` is when it was read."""

    store: str
    session_id: int
    pid: int
    host: str | None
    source: str
    state: str
    reported_state: str
    reason: str | None
    started_at: float
    updated_at: float
    ended_at: float | None
    clean_stop: bool
    uptime_s: float
    live: LiveStatus
    now: float = 0.0

    @property
    def running(self) -> bool:
        return self.ended_at is None and self.state != STOPPED_UNEXPECTEDLY

    def age_of(self, sym: SymbolStatus) -> float | None:
        """Seconds since `sym`'s last tick, as of `now`."""
        return None if sym.last_tick_at is None else max(0.0, self.now - sym.last_tick_at)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: what the session reported, overlaid with the judged state;
        instants as ISO 8601 (+05:30) and as epoch seconds; symbols as a list."""
        d: dict[str, Any] = {
            k: v for k, v in self.live.to_json_dict().items() if k not in _JUDGED
        }
        for f in fields(self):
            if f.name != "live":
                d[f.name] = getattr(self, f.name)
        for key in ("started_at", "updated_at", "ended_at", "now"):
            d[f"{key}_epoch"] = d[key]
            d[key] = None if d[key] is None else iso(round(d[key], 3))
        d["symbols"] = [
            {"symbol": s.symbol, "instrument_token": s.instrument_token, "exchange": s.exchange,
             "last_price": s.last_price,
             "last_tick_at": None if s.last_tick_at is None else iso(round(s.last_tick_at, 3)),
             "last_tick_at_epoch": s.last_tick_at, "age_s": self.age_of(s), "ticks": s.ticks}
            for s in self.live.symbols
        ]
        return d


# Fields the judgement decides (or the row holds), not the session's own last word.
_JUDGED = frozenset({"state", "pid", "source", "started_at", "uptime_s", "symbols"})


def pid_alive(pid: int) -> bool:
    """True when a process `pid` exists on this machine (signal 0 checks without signalling)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def judge_state(row: dict[str, Any], now: float) -> tuple[str, str | None]:
    """The state to show and, when it differs from the recorded one, why."""
    recorded = row.get("state") or "unknown"
    if row.get("ended_at") is not None:
        if row.get("clean_stop"):
            return "stopped", None
        if recorded in LIVE_STATES:
            return STOPPED_UNEXPECTEDLY, "the session ended without a clean stop"
        return recorded, None
    pid = int(row.get("pid") or 0)
    same_host = not row.get("host") or row.get("host") == socket.gethostname()
    if same_host and not pid_alive(pid):
        return STOPPED_UNEXPECTEDLY, f"process {pid} is gone without a clean stop"
    quiet = now - float(row.get("updated_at") or 0)
    if quiet > STALE_AFTER_S:
        return STOPPED_UNEXPECTEDLY, f"no status update for {quiet:.0f} s"
    return recorded, None


def live_status_of(row: dict[str, Any]) -> LiveStatus:
    """The last status a session wrote, from its row: the `status` JSON (every field the
    columns do not hold) with the columns laid over it. Rows of older livecli read too."""
    data: dict[str, Any] = {}
    extra = row.get("status")
    if isinstance(extra, dict):
        data.update(extra)
    for key in SESSION_STATUS_COLUMNS:
        if row.get(key) is not None:
            data[key] = row[key]
    data["symbols"] = row.get("per_symbol")
    for key in ("pid", "source", "started_at", "candles_stored"):
        if row.get(key) is not None:
            data[key] = row[key]
    return LiveStatus.from_json_dict(data)


def status_from_row(store: str, row: dict[str, Any], now: float) -> SessionStatus:
    state, reason = judge_state(row, now)
    started = float(row["started_at"])
    updated = float(row.get("updated_at") or started)
    ended = row.get("ended_at")
    if ended is not None:
        end = float(ended)
    elif state == STOPPED_UNEXPECTEDLY:
        end = updated
    else:
        end = now
    return SessionStatus(
        store=store,
        session_id=int(row["id"]),
        pid=int(row["pid"]),
        host=row.get("host"),
        source=str(row.get("source") or "KITE"),
        state=state,
        reported_state=str(row.get("state") or "unknown"),
        reason=reason,
        started_at=started,
        updated_at=updated,
        ended_at=None if ended is None else float(ended),
        clean_stop=bool(row.get("clean_stop")),
        uptime_s=max(0.0, end - started),
        live=live_status_of(row),
        now=now,
    )


def read_status(reader: Any, now: float | None = None) -> SessionStatus:
    """The latest session in an open CandleStoreReader; NoDataError when there is none."""
    row = reader.latest_session()
    if row is None:
        raise NoDataError(
            f"no stream session recorded in {reader.path}: start one with `livecli stream`"
        )
    return status_from_row(str(reader.path), row, time.time() if now is None else now)


def session_status(path: str | Path, now: float | None = None) -> SessionStatus:
    """The running or last stream session in the store at `path`."""
    from livecli.store.reader import CandleStoreReader

    with CandleStoreReader(path) as reader:
        return read_status(reader, now)
