"""A small WebSocket server of the tests' own, on loopback, that misbehaves on request.

The stand-in speaks Kite's protocol correctly; this server sends what a test scripts instead:
frames cut short, a count larger than the packets that follow, megabytes of error text, a frame
header claiming more than any Kite message, ticks of tokens nobody subscribed, upgrade headers
of its choosing, or nothing at all. It runs on its own asyncio thread (the `websockets`
library), records what the client sent, and lets the test thread wait on that with deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Script = Callable[["Conn"], Awaitable[None]]


class Conn:
    """One accepted client connection, as a script sees it (runs on the server's loop)."""

    def __init__(self, server: BadServer, ws: Any, index: int) -> None:
        self.server = server
        self.ws = ws
        self.index = index  # 0 for the first connection the server accepted, 1 for the next...
        self.tokens: dict[int, str] = {}  # what the client asked for on this connection

    async def send(self, message: bytes | str) -> None:
        await self.ws.send(message)

    def write_raw(self, data: bytes) -> None:
        """Bytes straight onto the TCP stream, below the WebSocket framing."""
        self.ws.transport.write(data)

    async def subscribed(self, tokens: list[int], timeout: float = 5.0) -> None:
        """Wait until the client subscribed to every one of `tokens` on this connection."""
        async with asyncio.timeout(timeout):
            while not all(t in self.tokens for t in tokens):
                await self.server._changed_async()

    async def unsubscribed(self, tokens: list[int], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while any(t in self.tokens for t in tokens):
                await self.server._changed_async()

    async def gate(self, name: str, timeout: float = 10.0) -> None:
        """Wait until the test thread calls `server.open_gate(name)`."""
        event = self.server._gate(name)
        await asyncio.wait_for(event.wait(), timeout)

    async def heartbeats(self, every_s: float = 0.2) -> None:
        """Send Kite's 1-byte heartbeat forever (until the connection ends)."""
        while True:
            await self.ws.send(b"\x00")
            await asyncio.sleep(every_s)


class BadServer:
    """`with BadServer(script, headers=...) as srv:` then point a KiteFeed at `srv.url`.

    `script(conn)` runs for every accepted connection; when it returns the connection stays
    open (reading the client's messages) unless the script closed it. `headers` are added to
    every upgrade response.
    """

    def __init__(self, script: Script, headers: Mapping[str, str] | None = None) -> None:
        self.script = script
        self.headers = dict(headers or {})
        self.cond = threading.Condition()
        self.accepted = 0  # upgrades completed
        self.closed = 0  # connections that ended, for any reason
        self.errors: list[BaseException] = []  # what scripts raised (a test should see none)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._async_cond: asyncio.Condition | None = None
        self._gates: dict[str, asyncio.Event] = {}
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # -- lifecycle (test thread) ----------------------------------------------------------
    def __enter__(self) -> BadServer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name="bad-server")
        self._thread.start()
        if not ready.wait(5) or not self.port:
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout=timeout)

    def open_gate(self, name: str) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(lambda: self._gate(name).set())

    # -- the server's own thread ----------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start())
        finally:
            ready.set()
        try:
            loop.run_forever()
        finally:
            # Handlers still running (a script waiting on a gate) end here, not at exit.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _start(self) -> None:
        from websockets.asyncio.server import serve

        self._async_cond = asyncio.Condition()

        def add_headers(connection: Any, request: Any, response: Any) -> Any:
            for name, value in self.headers.items():
                response.headers[name] = value
            return response

        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None,
                                   ping_interval=None, process_response=add_headers)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            for ws in list(self._server.connections):
                with contextlib.suppress(Exception):
                    ws.transport.abort()
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def _gate(self, name: str) -> asyncio.Event:
        return self._gates.setdefault(name, asyncio.Event())

    async def _changed_async(self) -> None:
        assert self._async_cond is not None
        async with self._async_cond:
            await self._async_cond.wait()

    async def _notify(self) -> None:
        assert self._async_cond is not None
        async with self._async_cond:
            self._async_cond.notify_all()

    async def _handle(self, ws: Any) -> None:
        with self.cond:
            index = self.accepted
            self.accepted += 1
            self.cond.notify_all()
        conn = Conn(self, ws, index)
        reader = asyncio.create_task(self._read(conn))
        try:
            await self.script(conn)
            await reader
        except Exception as exc:  # the client hanging up mid-script is normal
            from websockets.exceptions import ConnectionClosed

            if not isinstance(exc, ConnectionClosed | TimeoutError):
                self.errors.append(exc)
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            with self.cond:
                self.closed += 1
                self.cond.notify_all()

    async def _read(self, conn: Conn) -> None:
        """kiteconnect's subscribe / mode / unsubscribe messages, kept per connection."""
        with contextlib.suppress(Exception):
            async for msg in conn.ws:
                if not isinstance(msg, str):
                    continue
                m = json.loads(msg)
                a, v = m.get("a"), m.get("v")
                if a == "subscribe":
                    for t in v:
                        conn.tokens.setdefault(int(t), "quote")
                elif a == "mode":
                    for t in v[1]:
                        conn.tokens[int(t)] = v[0]
                elif a == "unsubscribe":
                    for t in v:
                        conn.tokens.pop(int(t), None)
                await self._notify()
