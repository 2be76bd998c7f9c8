"""`livecli status` of a served session: read over the Live Data API instead of the store.

Used with `--attach URL` (or `--url`), or by itself when the store's record names a live
server (livecli.session.attach.served_url). The server's status is the session's own, current
to the second, with the server's counters beside it; it is shown through the same
`SessionStatus` as a store's record, so the view, the lines and the JSON keep their shape (plus
a `served` part: the URL and the clients). `--follow` takes the status the server pushes over
its WebSocket once a second instead of polling; it rides out a server restart (the client
reconnects by itself).
"""

from __future__ import annotations

import queue
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from livecli.core.status import LiveStatus
from livecli.store.status import SessionStatus

ENDED = frozenset({"stopped", "failed", "auth_failed"})


@dataclass(frozen=True, slots=True)
class Served:
    """The server part of a served status."""

    url: str
    clients: int
    clients_dropped: int
    auth: bool

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "clients": self.clients, "clients_dropped": self.clients_dropped,
                "auth": self.auth}

    def describe(self) -> str:
        return (f"{self.url} ({self.clients} client{'s' if self.clients != 1 else ''}"
                + (f", {self.clients_dropped} dropped as too slow" if self.clients_dropped else "")
                + ")")


def from_api(body: Mapping[str, Any], url: str, now: float | None = None
             ) -> tuple[SessionStatus, Served]:
    """A served status (GET /status or a pushed one) as `status` shows a session."""
    now = time.time() if now is None else now
    live = LiveStatus.from_json_dict(dict(body))
    started = live.started_at if live.started_at is not None else now
    ended = live.state in ENDED
    server = body.get("server") if isinstance(body.get("server"), dict) else {}
    assert isinstance(server, dict)
    st = SessionStatus(
        store=live.db or "-", session_id=0, pid=live.pid, host=None,
        source=live.source or "-", state=live.state, reported_state=live.state, reason=None,
        started_at=started, updated_at=now, ended_at=now if ended else None,
        clean_stop=live.state == "stopped", uptime_s=live.uptime_s, live=live, now=now,
    )
    served = Served(url, int(server.get("clients") or 0), int(server.get("clients_dropped") or 0),
                    bool(server.get("auth")))
    return st, served


def to_json(st: SessionStatus, served: Served) -> dict[str, Any]:
    return {**st.to_json(), "served": served.to_json()}


def read_once(remote: Any) -> tuple[SessionStatus, Served]:
    return from_api(remote.status(), remote.url)


def pushed(remote: Any, count: int | None) -> Iterator[tuple[SessionStatus, Served]]:
    """The current status, then each one the server pushes (at most `count` in all)."""
    got: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def on_status(_st: LiveStatus) -> None:
        raw = remote.last_status
        if raw is not None:
            got.put(raw)

    remote.add_status_listener(on_status)
    yield read_once(remote)
    remote.attach()
    shown = 1
    while count is None or shown < count:
        raw = got.get()
        yield from_api(raw, remote.url)
        shown += 1


def follow(remote: Any, as_json: bool, count: int | None,
           render: Callable[[SessionStatus, Served], Any], line: Callable[[SessionStatus], str]
           ) -> None:
    import json

    updates = pushed(remote, count)
    if not as_json and sys.stdout.isatty():
        from rich.live import Live

        from livecli.cli.render import stdout_console

        first = next(updates)
        with Live(render(*first), console=stdout_console(), auto_refresh=False) as live:
            for st, served in updates:
                live.update(render(st, served), refresh=True)
        return
    for st, served in updates:
        text = json.dumps(to_json(st, served)) if as_json else f"{line(st)} served={served.url}"
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
