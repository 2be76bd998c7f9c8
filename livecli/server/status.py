"""The one adapter between the session's status and the server: JSON, state, availability.

`status_json` is the only function that knows what `LiveSession.status()` (and the status
listener) hands over: today a dict, after the session redesign a typed status with
`to_json_dict()`; both are accepted. Everything else in the server reads the small typed
`StatusView` made from it, never the status by string keys.

`availability` is the policy behind the API's 409 and 503: live reads need a running session
whose feed is up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livecli.server.shapes import API_SCHEMA, PREFIX

# States of a running feed in which its data is not current (livecli.kite.connection).
DOWN_STATES = frozenset({"connecting", "stale", "reconnecting", "auth_failed", "failed"})


def status_json(raw: Any) -> dict[str, Any]:
    """The session's status as a JSON-ready dict, whichever form the session gave it in."""
    to_json = getattr(raw, "to_json_dict", None)
    out = dict(to_json()) if callable(to_json) else dict(raw)
    out.setdefault("schema", API_SCHEMA)
    return out


@dataclass(frozen=True, slots=True)
class StatusView:
    """What the server decides on: the feed's state, the last error, the retry delay."""

    state: str
    started: bool
    last_error: str | None
    retry_in_s: float | None
    feed_clock: str | None

    @classmethod
    def of(cls, status: dict[str, Any]) -> StatusView:
        return cls(
            state=str(status.get("state") or "idle"),
            started=status.get("started_at") is not None,
            last_error=status.get("last_error"),
            retry_in_s=status.get("retry_in_s"),
            feed_clock=status.get("feed_clock"),
        )


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Why a live read cannot be answered now: HTTP status, error code, message, retry hint."""

    status: int
    code: str
    message: str
    retry_after_s: float | None = None


def availability(running: bool, view: StatusView) -> Unavailable | None:
    """None when live data can be served; else the 409 (not streaming) or 503 (feed down)."""
    start = f"{PREFIX}/start"
    if not running:
        if not view.started or view.state == "idle":
            return Unavailable(409, "not_streaming",
                               f"streaming has not started: POST {start} with the symbols first")
        if view.state == "stopped":
            return Unavailable(409, "not_streaming",
                               f"streaming is stopped: POST {start} to stream again")
        return Unavailable(503, "feed_failed",
                           f"the feed failed: {view.last_error or view.state}; "
                           f"POST {start} to stream again")
    if view.state in DOWN_STATES:
        retry = view.retry_in_s
        return Unavailable(503, "feed_down",
                           f"the feed is {view.state}"
                           + (f" ({view.last_error})" if view.last_error else "")
                           + "; data is not current: retry shortly",
                           retry_after_s=max(1.0, retry) if retry is not None else 1.0)
    return None

