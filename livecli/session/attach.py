"""Attaching to a session another process runs: one place that maps a URL to its client.

`LiveSession.attach(url)`, `LiveSession(source=url)`, `livecli stream --attach URL` and
`livecli status --attach URL` all come here. The scheme picks the client: `http://` and
`https://` are a `livecli serve` (livecli.session.remote.RemoteSession). Another transport adds
one line to `CLIENTS` (module and class, imported only when used); anything else is refused
in one line naming the schemes there are.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from livecli.core.wire import PREFIX
from livecli.errors import UsageError

# scheme -> "module:Class"; the class takes (url, **options).
CLIENTS: dict[str, str] = {
    "http": "livecli.session.remote:RemoteSession",
    "https": "livecli.session.remote:RemoteSession",
}


def is_url(source: object) -> bool:
    """True when a `source` names another process's session (`scheme://...`), not a market."""
    return isinstance(source, str) and "://" in source


def scheme_of(url: str) -> str:
    return urlsplit(url.strip()).scheme.lower()


def attach(url: str, **options: Any) -> Any:
    """The client of the session served at `url` (not yet connected: `start()` or a read does).

    UsageError, one line, for a URL of no known scheme.
    """
    scheme = scheme_of(url)
    target = CLIENTS.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in sorted(CLIENTS))
        raise UsageError(f"cannot attach to {url[:80]!r}: unknown scheme "
                         f"{(scheme + '://') if scheme else '(none)'}; use one of {known}, "
                         "e.g. http://127.0.0.1:8000 (a `livecli serve`)")
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)(url.strip(), **options)


PROBE_TIMEOUT_S = 2.0


def served_url(db: Path | None, api_key: str | None = None) -> str | None:
    """The URL of a `livecli serve` serving the store at `db` now, or None.

    The store's record (livecli.store.served) is only a lead: the process it names must be
    alive on this host, and the URL must answer GET /status as a server of this same store
    (a server killed by SIGKILL leaves its record; its port may serve something else since).
    """
    if db is None:
        return None
    from livecli.store.served import served_record
    from livecli.store.status import pid_alive

    rec = served_record(db)
    if rec is None or (rec.here and not pid_alive(rec.pid)):
        return None
    try:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        r = httpx.get(rec.url.rstrip("/") + PREFIX + "/status", timeout=PROBE_TIMEOUT_S,
                      headers=headers)
        served = r.json().get("db") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    if not served or not _same_file(Path(served), Path(db)):
        return None
    return rec.url


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except OSError:
        return False
