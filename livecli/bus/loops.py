"""The asyncio loops of the bus's threads: ending them cleanly."""

from __future__ import annotations

import asyncio


def cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """End the tasks the NATS client leaves behind (a JetStream consumer's heartbeat checks),
    so the loop closes without "Task was destroyed but it is pending"."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
