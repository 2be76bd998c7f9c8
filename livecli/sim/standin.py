"""`StandIn`: the local Kite (ticker + REST) in one object that tests and `livecli sim` drive.

Both servers run on ONE background daemon thread with its own asyncio event loop, so a test
can start a stand-in, point the real kiteconnect client (or livecli) at `ws_url`/`api_url`, and
break things on purpose from its own thread: drop every connection, go silent with TCP open,
refuse credentials, send a malformed frame, push text messages, now or on a timetable
(`schedule_faults`, what `livecli sim --fault` uses). Waiting is by condition variable
(`wait_for_subscription`, `wait_for_clients`), never by sleeping. A background thread generates
the market ahead of its clock (livecli.sim.warmup).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from livecli.errors import UsageError
from livecli.kite.protocol import MAX_PER_CONNECTION
from livecli.sim.api_server import HISTORY_DELAY_S, ApiHandlers, ApiServer, HistoryLog
from livecli.sim.clock import SimClock, parse_sim_date, parse_start
from livecli.sim.faults import Fault, FaultSchedule
from livecli.sim.market import Market
from livecli.sim.state import SimState
from livecli.sim.ticker_server import TickerServer, abort_all, broadcast_text
from livecli.sim.universe import Instrument, builtin_universe, synthetic_universe
from livecli.sim.warmup import Warmup


class StandIn:
    """A local Kite: `start()`, use `ws_url` / `api_url`, `stop()` (or use it as a context manager).

    `seed` fixes the market; `speed` is simulated seconds per real second; `date` the simulated
    trading day (YYYY-MM-DD or a date; default today, or Friday on a weekend), starting at
    `start_time` (default the 09:15 open). `extra_instruments` adds that many synthetic NSE
    equities for load tests. `history_rate_limit` (e.g. HISTORICAL_REQUESTS_PER_S, Kite's own)
    makes the historical endpoint answer HTTP 429 beyond that many requests a second, as Kite
    does; off by default. `history_delay_s`: simulated seconds after a minute closes before
    its candle is served (Kite's lag). `history_log` and `diverge_history` are for tests.
    """

    def __init__(
        self,
        api_key: str = "livecli-sim",
        access_token: str = "sim-access-token",
        api_secret: str = "sim-secret",
        seed: int = 1,
        speed: float = 1.0,
        date: str | date | None = None,
        host: str = "127.0.0.1",
        ws_port: int = 0,
        api_port: int = 0,
        heartbeat_s: float = 1.0,
        extra_instruments: int = 0,
        start_time: str | None = None,
        cycle_s: float = 0.25,
        history_days: int = 30,
        max_tokens_per_connection: int = MAX_PER_CONNECTION,
        history_rate_limit: float | None = None,
        history_delay_s: float = HISTORY_DELAY_S,
    ) -> None:
        if not (isinstance(speed, int | float) and math.isfinite(speed) and speed > 0):
            raise UsageError(f"invalid speed {speed!r}: use a number above 0, e.g. 1 or 60")
        if extra_instruments < 0:
            raise UsageError("extra_instruments must be 0 or more")
        self.sim_date, self.date_note = parse_sim_date(date)
        self.start_time = parse_start(start_time)
        self.speed = float(speed)
        self.seed = int(seed)
        self.host = host
        self._ws_port_req = ws_port
        self._api_port_req = api_port
        self.heartbeat_s = heartbeat_s
        self.cycle_s = cycle_s
        self.instruments: list[Instrument] = builtin_universe(self.sim_date)
        if extra_instruments:
            self.instruments += synthetic_universe(extra_instruments, seed=self.seed)
        self.market = Market(self.instruments, seed=self.seed)
        self.state = SimState(api_key, access_token, api_secret)
        self.clock: SimClock | None = None
        self._history_days = history_days
        self._history_rate_limit = history_rate_limit
        self._history_delay_s = history_delay_s
        self._max_tokens = max_tokens_per_connection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._ticker: TickerServer | None = None
        self._api: ApiServer | None = None
        self._warmup: Warmup | None = None
        self._schedules: list[FaultSchedule] = []
        self.handlers: ApiHandlers | None = None
        self.ws_port = 0
        self.api_port = 0
        self._by_symbol = {(i.exchange, i.tradingsymbol): i for i in self.instruments}

    # --- credentials ----------------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self.state.api_key

    @property
    def access_token(self) -> str:
        return self.state.access_token

    @property
    def api_secret(self) -> str:
        return self.state.api_secret

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> StandIn:
        """Start both servers on a background thread; return once both are listening."""
        if self._thread is not None:
            return self
        self.clock = SimClock(self.sim_date, self.speed, self.start_time)
        self._warmup = Warmup(self.market, self.clock).start()
        self._ready.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name="livecli-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the stand-in did not start within 30 s")
        if self._start_error is not None:
            self._thread.join(5)
            self._thread = None
            self._warmup.stop()
            err = self._start_error
            if isinstance(err, OSError):
                raise UsageError(
                    f"cannot listen on {self.host} (ticker port {self._ws_port_req}, API port "
                    f"{self._api_port_req}): {err.strerror or err}; choose free ports or 0 for any"
                ) from None
            raise err
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:
            self._start_error = exc
            loop.run_until_complete(self._shutdown())
            loop.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _startup(self) -> None:
        assert self.clock is not None
        self._ticker = TickerServer(self.market, self.clock, self.state, self.host,
                                    self._ws_port_req, self.heartbeat_s, self.cycle_s,
                                    self._max_tokens)
        self.handlers = ApiHandlers(self.market, self.clock, self.state, self._history_days,
                                    self._history_rate_limit, self._history_delay_s)
        self._api = ApiServer(self.handlers, self.host, self._api_port_req)
        assert self._warmup is not None
        self._warmup.demand = self._ticker.demand  # generate ahead of the links, not the clock
        self.ws_port = await self._ticker.start()
        self.api_port = await self._api.start()

    async def _shutdown(self) -> None:
        for srv in (self._ticker, self._api):
            if srv is not None:
                await srv.stop()

    def stop(self) -> None:
        """Stop both servers and join the thread. Safe to call twice."""
        t, loop = self._thread, self._loop
        if t is None or loop is None:
            return
        for sched in self._schedules:
            sched.stop()
        self._schedules.clear()
        if self._warmup is not None:
            self._warmup.stop()
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        t.join(15)
        self._thread = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run `fn` (a coroutine factory or plain callable) on the loop thread and wait."""
        if self._loop is None or not self.running:
            raise RuntimeError("the stand-in is not running: call start() first")

        async def run() -> Any:
            r = fn()
            return await r if asyncio.iscoroutine(r) else r

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    # --- the market -----------------------------------------------------------------------------
    def now(self) -> float:
        """Simulated epoch seconds."""
        if self.clock is None:
            return SimClock(self.sim_date, self.speed, self.start_time).start_epoch
        return self.clock.now()

    def instrument(self, symbol: str, exchange: str = "NSE") -> Instrument:
        """An instrument by trading symbol (e.g. "RELIANCE", "NIFTY 50")."""
        try:
            return self._by_symbol[(exchange.upper(), symbol.upper())]
        except KeyError:
            raise KeyError(f"{exchange}:{symbol} is not in the stand-in's universe") from None

    def token(self, symbol: str, exchange: str = "NSE") -> int:
        return self.instrument(symbol, exchange).instrument_token

    def names(self) -> dict[int, tuple[str, str]]:
        """{token: (tradingsymbol, exchange)} for every instrument: the candle engine's registry."""
        return {i.instrument_token: (i.tradingsymbol, i.exchange) for i in self.instruments}

    # --- observing clients ----------------------------------------------------------------------
    def clients(self) -> list[dict[str, Any]]:
        """Connected ticker clients: id, remote, api_key, tokens {token: mode}, counters."""
        return self.state.clients()

    @property
    def connections_accepted(self) -> int:
        """Ticker connections accepted since start (reconnects count again)."""
        return self.state.total_connections

    @property
    def upgrades_rejected(self) -> int:
        return self.state.rejected_upgrades

    def wait_for_clients(self, n: int, timeout: float = 5.0, *, exact: bool = False) -> bool:
        """Wait until at least (or, with exact, exactly) `n` ticker clients are connected."""
        return self.state.wait_for(
            lambda: (len(self.state.conns) == n) if exact else (len(self.state.conns) >= n), timeout)

    def wait_for_connections(self, total: int, timeout: float = 5.0) -> bool:
        """Wait until `total` connections have been accepted since start (counts reconnects)."""
        return self.state.wait_for(lambda: self.state.total_connections >= total, timeout)

    def wait_for_subscription(self, tokens: Iterable[int], mode: str | None = None,
                              timeout: float = 5.0) -> bool:
        """Wait until one connected client is subscribed to all `tokens` (in `mode` if given)."""
        want = list(tokens)

        def ok() -> bool:
            for c in self.state.conns.values():
                if all(t in c.tokens and (mode is None or c.tokens[t] == mode) for t in want):
                    return True
            return False

        return self.state.wait_for(ok, timeout)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until `predicate()` holds; it is re-checked whenever a client or subscription changes."""
        return self.state.wait_for(predicate, timeout)

    # --- the historical API, for tests ---------------------------------------------------------
    @property
    def history_log(self) -> HistoryLog:
        """Every historical request the API answered: when (monotonic) and with what status."""
        assert self.handlers is not None, "start() the stand-in first"
        return self.handlers.history_log

    def diverge_history(self, *, shifted: dict[tuple[int, int], int] | None = None,
                        missing: Iterable[tuple[int, int]] = ()) -> None:
        """Make the served minute candles differ from the ticks: `shifted` {(token, minute
        start): volume moved to the next minute}, `missing` minutes left out. Replaces any
        earlier divergence; no arguments: history agrees with the ticks again."""
        assert self.handlers is not None, "start() the stand-in first"
        d = self.handlers.divergence
        d.shifted = dict(shifted or {})
        d.missing = set(missing)

    # --- faults ---------------------------------------------------------------------------------
    def drop_connections(self, keep_down_s: float | None = None) -> int:
        """Abort the TCP connection of every ticker client (no close frame). Returns how many.

        With `keep_down_s`, every connection opened in that many seconds after is cut as soon
        as it opens too: an outage rather than a blip.
        """
        assert self._ticker is not None
        ticker = self._ticker
        with self.state.cond:
            self.state.drop_until = 0.0 if keep_down_s is None else time.monotonic() + keep_down_s
        return int(self._call(lambda: abort_all(ticker)))

    def go_silent(self, seconds: float | None = None) -> None:
        """Send nothing at all (no frames, no heartbeats) for `seconds`, or until `resume()`."""
        with self.state.cond:
            self.state.silent_until = math.inf if seconds is None else time.monotonic() + seconds

    def resume(self) -> None:
        with self.state.cond:
            self.state.silent_until = 0.0

    def reject_auth(self, flag: bool = True) -> None:
        """While set, ticker upgrades get HTTP 403 and authenticated REST calls TokenException."""
        with self.state.cond:
            self.state.reject_auth = bool(flag)

    def send_malformed_frame(self) -> int:
        """Make the next binary frame to each connected client malformed (cut short)."""
        with self.state.cond:
            for c in self.state.conns.values():
                c.malformed_pending = True
            return len(self.state.conns)

    def malform_frames(self, seconds: float) -> None:
        """Cut every binary frame to every client short for `seconds` (heartbeats stay whole)."""
        with self.state.cond:
            self.state.malformed_until = time.monotonic() + seconds

    def schedule_faults(self, faults: Iterable[Fault],
                        report: Callable[[str], None] | None = None) -> FaultSchedule:
        """Apply `faults` at their times (real seconds from now) on a background thread.

        `report(line)` hears what each step did. The schedule ends with `stop()` of the stand-in.
        Parse `KIND@SECONDS[+DURATION]` texts with `livecli.sim.faults.parse_fault`.
        """
        sched = FaultSchedule(self, faults, report)
        self._schedules.append(sched)
        return sched

    def send_text(self, kind: str, data: Any) -> int:
        """Send `{"type": kind, "data": data}` as a text message to every client."""
        assert self._ticker is not None
        ticker = self._ticker
        payload = json.dumps({"type": kind, "data": data})
        return int(self._call(lambda: broadcast_text(ticker, payload)))
