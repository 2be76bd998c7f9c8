"""The stand-in's REST API: the few Kite Connect endpoints livecli calls, served at `/`.

kiteconnect's KiteConnect joins every route onto its `root`, so pointing it at this server's URL
is all a client needs. Responses copy Kite's shapes (kite-mocks): the 12-column instrument CSV,
historical candles `[["2017-12-15T09:15:00+0530", o, h, l, c, v(, oi)], ...]`, the session and
profile JSON, and `{"status": "error", "message": ..., "error_type": ...}` on failure.

Historical candles are built by livecli's own candle engine (`livecli.core.batch.rebuild`) from
the very ticks the stand-in's ticker sends, so history and live agree by construction. Today is
served up to the simulated now, and as Kite does, a candle appears only once it has closed and
`history_delay_s` simulated seconds more have passed. Kite's other habits that livecli must live
with are there for tests: HTTP 429 beyond `history_rate_limit` requests a second (real seconds,
as Kite counts them), every historical request logged (`HistoryLog`: when, and what it was
answered), and `Divergence`: known differences between history and the ticks (a minute's
volume shifted to the next minute, a minute missing) for `livecli reconcile` to find.

A tiny HTTP/1.1 server on asyncio (keep-alive, Content-Length bodies) keeps both servers on one
event loop thread; handlers run in the loop's thread pool so a long history request never stalls
the ticker's frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from livecli.core.intervals import Interval
from livecli.core.timeutil import IST, day_start, ist_day, to_ist
from livecli.sim.clock import SimClock
from livecli.sim.market import Market
from livecli.sim.state import SimState
from livecli.sim.universe import Instrument, instruments_csv

KITE_INTERVALS = {
    "minute": 1, "3minute": 3, "5minute": 5, "10minute": 10, "15minute": 15, "30minute": 30,
    "60minute": 60, "day": 0,
}
HISTORY_DAYS = 30  # calendar days before the simulated date that history reaches back
# Simulated seconds after a minute closes before its candle is served (Kite's candles lag too).
HISTORY_DELAY_S = 10.0
_MAX_REQUEST_BYTES = 1 << 20


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Divergence:
    """Known ways the served minute candles differ from the ticks (set by tests, for reconcile).

    `shifted`: {(token, minute start): volume} moved from that minute to the next one (Kite
    sometimes books a trade in the neighbouring minute); `missing`: minutes left out.
    """

    shifted: dict[tuple[int, int], int] = field(default_factory=dict)
    missing: set[tuple[int, int]] = field(default_factory=set)

    def apply(self, token: int, rows: list[list[Any]]) -> list[list[Any]]:
        if not self.shifted and not self.missing:
            return rows
        by_start = {r[0]: list(r) for r in rows}
        for (tok, start), vol in self.shifted.items():
            if tok == token and start in by_start and start + 60 in by_start:
                by_start[start][5] -= vol
                by_start[start + 60][5] += vol
        return [r for st, r in sorted(by_start.items()) if (token, st) not in self.missing]


@dataclass
class HistoryLog:
    """Every historical request: its arrival (monotonic, the instant Kite's limit counts, before
    any work) and the HTTP status it was answered."""

    entries: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, arrived: float, status: int) -> None:
        with self.lock:
            self.entries.append((arrived, status))

    def snapshot(self) -> list[tuple[float, int]]:
        with self.lock:
            return list(self.entries)

    def count(self, status: int | None = None) -> int:
        return sum(1 for _, s in self.snapshot() if status is None or s == status)

    def max_per_window(self, window_s: float = 1.0) -> int:
        """The most requests (any answer) that arrived within one `window_s` window."""
        times = [t for t, _ in self.snapshot()]
        best = lo = 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


def _json(status: int, obj: Any) -> Response:
    return Response(status, "application/json", json.dumps(obj, separators=(",", ":")).encode())


def kite_error(status: int, message: str, error_type: str) -> Response:
    return _json(status, {"status": "error", "message": message, "data": None,
                          "error_type": error_type})


def _num(x: float) -> float | int:
    """Kite writes whole prices as integers (1705, not 1705.0)."""
    return int(x) if float(x).is_integer() else float(x)


def kite_time(epoch_s: float) -> str:
    return to_ist(epoch_s).strftime("%Y-%m-%dT%H:%M:%S%z")


def parse_kite_datetime(text: str, end_of_day: bool = False) -> float:
    """`yyyy-mm-dd HH:MM:SS` or `yyyy-mm-dd` (IST unless an offset is given) to epoch seconds."""
    s = text.strip().replace("+0530", "+05:30")
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=IST)
    if end_of_day and len(text.strip()) == 10:
        dt = dt + timedelta(days=1, seconds=-1)
    return dt.timestamp()


class ApiHandlers:
    """The routes, as plain functions of (method, path, query, headers, body) -> Response."""

    def __init__(self, market: Market, clock: SimClock, state: SimState,
                 history_days: int = HISTORY_DAYS, history_rate_limit: float | None = None,
                 history_delay_s: float = HISTORY_DELAY_S) -> None:
        self.market = market
        self.history_rate_limit = history_rate_limit
        self.history_delay_s = float(history_delay_s)
        self.divergence = Divergence()
        self.history_log = HistoryLog()
        self._history_times: deque[float] = deque()
        self.clock = clock
        self.state = state
        self.history_days = history_days
        self._csv: dict[str, bytes] = {}
        self._cache: OrderedDict[tuple[int, int, int], list[list[Any]]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.requests = 0

    # --- dispatch -------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        self.requests += 1
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [p for p in path.split("/") if p]
        try:
            if parts[:1] == ["instruments"] and method == "GET":
                if len(parts) == 1:
                    return self.instruments(None)
                if len(parts) == 2:
                    return self.instruments(parts[1])
                if len(parts) == 4 and parts[1] == "historical":
                    arrived = time.monotonic()
                    denied = self._auth(headers) or self._throttle()
                    r = denied or self.historical(parts[2], parts[3], query)
                    self.history_log.add(arrived, r.status)
                    return r
            if parts == ["session", "token"]:
                if method == "POST":
                    return self.session_token(body, headers)
                if method == "DELETE":
                    return _json(200, {"status": "success", "data": True})
            if parts == ["user", "profile"] and method == "GET":
                return self._auth(headers) or self.profile()
            if parts == ["connect", "login"] and method == "GET":
                return self.login(query)
            return kite_error(404, "Route not found", "GeneralException")
        except Exception as exc:  # a handler bug must not kill the connection silently
            return kite_error(500, f"stand-in error: {type(exc).__name__}: {exc}", "GeneralException")

    def _auth(self, headers: dict[str, str]) -> Response | None:
        h = headers.get("authorization", "")
        key = tok = None
        if h.startswith("token ") and ":" in h:
            key, _, tok = h[6:].partition(":")
        if self.state.credentials_ok(key, tok):
            return None
        return kite_error(403, "Incorrect `api_key` or `access_token`.", "TokenException")

    def _throttle(self) -> Response | None:
        """Kite allows HISTORICAL_REQUESTS_PER_S historical requests a second; beyond, HTTP 429
        (when a limit is set)."""
        if not self.history_rate_limit:
            return None
        now = time.monotonic()
        with self._cache_lock:
            q = self._history_times
            while q and q[0] <= now - 1.0:
                q.popleft()
            if len(q) >= self.history_rate_limit:
                return kite_error(429, "Too many requests", "NetworkException")
            q.append(now)
        return None

    # --- routes ---------------------------------------------------------------------------------
    def instruments(self, exchange: str | None) -> Response:
        key = (exchange or "").upper()
        body = self._csv.get(key)
        if body is None:
            ins = [i for i in self.market.instruments if not key or i.exchange == key]
            body = instruments_csv(ins).encode()
            self._csv[key] = body
        return Response(200, "text/csv", body)

    def session_token(self, body: bytes, headers: dict[str, str]) -> Response:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        api_key, req, checksum = form.get("api_key"), form.get("request_token"), form.get("checksum")
        if not api_key or not req or not checksum:
            return kite_error(400, "Missing api_key, request_token or checksum", "InputException")
        expected = hashlib.sha256((self.state.api_key + req + self.state.api_secret).encode()).hexdigest()
        if api_key != self.state.api_key or not hmac.compare_digest(checksum, expected):
            return kite_error(403, "Invalid `checksum`.", "TokenException")
        now = to_ist(self.clock.now())
        data = dict(self._user(), **{
            "api_key": self.state.api_key,
            "access_token": self.state.access_token,
            "public_token": "sim-public-token",
            "enctoken": "sim-enctoken",
            "refresh_token": "",
            "silo": "",
            "login_time": now.strftime("%Y-%m-%d %H:%M:%S"),
        })
        return _json(200, {"status": "success", "data": data})

    @staticmethod
    def _user() -> dict[str, Any]:
        return {
            "user_id": "SIM001",
            "user_type": "individual",
            "email": "sim@localhost",
            "user_name": "livecli Stand-in",
            "user_shortname": "Stand-in",
            "broker": "ZERODHA",
            "exchanges": ["NSE", "NFO", "CDS", "MCX", "BSE", "BFO", "BCD", "MF"],
            "products": ["CNC", "NRML", "MIS", "BO", "CO"],
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "avatar_url": None,
            "meta": {"demat_consent": "physical"},
        }

    def profile(self) -> Response:
        return _json(200, {"status": "success", "data": self._user()})

    def login(self, query: dict[str, str]) -> Response:
        """Stands in for kite.zerodha.com/connect/login: logs in at once, redirects with a token."""
        req = "sim-req-" + secrets.token_hex(8)
        redirect = query.get("redirect_url") or query.get("redirect_uri")
        if redirect:
            sep = "&" if "?" in redirect else "?"
            loc = redirect + sep + urlencode({"action": "login", "type": "login",
                                              "status": "success", "request_token": req})
            return Response(302, "text/plain", b"", {"Location": loc})
        return _json(200, {"status": "success", "data": {"request_token": req}})

    def historical(self, token_s: str, interval: str, query: dict[str, str]) -> Response:
        try:
            token = int(token_s)
            ins = self.market.instrument(token)
        except (ValueError, KeyError):
            return kite_error(400, "invalid token", "InputException")
        if interval not in KITE_INTERVALS:
            return kite_error(400, "invalid interval", "InputException")
        try:
            t_from = parse_kite_datetime(query["from"])
            t_to = parse_kite_datetime(query["to"], end_of_day=True)
        except (KeyError, ValueError):
            return kite_error(400, "invalid from/to: use yyyy-mm-dd hh:mm:ss", "InputException")
        if t_to < t_from:
            return kite_error(400, "invalid from date: after to date", "InputException")
        with_oi = query.get("oi") in ("1", "true")
        candles = self.candles(ins, KITE_INTERVALS[interval], t_from, t_to, with_oi)
        return _json(200, {"status": "success", "data": {"candles": candles}})

    # --- candles --------------------------------------------------------------------------------
    def candles(self, ins: Instrument, minutes: int, t_from: float, t_to: float,
                with_oi: bool) -> list[list[Any]]:
        """Kite-shaped candle rows with start in [t_from, t_to]; minutes 0 = day candles."""
        now = self.clock.now()
        today = ist_day(now)
        first = today - self.history_days
        d0 = max(ist_day(t_from), first)
        d1 = min(ist_day(t_to), today)
        rows: list[list[Any]] = []
        # Today's candles appear once closed and history_delay_s has passed (a day candle of
        # today is the exception: Kite serves it while the day runs).
        shown_until = now - self.history_delay_s
        span = max(minutes, 1) * 60
        for day in range(d0, d1 + 1):
            if not self.market.is_trading_day(day):
                continue
            day_rows = self._day_rows(ins, day, minutes, now if day == today else None)
            if minutes == 1:
                day_rows = self.divergence.apply(ins.instrument_token, day_rows)
            for r in day_rows:
                start = r[0]
                if day == today and minutes and start + span > shown_until:
                    continue
                if minutes == 0 or t_from <= start <= t_to:
                    rows.append(r)
        out = []
        for r in rows:
            row = [kite_time(r[0]), *(_num(x) for x in r[1:5]), int(r[5])]
            if with_oi:
                row.append(int(r[6]))
            out.append(row)
        return out

    def _day_rows(self, ins: Instrument, day: int, minutes: int, until: float | None) -> list[list[Any]]:
        key = (ins.instrument_token, day, minutes)
        if until is None:
            with self._cache_lock:
                hit = self._cache.get(key)
            if hit is not None:
                return hit
        rows = self._build_rows(ins, day, minutes, until)
        if until is None:
            with self._cache_lock:
                self._cache[key] = rows
                if len(self._cache) > 5000:
                    self._cache.popitem(last=False)
        return rows

    def _build_rows(self, ins: Instrument, day: int, minutes: int, until: float | None) -> list[list[Any]]:
        from livecli.core.batch import rebuild

        blk = self.market.day_ticks(ins.instrument_token, day, until)
        if blk is None or not len(blk):
            return []
        cols = self.market.tick_columns([blk])
        names = {ins.instrument_token: (ins.tradingsymbol, ins.session_exchange)}
        iv = Interval(max(minutes, 1))
        candles = sorted(rebuild(cols, [iv], names), key=lambda c: c.start)
        rows = [[c.start, c.open, c.high, c.low, c.close, c.volume, c.oi if c.oi is not None and c.oi >= 0 else 0]
                for c in candles if c.interval_min == iv.minutes]
        if minutes == 0 and rows:
            # A day candle folds the day's minutes, stamped at 00:00 IST as Kite does.
            rows = [[day_start(day), rows[0][1], max(r[2] for r in rows), min(r[3] for r in rows),
                     rows[-1][4], sum(r[5] for r in rows), rows[-1][6]]]
        return rows


class ApiServer:
    """Serves `ApiHandlers` over HTTP/1.1 on asyncio."""

    def __init__(self, handlers: ApiHandlers, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handlers = handlers
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                with contextlib.suppress(Exception):
                    w.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    method, target, version = line.decode("latin-1").split()
                except ValueError:
                    await self._write(writer, Response(400, "text/plain", b"bad request\n"), False)
                    break
                headers: dict[str, str] = {}
                size = 0
                while True:
                    h = await reader.readline()
                    size += len(h)
                    if h in (b"\r\n", b"\n", b"") or size > _MAX_REQUEST_BYTES:
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                n = int(headers.get("content-length") or 0)
                if n > _MAX_REQUEST_BYTES:
                    await self._write(writer, Response(413, "text/plain", b"too large\n"), False)
                    break
                body = await reader.readexactly(n) if n else b""
                resp = await loop.run_in_executor(
                    None, self.handlers.handle, method.upper(), target, headers, body)
                keep = (version == "HTTP/1.1" and headers.get("connection", "").lower() != "close")
                await self._write(writer, resp, keep)
                if not keep:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, r: Response, keep: bool) -> None:
        reason = HTTPStatus(r.status).phrase
        head = [f"HTTP/1.1 {r.status} {reason}", f"Content-Type: {r.content_type}",
                f"Content-Length: {len(r.body)}", "Server: livecli-sim",
                f"Connection: {'keep-alive' if keep else 'close'}"]
        head += [f"{k}: {v}" for k, v in r.headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + r.body)
        await writer.drain()


__all__ = ["HISTORY_DAYS", "HISTORY_DELAY_S", "KITE_INTERVALS", "ApiHandlers", "ApiServer",
           "Divergence", "HistoryLog", "kite_error"]
