"""The WebSocket endpoints: `/ws` (many streams on one connection), `/ws/ticks/{symbol}` and
`/ws/candles/{symbol}?interval=`.

On `/ws` a client sends actions as JSON text and gets a reply to each:

    {"action": "subscribe", "ticks": ["RELIANCE", "*"], "candles": {"5min": ["INFY"]},
     "status": true}                       -> {"type": "subscribed", "ticks": [...], ...}
    {"action": "unsubscribe", "ticks": ["RELIANCE"]}
    {"action": "ping"}                     -> {"type": "pong"}

`"*"` means every instrument of the session, now and later. A bad action gets
`{"type": "error", "status": 404|409|422, "code", "message"}` and changes nothing; the
connection stays open. The single-stream endpoints take their subscription from the path, and
close with 4404 (unknown symbol), 4422 (bad interval) or 4409 (not streaming) when it is wrong.
A client that reads too slowly is closed with 1008 by the hub.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from livecli.errors import IntervalError
from livecli.server import shapes
from livecli.server.auth import presented_key
from livecli.server.control import ApiError
from livecli.server.hub import ALL, Client, Subscription, interval_minutes

log = logging.getLogger("livecli.server")

MAX_ACTION_CHARS = 1_000_000
MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 123 bytes


def reason(text: str) -> str:
    data = text.encode()
    if len(data) <= MAX_REASON_BYTES:
        return text
    return data[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


class WsApi:
    """The WebSocket side of the app; `ctx` is the server's `ServerContext`."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    async def _open(self, ws: WebSocket) -> Client | None:
        if not self.ctx.auth.allows(presented_key(ws.headers, ws.query_params)):
            await ws.close(code=1008)  # before accept: the handshake is refused with HTTP 403
            return None
        await ws.accept()
        return self.ctx.hub.connect(ws.send_text, self._closer(ws))

    @staticmethod
    def _closer(ws: WebSocket):
        async def close(code: int, why: str) -> None:
            await ws.close(code=code, reason=reason(why))
        return close

    async def _serve(self, ws: WebSocket, client: Client, interactive: bool) -> None:
        hub = self.ctx.hub
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if interactive:
                    text = msg.get("text")
                    if text is None and msg.get("bytes") is not None:
                        text = msg["bytes"].decode("utf-8", "replace")
                    client.offer(self.act(client, text or ""))
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went, or the hub closed it
        finally:
            hub.disconnect(client)

    # --- endpoints ----------------------------------------------------------------------------------
    async def multiplex(self, ws: WebSocket) -> None:
        client = await self._open(ws)
        if client is not None:
            await self._serve(ws, client, interactive=True)

    async def ticks(self, ws: WebSocket, symbol: str) -> None:
        client = await self._open(ws)
        if client is None:
            return
        try:
            tok = self.ctx.control.token(symbol)
        except ApiError as err:
            await self._refuse(ws, client, err)
            return
        self.ctx.hub.subscribe(client, Subscription(ticks=frozenset({tok})))
        await self._serve(ws, client, interactive=False)

    async def candles(self, ws: WebSocket, symbol: str, interval: str) -> None:
        client = await self._open(ws)
        if client is None:
            return
        try:
            tok = self.ctx.control.token(symbol)
            iv = self._interval(interval)
        except ApiError as err:
            await self._refuse(ws, client, err)
            return
        hub = self.ctx.hub
        hub.subscribe(client, Subscription(candles=frozenset({(iv, tok)})))
        hub.snapshot(client, [(iv, tok)])
        await self._serve(ws, client, interactive=False)

    async def _refuse(self, ws: WebSocket, client: Client, err: ApiError) -> None:
        code = {404: shapes.CLOSE_UNKNOWN_SYMBOL, 409: shapes.CLOSE_NOT_STREAMING}.get(
            err.status, shapes.CLOSE_BAD_REQUEST)
        self.ctx.hub.disconnect(client)
        try:
            await ws.send_text(shapes.message("error", status=err.status, code=err.code,
                                              message=err.message, **err.extra))
            await ws.close(code=code, reason=reason(err.message))
        except (WebSocketDisconnect, RuntimeError):
            pass

    # --- /ws actions --------------------------------------------------------------------------------
    def act(self, client: Client, text: str) -> str:
        """Apply one action from `client`; the reply message."""
        try:
            if len(text) > MAX_ACTION_CHARS:
                raise ApiError(422, "bad_request", "action too long")
            try:
                doc = json.loads(text)
            except ValueError:
                raise ApiError(422, "bad_request", 'not JSON: send e.g. {"action": "subscribe", '
                                                   '"ticks": ["RELIANCE"]}') from None
            if not isinstance(doc, dict):
                raise ApiError(422, "bad_request", "an action is a JSON object")
            action = doc.get("action")
            if action == "ping":
                return shapes.message("pong")
            if action not in ("subscribe", "unsubscribe"):
                raise ApiError(422, "bad_request",
                               f"unknown action {str(action)[:40]!r}: use subscribe, "
                               "unsubscribe or ping")
            sub = self._parse(doc)
        except ApiError as err:
            return shapes.message("error", status=err.status, code=err.code,
                                  message=err.message, **err.extra)
        hub = self.ctx.hub
        if action == "subscribe":
            hub.subscribe(client, sub)
            hub.snapshot(client, sub.candles)
        else:
            hub.unsubscribe(client, sub)
        return self.describe(client.sub)

    def _parse(self, doc: dict[str, Any]) -> Subscription:
        unknown = set(doc) - {"action", "ticks", "candles", "status"}
        if unknown:
            raise ApiError(422, "bad_request", f"unknown field(s) {', '.join(sorted(unknown))[:80]}: "
                                               "use ticks, candles, status")
        ticks_all, ticks = self._symbols(doc.get("ticks", []), "ticks")
        candles = doc.get("candles", {})
        if not isinstance(candles, dict):
            raise ApiError(422, "bad_request", 'candles is an object: {"5min": ["INFY"]}')
        c_all: set[int] = set()
        c_keys: set[tuple[int, int]] = set()
        for name, syms in candles.items():
            iv = self._interval(str(name))
            every, toks = self._symbols(syms, f"candles.{name}")
            if every:
                c_all.add(iv)
            c_keys.update((iv, t) for t in toks)
        status = doc.get("status", False)
        if not isinstance(status, bool):
            raise ApiError(422, "bad_request", "status is true or false")
        return Subscription(ticks_all, frozenset(ticks), frozenset(c_all), frozenset(c_keys),
                            status)

    def _symbols(self, value: Any, where: str) -> tuple[bool, set[int]]:
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise ApiError(422, "bad_request", f'{where} is a list of symbols, e.g. ["RELIANCE", "*"]')
        every = ALL in value
        return every, {self.ctx.control.token(s) for s in value if s != ALL}

    def _interval(self, text: str) -> int:
        try:
            return interval_minutes(text, self.ctx.session.intervals)
        except IntervalError as exc:
            raise ApiError(422, "bad_interval", str(exc)) from None
        except LookupError as exc:
            raise ApiError(422, "bad_interval", str(exc.args[0])) from None

    def describe(self, sub: Subscription) -> str:
        key = self.ctx.hub.names.key
        candles: dict[str, list[str]] = {}
        for iv in sorted(sub.candles_all):
            candles.setdefault(f"{iv}min", []).append(ALL)
        for iv, tok in sorted(sub.candles):
            candles.setdefault(f"{iv}min", []).append(key(tok) or str(tok))
        ticks = [ALL] if sub.ticks_all else sorted(key(t) or str(t) for t in sub.ticks)
        return shapes.message("subscribed", ticks=ticks, candles=candles, status=sub.status)
