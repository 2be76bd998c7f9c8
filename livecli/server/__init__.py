"""The Live Data API: one `LiveSession` served over REST and WebSocket push (`livecli serve`).

Kite allows three WebSocket connections per api_key, and a trader runs several programs at once;
this package lets them all share one feed, one store and one candle engine. It sits beside the
dashboard, above the session, and uses only the session's public methods and listeners.

Modules, one job each: `shapes` (the JSON objects and their schema version), `status` (the one
adapter over the session's status), `auth` (the API key and who must send it), `tap` (the
listeners on the receiving path: O(1) per frame, never waiting), `hub` (the WebSocket fan-out
with a bounded queue per client), `history` (candles of any interval), `control` (start, stop,
subscribe with their errors), `app` (the FastAPI routes), `runner` (uvicorn and the session's
lifecycle). The client side (`RemoteSession`, the same surface as `LiveSession` from another
process) is `livecli.session.remote`, over the shapes both share (`livecli.core.wire`); it is
re-exported here for older code: `LiveSession.attach(url)` is the way to get one.

FastAPI, uvicorn and httpx are imported only by the modules that need them, so `livecli --help`
stays fast; `from livecli.server import RemoteSession` loads the client alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livecli.session.remote import RemoteSession

__all__ = ["RemoteSession"]


def __getattr__(name: str) -> Any:
    if name == "RemoteSession":
        from livecli.session.remote import RemoteSession

        return RemoteSession
    raise AttributeError(name)
