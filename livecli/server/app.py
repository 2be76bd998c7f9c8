"""The FastAPI application: the routes under /api/live, their errors, auth and origins.

`create_app(ctx)` wires a `ServerContext` (the session, its control, the hub, the auth policy)
into routes; it holds no state of its own, so tests can build an app around any session.
Every error answer is `{"schema": 1, "error": {"status", "code", "message", ...}}`, FastAPI's
own validation errors and unknown routes included. /openapi.json and /docs describe it all.

Origins: browsers send `Origin` on cross-site requests and on every WebSocket handshake, and a
web page must not be able to drive a loopback server (stop it, read its data) behind the user's
back. So a request whose Origin is neither this server's own nor in `[serve] cors_origins` is
refused (403); with cors_origins configured, those origins also get CORS headers.

(No `from __future__ import annotations` here: FastAPI reads the routes' annotations, which
name objects local to `create_app`.)
"""

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyQuery, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from livecli.server import models as m
from livecli.server.auth import AuthPolicy, presented_key
from livecli.server.control import ApiError, SessionControl, api_error
from livecli.server.hub import Hub, interval_minutes
from livecli.server.shapes import API_SCHEMA, PREFIX, candle_obj, error_body
from livecli.server.wsapi import WsApi

log = logging.getLogger("livecli.server")

PathSymbol = Annotated[str, Path(min_length=1, max_length=64, pattern=m.SYMBOL_PATTERN,
                                 description="as users write it: RELIANCE, NSE:INFY, "
                                             "NSE:NIFTY 50 (URL-encoded)")]
IntervalQuery = Annotated[str, Query(min_length=1, max_length=32,
                                     description="any whole-minute interval: 1min, 5min, 45min, 1h")]
MAX_COUNT = 100_000


@dataclass
class ServerContext:
    """Everything the routes use. `settings` is the session's (sessions table, grace)."""

    session: Any
    hub: Hub
    control: SessionControl
    auth: AuthPolicy = field(default_factory=AuthPolicy)
    cors_origins: tuple[str, ...] = ()
    settings: Any = None
    title: str = "livecli Live Data API"


def _err(e: ApiError) -> JSONResponse:
    return JSONResponse(error_body(e.status, e.code, e.message, **e.extra), status_code=e.status,
                        headers=e.headers or None)


class OriginGuard:
    """Refuse browser requests from origins other than this server's own and cors_origins."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or [])
            origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/").lower()
            host = headers.get(b"host", b"").decode("latin-1").lower()
            own = origin.split("://", 1)[-1] == host
            # "null" (sandboxed frames, file: pages) is foreign too unless listed.
            if origin and not own and origin not in self.allowed:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = error_body(403, "origin", f"requests from {origin[:80]} are not allowed: "
                                  "add it to [serve] cors_origins")
                await JSONResponse(body, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(ctx: ServerContext) -> FastAPI:
    session, control, hub = ctx.session, ctx.control, ctx.hub

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await hub.start()  # the hub lives on the server's loop
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        lifespan=lifespan,
        title=ctx.title, version=str(API_SCHEMA),
        description="One livecli session (one Kite connection set, one store, the candle "
                    "engine) shared by every program: REST under /api/live, WebSocket push at "
                    "/api/live/ws. Ticks and candles are the JSON lines' objects "
                    "(docs/jsonl.md), times ISO 8601 with +05:30. Auth, when the server "
                    "requires it: `Authorization: Bearer KEY` or `?token=KEY`.",
    )
    bearer = HTTPBearer(auto_error=False, description="the server's API key")
    query_key = APIKeyQuery(name="token", auto_error=False, description="the API key, for browsers")

    async def authorized(request: Request, _b: Annotated[Any, Depends(bearer)],
                         _q: Annotated[Any, Depends(query_key)]) -> None:
        if not ctx.auth.allows(presented_key(request.headers, request.query_params)):
            raise ApiError(401, "unauthorized",
                           "this server requires its API key: send `Authorization: Bearer KEY` "
                           "(or ?token=KEY); the key is in the server's data folder",
                           headers={"WWW-Authenticate": "Bearer"})

    # The document describes this server: security schemes (and 401) only when it needs the key.
    auth = [Depends(authorized)] if ctx.auth.required else []

    def errs(*codes: int) -> dict[int | str, dict[str, Any]]:
        return m.errors(*codes, *((401,) if ctx.auth.required else ()))

    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
        return _err(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [{"loc": [str(p) for p in er.get("loc", ())], "msg": str(er.get("msg", ""))}
                for er in exc.errors()][:20]
        first = errs[0] if errs else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] or first["loc"])
        return _err(ApiError(422, "invalid_request", f"{where}: {first['msg']}", errors=errs))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # a body that is not even text: bad input, as the rest
            return _err(ApiError(422, "invalid_request", f"the request body: {exc.detail}"))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
        return _err(ApiError(exc.status_code, code, str(exc.detail),
                             headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def _unexpected(_r: Request, exc: Exception) -> JSONResponse:
        log.warning("unexpected %s in a request: %s", type(exc).__name__, exc)
        return _err(api_error(exc))

    # --- control ---------------------------------------------------------------------------------
    @app.post(f"{PREFIX}/start", dependencies=auth, response_model=m.StartAnswer,
              responses=errs(404, 409, 422, 502, 503), tags=["control"])
    async def start(body: m.StartRequest) -> JSONResponse:
        """Start streaming these symbols, or add them to what streams."""
        settings = ctx.settings
        exchange = body.exchange or (settings.stream.exchange if settings else "NSE")
        mode = body.mode or (settings.stream.mode if settings else "full")
        out = await run_in_threadpool(control.start, body.symbols, exchange, mode,
                                      body.mode is not None)
        return JSONResponse(out)

    @app.post(f"{PREFIX}/stop", dependencies=auth, response_model=m.StopAnswer,
              responses=errs(409), tags=["control"])
    async def stop() -> JSONResponse:
        """Stop streaming (every closed candle stored); the server stays up."""
        return JSONResponse(await run_in_threadpool(control.stop))

    @app.post(f"{PREFIX}/subscribe", dependencies=auth, response_model=m.SubscribeAnswer,
              responses=errs(404, 409, 422, 502, 503), tags=["control"])
    async def subscribe(body: m.SubscribeRequest) -> JSONResponse:
        """Add one instrument to the running session (in the session's mode)."""
        exchange = body.exchange or (ctx.settings.stream.exchange if ctx.settings else "NSE")
        return JSONResponse(await run_in_threadpool(control.subscribe, body.symbol,
                                                    exchange, body.mode))

    @app.delete(f"{PREFIX}/unsubscribe/{{symbol}}", dependencies=auth,
                response_model=m.UnsubscribeAnswer, responses=errs(404, 409, 503),
                tags=["control"])
    async def unsubscribe(symbol: PathSymbol) -> JSONResponse:
        """Stop receiving one instrument."""
        return JSONResponse(await run_in_threadpool(control.unsubscribe, symbol))

    # --- reading ---------------------------------------------------------------------------------
    def _interval(text: str) -> int:
        from livecli.errors import IntervalError

        try:
            return interval_minutes(text, session.intervals)
        except IntervalError as exc:
            raise ApiError(422, "bad_interval", str(exc)) from None
        except LookupError as exc:
            raise ApiError(422, "bad_interval", str(exc.args[0])) from None

    def _names(tok: int) -> tuple[str, str | None]:
        try:
            return hub.names[tok]
        except KeyError:
            return str(tok), None

    @app.get(f"{PREFIX}/candle/current/{{symbol}}", dependencies=auth,
             response_model=m.CandleAnswer, responses=errs(404, 409, 422, 503),
             tags=["read"])
    async def current_candle(symbol: PathSymbol, interval: IntervalQuery = "1min") -> JSONResponse:
        """The forming candle of one of the streamed intervals."""
        tok = control.token(symbol)
        iv = _interval(interval)
        control.require_live()
        candle = hub.current_candle(tok, iv)
        sym, ex = _names(tok)
        return JSONResponse({"schema": API_SCHEMA, "symbol": sym, "exchange": ex,
                             "interval": f"{iv}min",
                             "candle": candle_obj(candle) if candle is not None else None})

    @app.get(f"{PREFIX}/candles/{{symbol}}", dependencies=auth, response_model=m.CandlesAnswer,
             responses=errs(404, 409, 422), tags=["read"])
    async def candles(
        symbol: PathSymbol, interval: IntervalQuery = "5min",
        count: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 100,
        include_current: bool = False,
    ) -> JSONResponse:
        """History, newest `count` (oldest first): any whole-minute interval, as `livecli
        candles` (intervals not streamed are derived from the 1-minute candles)."""
        from livecli.core.intervals import parse_interval
        from livecli.errors import IntervalError
        from livecli.server.history import history

        tok = control.token(symbol)
        sym, ex = _names(tok)
        try:
            iv = parse_interval(interval)
            table = ctx.settings.session_table() if ctx.settings is not None else {}
            from livecli.core.sessions import session_for

            session_for(ex or "NSE", table).check_interval(iv)
        except IntervalError as exc:
            raise ApiError(422, "bad_interval", str(exc)) from None
        view = control.view()
        clock = None
        if view.feed_clock:
            from livecli.core.timeutil import parse_instant

            clock = parse_instant(view.feed_clock)
        grace = ctx.settings.stream.grace_s if ctx.settings is not None else 2.0
        rows, derived = await run_in_threadpool(
            history, session, f"{ex}:{sym}" if ex else symbol, iv, count, include_current,
            sessions=table, feed_clock=clock, grace_s=grace)
        return JSONResponse({"schema": API_SCHEMA, "symbol": sym, "exchange": ex,
                             "interval": iv.name, "derived": derived,
                             "candles": [candle_obj(r) for r in rows]})

    @app.get(f"{PREFIX}/tick/latest/{{symbol}}", dependencies=auth, response_model=m.TickAnswer,
             responses=errs(404, 409, 503), tags=["read"])
    async def latest_tick(symbol: PathSymbol) -> JSONResponse:
        """The instrument's newest tick."""
        tok = control.token(symbol)
        control.require_live()
        sym, ex = _names(tok)
        return JSONResponse({"schema": API_SCHEMA, "symbol": sym, "exchange": ex,
                             "tick": hub.latest_tick(tok)})

    @app.get(f"{PREFIX}/status", dependencies=auth, response_model=m.StatusAnswer,
             responses=errs(), tags=["read"])
    async def status() -> JSONResponse:
        """The session's status (as `livecli stream --jsonl` writes it) and the server's."""
        stats = {**hub.stats(), "auth": ctx.auth.required}
        st = await run_in_threadpool(control.status)
        return JSONResponse({"type": "status", **st, "schema": st.get("schema", API_SCHEMA),
                             "server": stats})

    # --- push ------------------------------------------------------------------------------------
    ws = WsApi(ctx)

    @app.websocket(f"{PREFIX}/ws")
    async def ws_multiplex(websocket: WebSocket) -> None:
        await ws.multiplex(websocket)

    @app.websocket(f"{PREFIX}/ws/ticks/{{symbol}}")
    async def ws_ticks(websocket: WebSocket, symbol: str) -> None:
        await ws.ticks(websocket, symbol)

    @app.websocket(f"{PREFIX}/ws/candles/{{symbol}}")
    async def ws_candles(websocket: WebSocket, symbol: str, interval: str = "1min") -> None:
        await ws.candles(websocket, symbol, interval)

    if ctx.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(ctx.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(OriginGuard, allowed=ctx.cors_origins)

    return app
