"""`RemoteSession`: a served session used from another process, with `LiveSession`'s surface.

    from livecli.session import LiveSession

    with LiveSession.attach("http://127.0.0.1:8000") as s:     # or LiveSession(source=URL)
        s.start(["RELIANCE", "INFY"])                      # added to what the server streams
        s.on_candle_close("5min", lambda token, candle: print(candle.symbol, candle.close))
        s.on_tick("INFY", lambda tick: None)
        s.wait(600)
        print(s.get_candles("RELIANCE", "5min", count=20))

Reads and control go over REST (httpx); callbacks are fed by one WebSocket (`/api/live/ws`)
read on a thread of its own and run on another, so a slow callback never stalls the socket
(the server would drop a client that stops reading). When the server goes away (restarted,
killed) the socket reconnects by itself with a bounded backoff, subscribes again, and starts
the symbols it had started again if the new server is not streaming them; callbacks resume.
Candles that closed while no server was up are not replayed (read them with `get_candles`).

The typed read API the dashboard uses (`instruments`, `latest_ticks`, `recent_ticks`,
`forming_candles`, `live_status`, `now`: livecli.session.readable.ReadableSession) is answered
from a mirror the same socket keeps (every tick, the forming candles of the intervals asked
for, the status pushed each second), never by a request per frame; so one dashboard draws a
local session or an attached one. The mirror starts on the first read (`follow()` starts it at
once); the closes of the spark lines before it started are fetched once, off the caller's thread.

Differences from `LiveSession`, all deliberate: `stop()` detaches this client and leaves the
served session running for everyone else (`stop_streaming()` stops it for all); tick dicts
are the API's tick objects (docs/jsonl.md) plus `time`, the fields the JSON lines carry.
Only the wire (httpx, websockets) is imported here: nothing of FastAPI or uvicorn.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from livecli import errors as e
from livecli.core.candles import Candle
from livecli.core.intervals import Interval, parse_interval
from livecli.core.status import LiveStatus
from livecli.core.timeutil import parse_instant
from livecli.core.wire import PREFIX, callback_tick, candle_from_obj
from livecli.session.mirror import Mirror, RemoteInstrument, instruments_of
from livecli.session.view import Depth, FormingCandle, LatestTick, RecentTick

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("livecli.session.remote")

TickCallback = Callable[[dict[str, Any]], None]
CandleCloseCallback = Callable[[int, Candle], None]
ENDED_STATES = frozenset({"stopped", "failed", "auth_failed"})
ALL = "*"
CHART_REFRESH_S = 1.0  # a symbol view's candles over REST: at most this often

__all__ = ["RemoteInstrument", "RemoteSession"]


def _error_for(status: int, body: Any, url: str) -> Exception:
    err = body.get("error", {}) if isinstance(body, dict) else {}
    msg = str(err.get("message") or f"HTTP {status} from {url}")
    code = err.get("code")
    if status == 404 and code == "unknown_symbol":
        return e.SymbolError(msg)
    if status == 422 and code == "bad_interval":
        return e.IntervalError(msg)
    if status in (409, 404, 405, 422):
        return e.UsageError(msg)
    if status == 401:
        return e.ConfigError(f"{msg} (pass api_key= to attach; the key is in the server's data folder)")
    if status == 502:
        return e.KiteApiError(msg)
    if status == 503:
        return e.ConnectionFailedError(msg)
    return e.LivecliError(f"the server failed: {msg}")


def base_url(url: str) -> str:
    """The server's root from what a user wrote: `127.0.0.1:8000`, `http://h:8000/api/live/`."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    path = parts.path.rstrip("/")
    if path.endswith(PREFIX):
        path = path[: -len(PREFIX)]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class RemoteSession:
    """A session served by `livecli serve` at `url` (e.g. "http://127.0.0.1:8000")."""

    def __init__(self, url: str = "http://127.0.0.1:8000", *, api_key: str | None = None,
                 timeout: float = 30.0, reconnect_max_delay_s: float = 5.0) -> None:
        import httpx

        self.url = base_url(url)
        parts = urlsplit(self.url)
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        self._ws_url = urlunsplit((ws_scheme, parts.netloc, parts.path + PREFIX + "/ws", "", ""))
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url + PREFIX, timeout=timeout,
                                  headers=self._headers)
        self.reconnect_max_delay_s = reconnect_max_delay_s
        self._lock = threading.RLock()
        self._tick_cbs: dict[str | None, list[tuple[str | None, TickCallback]]] = {}
        self._candle_cbs: dict[int, list[CandleCloseCallback]] = {}
        self._status_listeners: list[Callable[[LiveStatus], None]] = []
        self._candle_listeners: list[Callable[[Candle], None]] = []
        self._batch_listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self._drop_counters: list[Callable[[], int]] = []
        self._want_ticks: set[str] = set()
        self._want_candles: dict[str, set[str]] = {}
        self._started: tuple[list[str], str, str | None] | None = None
        self._ws: Any = None
        self._reader: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None
        self._events: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._ended = threading.Event()
        self._mirror = Mirror()
        self._chart_cache: dict[tuple[int, int, int], tuple[float, list[Candle]]] = {}
        self._mirror_ticks = False
        self._mirror_ivs: set[int] = set()
        self._backfill: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._backfilled: set[tuple[int, int]] = set()
        self._backfiller: threading.Thread | None = None
        self.connected = threading.Event()
        self.connects = 0  # WebSocket connections made (1 + reconnections)
        self.last_error: str | None = None
        self.last_status: dict[str, Any] | None = None
        self.callback_errors = 0
        self.last_callback_error: str | None = None

    # --- REST ------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self._http.request(method, path, **kw)
        except RuntimeError:  # httpx's client is closed: stop() was called
            raise e.UsageError(f"this session is detached from {self.url} (stop() was "
                               "called): attach a new one") from None
        except httpx.HTTPError as exc:
            raise e.ConnectionFailedError(
                f"cannot reach the livecli server at {self.url}: {exc}; is `livecli serve` "
                "running there?") from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code >= 400:
            raise _error_for(r.status_code, body, self.url)
        return body

    @staticmethod
    def _path(symbol: str) -> str:
        from urllib.parse import quote

        return quote(symbol.strip(), safe="")

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self, symbols: Iterable[str], exchange: str = "NSE", mode: str | None = None
              ) -> RemoteSession:
        """Stream `symbols` on the server (added to what it streams) and attach. Returns self.

        `mode` None: the served session's (a new one: the server's [stream] mode)."""
        syms = [s for s in symbols if s.strip()]
        self._call("POST", "/start", json=self._start_body(syms, exchange, mode))
        with self._lock:
            self._started = (syms, exchange, mode)
        self.attach()
        return self

    @staticmethod
    def _start_body(syms: list[str], exchange: str, mode: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"symbols": syms, "exchange": exchange}
        if mode is not None:
            body["mode"] = mode
        return body

    def attach(self) -> RemoteSession:
        """Open the push socket (start() does it): callbacks and listeners get events."""
        with self._lock:
            if self._reader is None or not self._reader.is_alive():
                self._closing.clear()
                self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                                name="livecli-remote-ws")
                self._dispatcher = threading.Thread(target=self._dispatch_loop, daemon=True,
                                                    name="livecli-remote-callbacks")
                self._reader.start()
                self._dispatcher.start()
        return self

    def stop(self, reason: str | None = None) -> None:
        """Detach: close the socket and the callback thread. The served session goes on."""
        self._closing.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception as exc:
                log.debug("close: %s", exc)
        self._backfill.put(None)
        for t in (self._reader, self._dispatcher, self._backfiller):
            if t is not None and t is not threading.current_thread():
                if t is self._dispatcher:
                    self._events.put(None)
                t.join(timeout=5)
        self._http.close()

    def stop_streaming(self) -> dict[str, Any]:
        """Stop the served session for every client (POST /stop)."""
        return self._call("POST", "/stop")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the served session ends or `stop()` is called; True if it ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self._ended.is_set() or self._closing.is_set()):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._ended.wait(0.2 if left is None else min(0.2, left))
        return True

    @property
    def running(self) -> bool:
        st = self.last_status
        return (not self._closing.is_set() and st is not None
                and st.get("state") not in ENDED_STATES | {"idle"})

    @property
    def ended(self) -> bool:
        """The served session stopped (or failed) after streaming."""
        return self._ended.is_set()

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- instruments -------------------------------------------------------------------------------
    @property
    def instruments(self) -> Mapping[int, RemoteInstrument]:
        """{token: instrument} the served session streams: as its pushed status says, once the
        socket is up (no request), else asked for."""
        if self.connected.is_set() and self.last_status is not None:
            return self._mirror.instruments
        try:
            st = self.status()
        except e.LivecliError:
            if self.last_status is None:
                raise
            return self._mirror.instruments  # the server is away: what it last said
        self._mirror.status(st)
        return instruments_of(st)

    @property
    def intervals(self) -> tuple[Interval, ...]:
        st = self.last_status if self.connected.is_set() and self.last_status else self.status()
        return tuple(parse_interval(i) for i in st.get("intervals") or ())

    @property
    def mode(self) -> str:
        st = self.last_status or self.status()
        return str(st.get("mode") or "full")

    def token_of(self, symbol: str) -> int:
        want = symbol.strip().upper()
        for fresh in (False, True):
            insts = instruments_of(self.status()) if fresh else self.instruments
            for tok, inst in insts.items():
                if want in (inst.tradingsymbol.upper(),
                            f"{inst.exchange}:{inst.tradingsymbol}".upper()):
                    return tok
        raise e.SymbolError(f"{symbol} is not subscribed in the served session at {self.url}")

    def subscribe_symbol(self, symbol: str, exchange: str = "NSE") -> int:
        return int(self._call("POST", "/subscribe",
                              json={"symbol": symbol, "exchange": exchange})["instrument_token"])

    def unsubscribe_symbol(self, symbol: str) -> None:
        self._call("DELETE", f"/unsubscribe/{self._path(symbol)}")

    # --- reading -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The served session's status as JSON (GET /status), with the server's counters."""
        return self._call("GET", "/status")

    def get_latest_tick(self, symbol: str) -> dict[str, Any] | None:
        tick = self._call("GET", f"/tick/latest/{self._path(symbol)}")["tick"]
        return None if tick is None else callback_tick(tick)

    def get_current_candle(self, symbol: str, interval: str | int = "1min") -> dict[str, Any] | None:
        c = self._call("GET", f"/candle/current/{self._path(symbol)}",
                       params={"interval": parse_interval(interval).name})["candle"]
        return None if c is None else {k: v for k, v in c.items() if k not in ("type", "schema")}

    def get_candles(self, symbol: str, interval: str | int = "5min", count: int = 100,
                    include_current: bool = False) -> pd.DataFrame:
        """The newest `count` candles as a DataFrame, as `LiveSession.get_candles` gives."""
        import pandas as pd

        from livecli.core.candles import CANDLE_FIELDS

        body = self._candles(symbol, interval, count, include_current)
        df = pd.DataFrame(body["candles"], columns=list(CANDLE_FIELDS))
        df["start"] = pd.to_datetime(df["start"], format="ISO8601")
        return df

    def _candles(self, symbol: str, interval: str | int, count: int,
                 include_current: bool) -> dict[str, Any]:
        return self._call("GET", f"/candles/{self._path(symbol)}", params={
            "interval": parse_interval(interval).name, "count": count,
            "include_current": "true" if include_current else "false"})

    # --- the typed read API (livecli.session.readable), from the mirror ----------------------------
    def follow(self, interval: Interval | None = None) -> RemoteSession:
        """Mirror every tick (and the candles of `interval`) from now on, for the read API."""
        with self._lock:
            changed = not self._mirror_ticks
            self._mirror_ticks = True
            self._want_ticks.add(ALL)
            if interval is not None and interval.minutes not in self._mirror_ivs:
                self._mirror_ivs.add(interval.minutes)
                self._want_candles.setdefault(interval.name, set()).add(ALL)
                changed = True
        if changed:
            self._send_subscription()
        self.attach()
        return self

    def latest_ticks(self, tokens: Iterable[int] | None = None) -> dict[int, LatestTick]:
        """Each instrument's newest tick (those of `tokens`, or all), as `LatestTick`s."""
        if not self._mirror_ticks:
            self.follow()
        return self._mirror.latest_ticks(tokens)

    def recent_ticks(self, n: int = 12) -> list[RecentTick]:
        """The newest `n` ticks of the whole session, oldest first."""
        if not self._mirror_ticks:
            self.follow()
        return self._mirror.recent_ticks(n)

    def forming_candles(self, tokens: Iterable[int], interval: Interval, closes: int = 24
                        ) -> dict[int, FormingCandle]:
        """Per token, its forming candle of `interval` and its last `closes` closes."""
        if interval.minutes not in self._mirror_ivs:
            self.follow(interval)
        tokens = list(tokens)
        if closes > 0:
            self._want_backfill(tokens, interval)
        return self._mirror.forming_candles(tokens, interval, closes)

    def candles(self, token: int, interval: Interval, count: int = 120) -> list[Candle]:
        """The newest `count` candles of `token`, oldest first, the forming one last (a chart's
        data), over REST; asked at most once a second per (token, interval), as a chart
        redraws several times a second."""
        key = (token, interval.minutes, count)
        now = time.monotonic()
        hit = self._chart_cache.get(key)
        if hit is not None and now - hit[0] < CHART_REFRESH_S:
            return hit[1]
        inst = self.instruments.get(token)
        if inst is None:
            return []
        body = self._candles(f"{inst.exchange}:{inst.tradingsymbol}", interval.minutes, count,
                             True)
        got = [candle_from_obj(c) for c in body["candles"]]
        self._chart_cache = {key: (now, got)}  # one chart shows at a time
        return got

    def depth(self, token: int) -> Depth | None:
        """None: the API's ticks carry no market depth (the symbol view says it has none)."""
        return None

    def add_interval(self, interval: str | int | Interval) -> Interval:
        """An interval the server builds; another is refused (the server decides what it
        builds: `livecli serve -i 15min`)."""
        iv = parse_interval(interval)
        if iv not in self.intervals:
            built = ", ".join(i.name for i in self.intervals)
            raise e.UsageError(f"the served session builds {built}, not {iv.name}: add it where "
                               f"the server starts (`livecli serve -i {iv.name}`)")
        return iv

    def now(self) -> float:
        """The served session's clock, as its status and ticks last showed it."""
        return self._mirror.now()

    def live_status(self, symbols: bool = True) -> LiveStatus:
        """The served session's status, typed, as last pushed (asked for before the first push).

        While the server cannot be reached the state is `reconnecting`, with why."""
        raw = self.last_status
        if raw is not None and not self.connected.is_set() and self.connects:
            # Attached before, away now: what it last said, no request (a dashboard frame
            # must not wait on an unreachable host).
            st = LiveStatus.from_json_dict(raw if symbols else {**raw, "symbols": {}})
            why = self.last_error or "no answer"
            return dataclasses.replace(
                st, state="reconnecting",
                last_error=f"the server at {self.url} cannot be reached ({why})")
        if raw is None or not self.connected.is_set():
            raw = self.status()
        st = LiveStatus.from_json_dict(raw if symbols else {**raw, "symbols": {}})
        dropped = sum(fn() for fn in self._drop_counters)
        if dropped:
            st = dataclasses.replace(st, tick_lines_dropped=st.tick_lines_dropped + dropped)
        return st

    def _want_backfill(self, tokens: list[int], interval: Interval) -> None:
        new = [(interval.minutes, t) for t in tokens if (interval.minutes, t) not in self._backfilled]
        if not new:
            return
        with self._lock:
            for key in new:
                if key not in self._backfilled:
                    self._backfilled.add(key)
                    self._backfill.put(key)
            if self._backfiller is None:
                self._backfiller = threading.Thread(target=self._backfill_loop, daemon=True,
                                                    name="livecli-remote-backfill")
                self._backfiller.start()

    def _backfill_loop(self) -> None:
        """The closes before the mirror started, one request per instrument, off the reader's
        thread (a dashboard frame never waits for the server)."""
        while not self._closing.is_set():
            key = self._backfill.get()
            if key is None:
                return
            iv, tok = key
            inst = self._mirror.instruments.get(tok)
            if inst is None:
                continue
            try:
                body = self._candles(f"{inst.exchange}:{inst.tradingsymbol}", f"{iv}min",
                                     64, False)
                self._mirror.backfill(key, [(int(parse_instant(str(c["start"]))),
                                             float(c["close"])) for c in body["candles"]])
            except (e.LivecliError, KeyError, TypeError, ValueError) as exc:
                log.debug("backfill %s: %s", key, exc)

    # --- callbacks -----------------------------------------------------------------------------------
    def on_tick(self, symbol: str | None, fn: TickCallback) -> None:
        """Call `fn(tick_dict)` for every tick of `symbol` (None: every instrument)."""
        if symbol is None:
            key, ex, name = None, None, ALL
        else:
            self.token_of(symbol)  # unknown symbols fail here, as with LiveSession
            ex, _, sym = symbol.strip().upper().rpartition(":")
            key, ex, name = sym, ex or None, symbol.strip()
        with self._lock:
            self._tick_cbs.setdefault(key, []).append((ex, fn))
            self._want_ticks.add(name)
        self._send_subscription()
        self.attach()

    def on_candle_close(self, interval: str | int | Interval, fn: CandleCloseCallback) -> None:
        """Call `fn(instrument_token, candle)` whenever a candle of `interval` closes."""
        iv = parse_interval(interval)
        built = self.intervals
        if iv not in built:
            raise e.UsageError(f"{iv.name} candles are not built by the server (built: "
                               f"{', '.join(i.name for i in built)})")
        with self._lock:
            self._candle_cbs.setdefault(iv.minutes, []).append(fn)
            self._want_candles.setdefault(iv.name, set()).add(ALL)
        self._send_subscription()
        self.attach()

    def add_status_listener(self, fn: Callable[[LiveStatus], None]) -> None:
        """`fn(status)` (a `LiveStatus`) about once a second, as the server pushes it."""
        self._status_listeners.append(fn)

    def add_candle_listener(self, fn: Callable[[Candle], None]) -> None:
        """`fn(candle)` for every closed candle of every interval."""
        with self._lock:
            self._candle_listeners.append(fn)
            for iv in self.intervals:
                self._want_candles.setdefault(iv.name, set()).add(ALL)
        self._send_subscription()

    def add_tick_batch_listener(self, fn: Callable[[list[dict[str, Any]]], None]) -> None:
        """`fn(ticks)` with every batch of ticks as pushed: the API's tick objects (every
        instrument). The attached JSON lines are written from these."""
        with self._lock:
            self._batch_listeners.append(fn)
            self._want_ticks.add(ALL)
        self._send_subscription()

    def add_frame_listener(self, fn: Callable[[Any, float], None]) -> None:
        """`fn(ticks, 0.0)` with every pushed batch: a list of the API's tick objects, which
        stands where a local session hands a decoded frame (livecli.session.remote_lines reads
        it so). Strategy code wants `on_tick` or `add_tick_batch_listener`."""
        self.add_tick_batch_listener(lambda ticks: fn(ticks, 0.0))

    def add_drop_counter(self, fn: Callable[[], int]) -> None:
        """`fn()`: tick events an output shed so far; added to `tick_lines_dropped`."""
        self._drop_counters.append(fn)

    # --- the socket ----------------------------------------------------------------------------------
    def _actions(self) -> list[str]:
        with self._lock:
            out = [json.dumps({"action": "subscribe", "status": True})]
            if self._want_ticks:
                # One action per symbol: one that the new server lacks must not block the rest.
                out += [json.dumps({"action": "subscribe", "ticks": [s]})
                        for s in sorted(self._want_ticks)]
            for iv, syms in sorted(self._want_candles.items()):
                out += [json.dumps({"action": "subscribe", "candles": {iv: [s]}})
                        for s in sorted(syms)]
        return out

    def _send_subscription(self) -> None:
        ws = self._ws
        if ws is None:
            return  # sent on (re)connection
        try:
            for action in self._actions():
                ws.send(action)
        except Exception as exc:
            log.debug("subscribe: %s", exc)

    def _read_loop(self) -> None:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        delay = 0.2
        while not self._closing.is_set():
            try:
                with connect(self._ws_url, additional_headers=self._headers, open_timeout=10,
                             close_timeout=2, max_size=None, compression=None) as ws:
                    if self.connects and self._started is not None:
                        self._restart_streaming()
                    self._ws = ws
                    self.connects += 1
                    self.connected.set()
                    self._send_subscription()
                    delay = 0.2
                    for msg in ws:
                        self._handle(msg)
            except (OSError, WebSocketException, e.LivecliError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.debug("push socket: %s", self.last_error)
            finally:
                self._ws = None
                self.connected.clear()
            if self._closing.wait(delay):
                break
            delay = min(delay * 2, self.reconnect_max_delay_s)

    def _restart_streaming(self) -> None:
        """A new server: stream again what this client started, if it is not streaming it."""
        assert self._started is not None
        syms, exchange, mode = self._started
        try:
            self._call("POST", "/start", json=self._start_body(syms, exchange, mode))
        except e.LivecliError as exc:
            self.last_error = str(exc)
            log.warning("could not start %s again on the restarted server: %s",
                        ", ".join(syms), exc)

    def _handle(self, text: str | bytes) -> None:
        msg = json.loads(text)
        kind = msg.get("type")
        if kind == "ticks":
            if self._mirror_ticks:
                self._mirror.ticks(msg["data"])
            self._events.put((kind, msg["data"]))
        elif kind == "candles":
            if self._mirror_ivs:
                self._mirror.candles(msg["data"])
            self._events.put((kind, msg["data"]))
        elif kind == "status":
            self.last_status = msg
            self._mirror.status(msg)
            if msg.get("state") in ENDED_STATES and msg.get("started_at"):
                self._ended.set()
            elif msg.get("state") not in ENDED_STATES:
                self._ended.clear()
            if self._status_listeners:
                self._events.put(("status", msg))
        elif kind == "error":
            self.last_error = str(msg.get("message"))
            log.debug("server: %s", self.last_error)

    def _dispatch_loop(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            kind, data = item
            try:
                if kind == "ticks":
                    for lfn in list(self._batch_listeners):
                        self._run(lfn, data)
                    if self._tick_cbs:
                        for t in data:
                            self._tick(t)
                elif kind == "candles":
                    for obj in data:
                        if obj.get("closed"):
                            self._closed(candle_from_obj(obj))
                else:
                    st = LiveStatus.from_json_dict(data)
                    for fn in list(self._status_listeners):
                        self._run(fn, st)
            except Exception as exc:  # a malformed message must not end the callbacks
                self._record(exc)

    def _tick(self, t: dict[str, Any]) -> None:
        cbs = self._tick_cbs
        sym = str(t.get("symbol", "")).upper()
        fns = [fn for ex, fn in cbs.get(sym, ()) if ex is None or ex == t.get("exchange")]
        fns += [fn for _, fn in cbs.get(None, ())]
        if fns:
            tick = callback_tick(t)
            for fn in fns:
                self._run(fn, tick)

    def _closed(self, c: Candle) -> None:
        for listener in list(self._candle_listeners):
            self._run(listener, c)
        for fn in list(self._candle_cbs.get(c.interval_min, ())):
            self._run(fn, c.instrument_token, c)

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._record(exc)

    def _record(self, exc: BaseException) -> None:
        self.callback_errors += 1
        self.last_callback_error = f"{type(exc).__name__}: {exc}"
        if self.callback_errors == 1 or self.callback_errors % 100 == 0:
            log.warning("a callback raised (%d so far): %s", self.callback_errors,
                        self.last_callback_error)
