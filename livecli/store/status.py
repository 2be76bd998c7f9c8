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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from livecli.core.timeutil import iso, parse_instant
from livecli.errors import NoDataError

STALE_AFTER_S = 10.0
STOPPED_UNEXPECTEDLY = "stopped-unexpectedly"
LIVE_STATES = frozenset({"starting", "running", "connected", "connecting", "reconnecting", "stale"})


@dataclass(slots=True)
class SymbolStatus:
    symbol: str
    instrument_token: int | None
    last_price: float | None
    last_tick_at: float | None
    age_s: float | None


@dataclass(slots=True)
class SessionStatus:
    """One session as `livecli status` shows it; times are epoch seconds."""

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
    mode: str | None
    intervals: list[str]
    reconnects: int
    last_error: str | None
    ticks_per_s: float
    ticks: int
    candles_stored: int
    late_ticks: int
    bad_ticks: int
    symbols: list[SymbolStatus] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    now: float = 0.0

    @property
    def running(self) -> bool:
        return self.ended_at is None and self.state != STOPPED_UNEXPECTEDLY

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: instants as ISO 8601 (+05:30) and as epoch seconds."""
        d = asdict(self)
        for key in ("started_at", "updated_at", "ended_at", "now"):
            d[f"{key}_epoch"] = d[key]
            d[key] = None if d[key] is None else iso(round(d[key], 3))
        for s in d["symbols"]:
            s["last_tick_at_epoch"] = s["last_tick_at"]
            s["last_tick_at"] = None if s["last_tick_at"] is None else iso(round(s["last_tick_at"], 3))
        return d


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


def _instant(value: Any) -> float | None:
    """Epoch seconds from a number or ISO 8601 text (sessions write either)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return parse_instant(value)
        except ValueError:
            return None
    return None


def _symbols(per_symbol: Any, now: float) -> list[SymbolStatus]:
    out = []
    if not isinstance(per_symbol, dict):
        return out
    for sym, info in sorted(per_symbol.items()):
        info = info if isinstance(info, dict) else {}
        last_f = _instant(info.get("last_tick_at"))
        price = info.get("last_price")
        tok = info.get("instrument_token")
        out.append(SymbolStatus(
            str(sym), int(tok) if isinstance(tok, (int, float)) else None,
            float(price) if isinstance(price, (int, float)) else None,
            last_f, None if last_f is None else max(0.0, now - last_f),
        ))
    return out


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
    intervals = row.get("intervals")
    extra = row.get("status")
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
        mode=row.get("mode"),
        intervals=[str(i) for i in intervals] if isinstance(intervals, list) else [],
        reconnects=int(row.get("reconnects") or 0),
        last_error=row.get("last_error"),
        ticks_per_s=float(row.get("ticks_per_s") or 0.0),
        ticks=int(row.get("ticks") or 0),
        candles_stored=int(row.get("candles_stored") or 0),
        late_ticks=int(row.get("late_ticks") or 0),
        bad_ticks=int(row.get("bad_ticks") or 0),
        symbols=_symbols(row.get("per_symbol"), now),
        extra=extra if isinstance(extra, dict) else {},
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
