"""`LiveSession.attach(url)`: a session running elsewhere, chosen by the URL's scheme.

`nats://` / `tls://`: a feed published with `--publish` (livecli/session/attach_nats.py).
Other schemes get their branch here (kept a small dispatch so each kind stays in its module).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from livecli.errors import UsageError

NATS_SCHEMES = ("nats", "tls")


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def attach(url: str, symbols: Iterable[str] = (), *, start: bool = True, **options: Any) -> Any:
    """The attached session, started unless `start=False` (add listeners first, then
    `start()`). Options by kind: NATS takes `stream`, `durable`, `credentials`, `history`,
    `db`."""
    scheme = scheme_of(url)
    if scheme in NATS_SCHEMES:
        from livecli.session.attach_nats import NatsSession

        session = NatsSession(url, symbols, **options)
        return session.start() if start else session
    raise UsageError(f"cannot attach to {url!r}: use nats://HOST:4222 (a feed published with "
                     "--publish)")
