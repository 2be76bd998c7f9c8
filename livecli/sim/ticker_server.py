"""The stand-in's WebSocket ticker: Kite's streaming protocol over loopback.

It accepts what kiteconnect's KiteTicker sends (the `?api_key=..&access_token=..` query on the
upgrade, JSON subscribe/unsubscribe/mode messages) and answers as Kite does: HTTP 403 on a bad
pair, binary frames of ltp/quote/full (and index) packets, a 1-byte heartbeat when there is
nothing to say, JSON text messages for errors. Each send cycle a connection gets ONE frame with
every tick its instruments made since the previous cycle, in exchange-time order, each packet in
its instrument's mode. Ticks come from the shared `Market`, so every client sees the same ticks.

Subscribing (or changing mode) also sends the instrument's latest snapshot of the day, as Kite
does, so a quiet instrument shows its price at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from livecli.kite.protocol import HEARTBEAT, MAX_PER_CONNECTION, MODES
from livecli.sim.clock import SimClock
from livecli.sim.market import Market
from livecli.sim.packets import FrameBuilder
from livecli.sim.state import ConnInfo, SimState

MAX_TOKENS_PER_CONNECTION = MAX_PER_CONNECTION

log = logging.getLogger("livecli.sim.ticker")


class _MaskTokens(logging.Filter):
    """websockets logs each upgrade's request line, which carries the access token: mask it."""

    _pattern = re.compile(r"(access_token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "access_token=" in text:
            from livecli.config import mask  # the one masking function livecli has

            record.msg = self._pattern.sub(lambda m: m[1] + mask(m[0][len(m[1]):]), text)
            record.args = ()
        return True


log.addFilter(_MaskTokens())


def _malformed(frame: bytes | None) -> bytes:
    """A frame whose last packet runs past its end (a real one cut short, or a made-up one)."""
    if frame is None or len(frame) < 8:
        # Claims one 44-byte quote packet but carries only 10 bytes of it.
        return b"\x00\x01\x00\x2c" + b"\x00" * 10
    return frame[: len(frame) - 5]


class TickerServer:
    """Serves Kite's ticker protocol on `host:port` from `market` on `clock`'s time."""

    def __init__(self, market: Market, clock: SimClock, state: SimState, host: str = "127.0.0.1",
                 port: int = 0, heartbeat_s: float = 1.0, cycle_s: float = 0.25,
                 max_tokens: int = MAX_TOKENS_PER_CONNECTION) -> None:
        self.market = market
        self.clock = clock
        self.state = state
        self.host = host
        self.port = port
        self.heartbeat_s = heartbeat_s
        self.cycle_s = cycle_s
        self.max_tokens = max_tokens
        self._server: Any = None
        self._live: dict[int, tuple[ConnInfo, Any]] = {}

    async def start(self) -> int:
        from websockets.asyncio.server import serve

        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._check_auth,
            compression=None, ping_interval=None, max_size=4 * 1024 * 1024,
            server_header="livecli-sim", logger=log,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            for _, ws in list(self._live.values()):
                with contextlib.suppress(Exception):
                    ws.transport.abort()
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    # --- handshake ----------------------------------------------------------------------------
    def _check_auth(self, connection: Any, request: Any) -> Any:
        q = parse_qs(urlsplit(request.path).query)
        key = (q.get("api_key") or [None])[0]
        token = (q.get("access_token") or [None])[0]
        if self.state.credentials_ok(key, token):
            return None
        with self.state.cond:
            self.state.rejected_upgrades += 1
        # Kite fails the upgrade itself with 403; kiteconnect sees "upgrade failed (403 - Forbidden)".
        return connection.respond(HTTPStatus.FORBIDDEN, "Invalid api_key or access_token.\n")

    # --- one connection -----------------------------------------------------------------------
    async def _handle(self, ws: Any) -> None:
        q = parse_qs(urlsplit(ws.request.path).query)
        peer = ws.remote_address
        conn = self.state.add_conn(f"{peer[0]}:{peer[1]}" if peer else "?",
                                   (q.get("api_key") or [""])[0])
        conn_state = _ConnState(self.clock.now())
        self._live[conn.id] = (conn, ws)
        sender = asyncio.create_task(self._send_loop(conn, conn_state, ws))
        try:
            async for msg in ws:
                if isinstance(msg, str):
                    await self._on_text(conn, conn_state, ws, msg)
        except Exception:  # a dropped or aborted connection ends the same way
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            self._live.pop(conn.id, None)
            self.state.remove_conn(conn)

    async def _on_text(self, conn: ConnInfo, cs: _ConnState, ws: Any, text: str) -> None:
        try:
            msg = json.loads(text)
            action, value = msg["a"], msg.get("v")
        except (ValueError, TypeError, KeyError):
            return  # Kite ignores what it cannot read
        errors: list[str] = []
        with self.state.cond:
            if action == "subscribe" and isinstance(value, list):
                for tok in value:
                    if not isinstance(tok, int) or tok in conn.tokens:
                        continue
                    if len(conn.tokens) >= self.max_tokens:
                        errors.append(
                            f"Subscription limit of {self.max_tokens} instruments per connection "
                            f"reached: ignored {tok} and the rest")
                        break
                    conn.tokens[tok] = "quote"
                    cs.snapshot.add(tok)
            elif action == "unsubscribe" and isinstance(value, list):
                for tok in value:
                    if isinstance(tok, int):
                        conn.tokens.pop(tok, None)
                        cs.snapshot.discard(tok)
            elif (action == "mode" and isinstance(value, list) and len(value) == 2
                  and value[0] in MODES and isinstance(value[1], list)):
                for tok in value[1]:
                    if isinstance(tok, int) and tok in conn.tokens:
                        conn.tokens[tok] = value[0]
                        cs.snapshot.add(tok)
            self.state.cond.notify_all()
        for e in errors:
            await ws.send(json.dumps({"type": "error", "data": e}))

    async def _send_loop(self, conn: ConnInfo, cs: _ConnState, ws: Any) -> None:
        last_sent = time.monotonic()
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.cycle_s)
            now = self.clock.now()
            # Generating and encoding ticks is numpy work: off the loop, so handshakes, messages
            # and other connections' heartbeats are not held up by a big subscription.
            frames = await loop.run_in_executor(None, self._collect, conn, cs, now)
            real = time.monotonic()
            if self.state.is_silent():
                last_sent = real  # a silent link sends nothing, not even heartbeats
                continue
            with self.state.cond:
                malformed = conn.malformed_pending
                conn.malformed_pending = False
            if malformed:
                frames = [_malformed(frames[0] if frames else None), *frames[1:]]
            if frames:
                for f in frames:
                    await ws.send(f)
                with self.state.cond:
                    conn.frames += len(frames)
                    conn.packets += cs.last_count
                    conn.bytes_sent += sum(len(f) for f in frames)
                    conn.malformed_sent += int(malformed)
                last_sent = real
            elif real - last_sent >= self.heartbeat_s:
                await ws.send(HEARTBEAT)
                with self.state.cond:
                    conn.heartbeats += 1
                    conn.bytes_sent += 1
                last_sent = real

    def _collect(self, conn: ConnInfo, cs: _ConnState, now: float) -> list[bytes]:
        """Frames with every tick of the subscribed instruments in (cursor, now], plus snapshots."""
        with self.state.cond:
            subs = list(conn.tokens.items())
            snaps = cs.snapshot
            cs.snapshot = set()
        fb = FrameBuilder()
        market = self.market
        cursor = cs.cursor
        for tok, mode in subs:
            if tok not in market:
                continue
            if tok in snaps:
                last = market.last_tick(tok, cursor)
                if last is not None:
                    fb.add(last, mode)
            for blk in market.ticks_between(tok, cursor, now):
                fb.add(blk, mode)
        cs.cursor = now
        cs.last_count = fb.count
        return fb.frames()


class _ConnState:
    """Per-connection sending state kept on the loop thread."""

    __slots__ = ("cursor", "last_count", "snapshot")

    def __init__(self, cursor: float) -> None:
        self.cursor = cursor
        self.snapshot: set[int] = set()
        self.last_count = 0


async def broadcast_text(server: TickerServer, payload: str) -> int:
    """Send a JSON text message to every connected client; the number reached."""
    n = 0
    for _, ws in list(server._live.values()):
        with contextlib.suppress(Exception):
            await ws.send(payload)
            n += 1
    return n


def abort_all(server: TickerServer) -> int:
    """Abort the TCP connection of every client at once (no close frame): Kite dropping us."""
    n = 0
    for _, ws in list(server._live.values()):
        with contextlib.suppress(Exception):
            ws.transport.abort()
            n += 1
    return n
