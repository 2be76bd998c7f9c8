"""State the stand-in's servers share with the test thread: credentials, connections, faults.

The servers run on their own event loop thread while tests call fault methods and wait for
subscriptions from theirs. Everything here is guarded by one condition variable, which is also
what waiters block on: every change to a connection or its subscriptions notifies it.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ConnInfo:
    """One ticker connection, as tests see it (mutated on the loop thread under the lock)."""

    id: int
    remote: str
    api_key: str
    connected_at: float
    tokens: dict[int, str] = field(default_factory=dict)
    frames: int = 0
    packets: int = 0
    heartbeats: int = 0
    bytes_sent: int = 0
    malformed_pending: bool = False
    malformed_sent: int = 0
    closed: bool = False
    # Bumped whenever `tokens` changes (subscribe, unsubscribe, mode): packets encoded ahead for
    # an older version are thrown away, never sent.
    version: int = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "remote": self.remote,
            "api_key": self.api_key,
            "connected_at": self.connected_at,
            "tokens": dict(self.tokens),
            "frames": self.frames,
            "packets": self.packets,
            "heartbeats": self.heartbeats,
            "bytes_sent": self.bytes_sent,
            "malformed_sent": self.malformed_sent,
        }


class SimState:
    def __init__(self, api_key: str, access_token: str, api_secret: str) -> None:
        self.api_key = api_key
        self.access_token = access_token
        self.api_secret = api_secret
        self.cond = threading.Condition()
        self.reject_auth = False
        self.silent_until = 0.0  # time.monotonic() until which nothing is sent
        self.drop_until = 0.0  # time.monotonic() until which every new connection is cut at once
        self.malformed_until = 0.0  # time.monotonic() until which every frame is malformed
        self.conns: dict[int, ConnInfo] = {}
        self.total_connections = 0
        self.rejected_upgrades = 0
        self._next_id = 1

    def credentials_ok(self, api_key: str | None, access_token: str | None) -> bool:
        if self.reject_auth or api_key is None or access_token is None:
            return False
        return hmac.compare_digest(api_key, self.api_key) and hmac.compare_digest(
            access_token, self.access_token)

    def is_silent(self) -> bool:
        return time.monotonic() < self.silent_until

    def is_dropping(self) -> bool:
        return time.monotonic() < self.drop_until

    def is_malforming(self) -> bool:
        return time.monotonic() < self.malformed_until

    def add_conn(self, remote: str, api_key: str) -> ConnInfo:
        with self.cond:
            c = ConnInfo(self._next_id, remote, api_key, time.time())
            self._next_id += 1
            self.conns[c.id] = c
            self.total_connections += 1
            self.cond.notify_all()
            return c

    def remove_conn(self, c: ConnInfo) -> None:
        with self.cond:
            c.closed = True
            self.conns.pop(c.id, None)
            self.cond.notify_all()

    def changed(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def clients(self) -> list[dict[str, Any]]:
        with self.cond:
            return [c.snapshot() for c in self.conns.values()]

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout=timeout)
