"""The asyncio loops of the bus's threads: ending them cleanly."""

from __future__ import annotations

import asyncio
import os


def cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """End the tasks the NATS client leaves behind (a JetStream consumer's heartbeat checks),
    so the loop closes without "Task was destroyed but it is pending"."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


async def reachable(url: str, timeout: float) -> None:
    """Raise ConnectionError naming why, unless something listens at `url`'s host and port.

    nats-py, told to reconnect forever, also retries its first connection forever; a server
    that is not there must be a quick, clear error instead.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, TimeoutError):
            why = "timed out"
        else:
            why = (exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))).lower()
        raise ConnectionError(f"{host}:{port}: {why}") from None
    writer.close()
