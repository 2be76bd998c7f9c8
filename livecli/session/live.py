"""`LiveSession`: connection -> decoder -> candle engine -> store, callbacks and dashboard.

The one object that both `livecli stream` and strategy code drive. Threads, and why:

* the reactor thread (kiteconnect's) receives frames; decoding and candle updates happen right
  there, under one lock, because they are cheap and must stay in order;
* a clock thread moves the feed's clock on while the feed is quiet (CANDLES.md rule 8) and
  publishes the status about once a second;
* a dispatch thread runs user callbacks (`on_tick`, `on_candle_close`) so that slow strategy code
  never stalls the receiving path; a callback that raises is counted and reported, nothing more;
* the store writer (its own thread) batches writes to SQLite off the tick path.

A session can stop and start again in the same process: the reactor is shared and never stopped.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livecli.core.candles import Candle
from livecli.core.engine import CandleEngine
from livecli.core.intervals import ONE_MINUTE, Interval, parse_interval
from livecli.core.timeutil import iso
from livecli.errors import SymbolError, TooManyInstrumentsError, UsageError
from livecli.kite.protocol import MAX_INSTRUMENTS, MODES
from livecli.session.source import Source, open_source

if TYPE_CHECKING:
    import pandas as pd

    from livecli.config import Settings
    from livecli.kite.instruments import Instrument

log = logging.getLogger("livecli.session")

RECENT_TICKS = 40
STATUS_EVERY_S = 1.0
CLOCK_EVERY_S = 0.25
# The feed counts as quiet after this long without a tick; only then does wall-clock time move
# its clock on (CANDLES.md rule 8). Sooner, and ticks already in flight would turn up late.
QUIET_S = 1.0

TickCallback = Callable[[dict[str, Any]], None]
CandleCloseCallback = Callable[[int, Candle], None]


class LiveSession:
    """A live market-data session with candles, callbacks, a store and a status.

    `source`: "auto" (Kite when credentials are configured, else the built-in stand-in),
    "kite" or "sim". `intervals`: candle intervals besides 1 minute (always built). `db`: the
    SQLite store (default from config; `False` for none). `config`: a config file path.
    """

    def __init__(
        self,
        source: str = "auto",
        intervals: Iterable[str | int | Interval] | None = None,
        db: str | Path | bool | None = None,
        config: str | Path | None = None,
        *,
        record: bool = False,
        speed: float | None = None,
        seed: int = 1,
        sim_date: str | None = None,
        settings: Settings | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        from livecli.config import load_settings

        self.settings = settings or load_settings(
            Path(config) if config else None, overrides=overrides or {}
        )
        self._source_kind = source
        if intervals is None:  # the config's [stream] intervals (default 1min)
            intervals = self.settings.stream.intervals
        self.intervals = tuple(sorted({parse_interval(i) for i in intervals} | {ONE_MINUTE}))
        sessions = self.settings.session_table()
        for iv in self.intervals:
            for ses in sessions.values():
                ses.check_interval(iv)
        # An explicit store must have its folder; the default one gets its folder made.
        self._db_default = not db
        if db is False:
            self.db_path: Path | None = None
        elif db:
            self.db_path = Path(db)
        else:
            self.db_path = Path(self.settings.store.path)
        self.record = record or bool(self.settings.store.record_ticks)
        self._speed = speed
        self._seed = seed
        self._sim_date = sim_date
        self._lock = threading.RLock()
        self._tick_cbs: dict[int | None, list[TickCallback]] = {}
        self._candle_cbs: dict[int, list[CandleCloseCallback]] = {}
        self._status_listeners: list[Callable[[dict[str, Any]], None]] = []
        self._candle_listeners: list[Callable[[Candle], None]] = []
        self._tick_listeners: list[Callable[[Any, float], None]] = []
        self._stop_lock = threading.Lock()
        self._reset()

    # --- lifecycle -------------------------------------------------------------------------
    def _reset(self) -> None:
        self.source: Source | None = None
        self._market_time: Callable[[], float] | None = None
        self._exchange_times = True
        self.engine: CandleEngine | None = None
        self.feed: Any = None
        self.writer: Any = None
        self.mode = "full"
        self.instruments: dict[int, Instrument] = {}
        self._by_symbol: dict[str, int] = {}
        self._latest: dict[int, tuple[Any, int]] = {}
        self._tick_count: dict[int, int] = {}
        self._last_tick_at: dict[int, float] = {}
        self._recent: deque[tuple[float, int, float, int | None]] = deque(maxlen=RECENT_TICKS)
        self._ticks_of_frame: tuple[Any, list[Any]] | None = None
        self._closed: list[Candle] = []
        self._feed_max = float("-inf")
        self._feed_max_wall = 0.0
        self._running = False
        self._stopping = threading.Event()
        self._tearing_down = False
        self._threads: list[threading.Thread] = []
        self._dispatch: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.callback_errors = 0
        self.last_callback_error: str | None = None
        self.started_at: float | None = None
        self.stopped_reason: str | None = None
        self.failure: BaseException | None = None
        self._done = threading.Event()

    def start(
        self, symbols: Iterable[str], exchange: str = "NSE", mode: str = "full"
    ) -> LiveSession:
        """Resolve symbols, connect, and start building candles. Returns self."""
        if self._running:
            raise UsageError("this session is already running: stop() it first")
        mode = (mode or "full").lower()
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}: use full, quote or ltp")
        symbols = [s for s in symbols if s.strip()]
        if not symbols:
            raise UsageError("no symbols given: name at least one, e.g. RELIANCE or NSE:INFY")
        if len(symbols) > MAX_INSTRUMENTS:
            raise TooManyInstrumentsError(
                f"{len(symbols)} instruments asked for; Kite allows at most {MAX_INSTRUMENTS} "
                "per api_key (3 connections of 3000): subscribe fewer"
            )
        self._reset()
        self.mode = mode
        if self.db_path is not None:
            from livecli.store.schema import check_writable

            check_writable(self.db_path, create_folder=self._db_default)
        source = open_source(self._source_kind, self.settings, speed=self._speed,
                             seed=self._seed, sim_date=self._sim_date)
        try:
            self._start(source, symbols, exchange, mode)
        except BaseException:
            self._teardown(clean=False)
            raise
        return self

    def _start(self, source: Source, symbols: list[str], exchange: str, mode: str) -> None:
        from livecli.kite.connection import KiteFeed
        from livecli.kite.instruments import InstrumentMaster

        self.source = source
        self._market_time = source.market_time
        self._exchange_times = mode == "full"
        master = InstrumentMaster(source.api_key, source.access_token, source.api_url,
                                  self.settings.cache_dir)
        resolved = master.resolve(symbols, default_exchange=exchange)
        st = self.settings.stream
        self.engine = CandleEngine(
            self.intervals, grace_s=st.grace_s, history=st.history, fill_gaps=st.fill_gaps,
            sessions=self.settings.session_table(),
            # The guard's clock (CANDLES.md rule 8): the simulated market's, else the wall clock.
            now=source.market_time if source.market_time is not None else time.time,
        )
        for inst in resolved:
            self._add_instrument(inst)
        self.engine.on_close(self._on_candle_closed)
        if self.db_path is not None:
            from livecli.store.writer import StoreWriter

            self.writer = StoreWriter(self.db_path, create_folder=self._db_default,
                                      source=source.name)
            self.writer.register_instruments(self._names())
        self.feed = KiteFeed(
            source.api_key, source.access_token, source.ws_url, self._on_frame,
            on_text=self._on_text, on_state=self._on_state,
            watchdog_s=st.watchdog_s, reconnect_max_delay_s=st.reconnect_max_delay_s,
        )
        if len(resolved) > self.feed.max_instruments:
            raise TooManyInstrumentsError(
                f"{len(resolved)} instruments; Kite allows at most {self.feed.max_instruments}"
            )
        self.started_at = time.time()
        self._running = True
        if self.writer is not None:
            self.writer.begin_session(self._session_info())
        self._spawn(self._clock_loop, "livecli-clock", self._stopping)
        self._spawn(self._dispatch_loop, "livecli-callbacks", self._dispatch, self._stopping)
        self.feed.start({tok: mode for tok in self.instruments})

    def _spawn(self, fn: Callable[..., None], name: str, *args: Any) -> None:
        # Each thread gets its own queue and stop event: one that outlives stop() (a slow
        # callback) can never serve the next session's queue.
        t = threading.Thread(target=fn, name=name, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, reason: str | None = None) -> None:
        """Stop cleanly: close the feed, close or store every candle, flush the store.

        Safe from any thread, a callback included, and safe to call twice.
        """
        if not self._running:
            return
        feed = self.feed
        if self.failure is None and feed is not None and feed.failed is not None:
            self.failure = feed.failed  # the feed died before anyone waited on it
            self.stopped_reason = str(feed.failed)
        self.stopped_reason = reason or self.stopped_reason or "stopped"
        self._teardown(clean=self.failure is None)

    def _teardown(self, clean: bool) -> None:
        with self._stop_lock:  # stop() and wait()'s failure path may race: one tears down
            if self._tearing_down:
                return
            self._tearing_down = True
        self._running = False
        try:
            if self.feed is not None:
                try:
                    self.feed.stop()
                except Exception as exc:  # stopping must finish whatever the feed does
                    log.debug("feed stop: %s", exc)
            with self._lock:
                forming = []
                engine = self.engine
                if engine is not None:
                    # No tick can come any more, so a candle whose end the feed's clock has
                    # passed (it was only waiting out the grace) is complete: close it now, or
                    # it would be lost, since only the newest minute counts as forming.
                    if engine.clock > float("-inf"):
                        engine.advance(engine.clock + engine.grace_s)
                        self._flush_closed()
                    forming = engine.forming_all()
            # Set only now: the callback thread drains what the closes above queued first.
            self._stopping.set()
            me = threading.current_thread()
            for t in self._threads:
                if t is not me:  # stop() called from a callback runs on one of these
                    t.join(timeout=5)
            if self.writer is not None:
                self.writer.put_candles(forming)
                self.writer.put_status(self.status())
                state = "stopped" if clean else "failed"
                self.writer.end_session(state=state, clean=clean)
                if not self.writer.stop() and self.failure is None:
                    from livecli.errors import StoreError

                    self.failure = StoreError(
                        f"the store {self.db_path} could not be written at shutdown "
                        f"({self.writer.error or 'timed out'}): the last candles may be missing"
                    )
                    self.stopped_reason = str(self.failure)
        finally:
            if self.source is not None:
                self.source.close()
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the session ends (stop() or a fatal feed error); True if it ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._done.is_set():
                return True
            feed, writer = self.feed, self.writer
            # A dead feed, or a store that cannot be written (the writer gave up), ends it.
            failed = (feed.failed if feed is not None else None) or (
                writer.failure if writer is not None else None)
            if failed is not None and self._running:
                self.failure = failed
                self.stopped_reason = str(failed)
                self._teardown(clean=False)
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._done.wait(0.1 if left is None else min(0.1, left))

    @property
    def running(self) -> bool:
        return self._running

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- instruments -----------------------------------------------------------------------
    def _add_instrument(self, inst: Instrument) -> None:
        tok = inst.instrument_token
        self.instruments[tok] = inst
        self._by_symbol[inst.tradingsymbol.upper()] = tok
        self._by_symbol[f"{inst.exchange}:{inst.tradingsymbol}".upper()] = tok
        self.engine.register(tok, inst.tradingsymbol, inst.exchange)

    def _names(self) -> dict[int, tuple[str, str]]:
        return {t: (i.tradingsymbol, i.exchange) for t, i in self.instruments.items()}

    def token_of(self, symbol: str) -> int:
        tok = self._by_symbol.get(symbol.strip().upper())
        if tok is None:
            held = ", ".join(sorted(i.tradingsymbol for i in self.instruments.values()))
            raise SymbolError(f"{symbol} is not subscribed in this session (it has {held})")
        return tok

    def subscribe_symbol(self, symbol: str, exchange: str = "NSE") -> int:
        """Add an instrument to the running session (in the session's mode)."""
        from livecli.kite.instruments import InstrumentMaster

        src = self._require_running()
        master = InstrumentMaster(src.api_key, src.access_token, src.api_url,
                                  self.settings.cache_dir)
        inst = master.resolve([symbol], default_exchange=exchange)[0]
        with self._lock:
            self._add_instrument(inst)
        if self.writer is not None:
            self.writer.register_instruments(self._names())
        self.feed.subscribe([inst.instrument_token], self.mode)
        return inst.instrument_token

    def unsubscribe_symbol(self, symbol: str) -> None:
        self._require_running()
        tok = self.token_of(symbol)
        self.feed.unsubscribe([tok])
        with self._lock:
            inst = self.instruments.pop(tok)
            self._by_symbol.pop(inst.tradingsymbol.upper(), None)
            self._by_symbol.pop(f"{inst.exchange}:{inst.tradingsymbol}".upper(), None)

    def _require_running(self) -> Source:
        if not self._running or self.source is None:
            raise UsageError("the session is not running: call start() first")
        return self.source

    # --- the receiving path (reactor thread) -----------------------------------------------
    def _on_frame(self, frame: Any, received_at: float) -> None:
        n = len(frame)
        if not n:
            return
        if self._market_time is not None and not self._exchange_times:
            # ltp and quote packets carry no time: in a simulated market "received now" means
            # the market's now, not the wall clock's (the stand-in runs its own session clock).
            frame.received_at = self._market_time()
        cols = frame.columns()
        tokens = cols.token
        with self._lock:
            self.engine.update_columns(cols)
            self._flush_closed()
            times = cols.time
            tmax = self.engine.tick_clock  # not max(times): a tick from the future is not one
            if tmax > self._feed_max:
                self._feed_max = tmax
            self._feed_max_wall = received_at
            latest = self._latest
            counts = self._tick_count
            seen = self._last_tick_at
            for i, tok in enumerate(tokens):
                latest[tok] = (frame, i)
                counts[tok] = counts.get(tok, 0) + 1
                seen[tok] = received_at
            prices = cols.price
            vols = cols.volume
            for i in range(max(0, n - RECENT_TICKS), n):  # the panel shows only the newest
                v = vols[i]
                self._recent.append((times[i], tokens[i], prices[i], None if v < 0 else v))
        if self.record and self.writer is not None:
            self.writer.put_ticks(list(zip(
                tokens, cols.time, cols.price,
                [None if v < 0 else v for v in cols.volume],
                [None if o < 0 else o for o in cols.oi],
                [None if h != h else h for h in cols.day_high],
                [None if lo != lo else lo for lo in cols.day_low],
                [received_at] * n, strict=True,
            )))
        for fn in self._tick_listeners:
            fn(frame, received_at)
        if self._tick_cbs:
            wanted = self._tick_cbs
            for i, tok in enumerate(tokens):
                if tok in wanted or None in wanted:
                    self._dispatch.put(("tick", tok, frame, i))

    def _on_text(self, message: Any) -> None:
        if message.type == "error":
            log.warning("Kite says: %s", message.data)

    def _on_state(self, status: Any) -> None:
        if status.state == "reconnecting" and self.engine is not None:
            with self._lock:
                self.engine.mark_disconnect()

    def _on_candle_closed(self, c: Candle) -> None:
        # Called by the engine under self._lock, on the receiving or the clock thread. At a
        # minute's end thousands close at once: they reach the writer in one batch (_flush_closed).
        self._closed.append(c)
        for fn in self._candle_listeners:
            fn(c)
        if c.interval_min in self._candle_cbs:
            self._dispatch.put(("candle", c.interval_min, c))

    def _flush_closed(self) -> None:
        """Hand the candles closed by the last engine call to the store (under self._lock)."""
        if self._closed:
            if self.writer is not None:
                self.writer.put_candles(self._closed)
            self._closed = []

    # --- background threads ----------------------------------------------------------------
    def _clock_loop(self, stopping: threading.Event) -> None:
        next_status = 0.0
        rate = self.source.clock_rate if self.source else 1.0
        while not stopping.wait(CLOCK_EVERY_S):
            now = time.time()
            with self._lock:
                quiet = now - self._feed_max_wall
                if self._feed_max > float("-inf") and quiet >= QUIET_S:
                    self.engine.advance(self._feed_max + quiet * rate)
                    self._flush_closed()
                due = now >= next_status
            status = self._status(self._status_parts()) if due else None
            if status is not None:
                next_status = now + STATUS_EVERY_S
                if self.writer is not None:
                    self.writer.put_status(status)
                for fn in self._status_listeners:
                    try:
                        fn(status)
                    except Exception as exc:  # a broken listener must not stop the clock
                        log.debug("status listener: %s", exc)

    def _dispatch_loop(self, items: queue.SimpleQueue, stopping: threading.Event) -> None:
        while True:
            try:
                item = items.get(timeout=0.2)
            except queue.Empty:
                if stopping.is_set():
                    return
                continue
            if item is None:
                return
            try:
                if item[0] == "tick":
                    _, tok, frame, i = item
                    tick = self._tick_dict(tok, frame, i)
                    for fn in self._tick_cbs.get(tok, []) + self._tick_cbs.get(None, []):
                        self._call(fn, tick)
                else:
                    _, minutes, c = item
                    for fn in self._candle_cbs.get(minutes, []):
                        self._call(fn, c.instrument_token, c)
            except Exception as exc:  # never let the dispatcher die
                self._record_callback_error(exc)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._record_callback_error(exc)

    def _record_callback_error(self, exc: BaseException) -> None:
        self.callback_errors += 1
        self.last_callback_error = f"{type(exc).__name__}: {exc}"
        if self.callback_errors == 1 or self.callback_errors % 100 == 0:
            log.warning("a callback raised (%d so far): %s", self.callback_errors,
                        self.last_callback_error)

    # --- callbacks -------------------------------------------------------------------------
    def on_tick(self, symbol: str | None, fn: TickCallback) -> None:
        """Call `fn(tick_dict)` for every tick of `symbol` (None: every instrument)."""
        if symbol is None:
            self._tick_cbs.setdefault(None, []).append(fn)
            return
        self._tick_cbs.setdefault(self.token_of(symbol), []).append(fn)

    def on_candle_close(self, interval: str | int | Interval, fn: CandleCloseCallback) -> None:
        """Call `fn(instrument_token, candle)` whenever a candle of `interval` closes."""
        iv = parse_interval(interval)
        if iv not in self.intervals:
            raise UsageError(
                f"{iv.name} candles are not built in this session: add it to intervals "
                f"(built: {', '.join(i.name for i in self.intervals)})"
            )
        self._candle_cbs.setdefault(iv.minutes, []).append(fn)

    def add_status_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """`fn(status)` about once a second, on the clock thread (the CLI's JSON lines)."""
        self._status_listeners.append(fn)

    def add_candle_listener(self, fn: Callable[[Candle], None]) -> None:
        """`fn(candle)` for every closed candle, on the receiving path: keep it O(1)."""
        self._candle_listeners.append(fn)

    def add_frame_listener(self, fn: Callable[[Any, float], None]) -> None:
        """`fn(frame, received_at)` for every decoded frame, on the receiving path."""
        self._tick_listeners.append(fn)

    # --- reading ---------------------------------------------------------------------------
    def _tick_dict(self, tok: int, frame: Any, i: int) -> dict[str, Any]:
        inst = self.instruments.get(tok)
        cached = self._ticks_of_frame
        if cached is None or cached[0] is not frame:
            # Callbacks usually want several ticks of one frame: decode its rows once.
            cached = self._ticks_of_frame = (frame, frame.ticks())
        t = cached[1][i]
        return {
            "symbol": inst.tradingsymbol if inst else str(tok),
            "exchange": inst.exchange if inst else "",
            "instrument_token": tok,
            "last_price": t.last_price,
            "volume_traded": t.volume_traded,
            "oi": t.oi,
            "day_high": t.day_high,
            "day_low": t.day_low,
            "day_open": t.day_open,
            "prev_close": t.prev_close,
            "change_pct": t.change_pct,
            "exchange_timestamp": iso(t.exchange_timestamp) if t.exchange_timestamp else None,
            "time": iso(t.time),
            "mode": t.mode,
        }

    def get_latest_tick(self, symbol: str) -> dict[str, Any] | None:
        tok = self.token_of(symbol)
        with self._lock:
            hit = self._latest.get(tok)
        return None if hit is None else self._tick_dict(tok, *hit)

    def get_current_candle(self, symbol: str, interval: str | int = "1min") -> dict[str, Any] | None:
        tok = self.token_of(symbol)
        with self._lock:
            c = self.engine.forming(tok, interval) if self.engine else None
        return None if c is None else c.to_dict()

    def get_candles(
        self, symbol: str, interval: str | int = "5min", count: int = 100,
        include_current: bool = False,
    ) -> pd.DataFrame:
        """The newest `count` candles (closed; plus the forming one if asked) as a DataFrame."""
        import pandas as pd

        from livecli.core.candles import CANDLE_COLUMNS

        tok = self.token_of(symbol)
        iv = parse_interval(interval)
        if iv not in self.intervals:
            raise UsageError(f"{iv.name} candles are not built in this session")
        with self._lock:
            rows = self.engine.history(tok, iv)
            forming = self.engine.forming(tok, iv) if include_current else None
        if forming is not None:
            rows = [*rows, forming]
        rows = rows[-count:] if count > 0 else []
        df = pd.DataFrame([c.to_dict() for c in rows], columns=[*CANDLE_COLUMNS, "closed"])
        df["start"] = pd.to_datetime(df["start"], format="ISO8601")
        return df

    def forming_with_closes(
        self, tokens: list[int], interval: Interval, closes: int
    ) -> tuple[float, dict[int, tuple[Candle | None, list[float]]]]:
        """The feed's clock and, per token, its forming candle and last `closes` closes.

        One lock for all tokens (the dashboard asks once per frame, never per row).
        """
        engine = self.engine
        if engine is None:
            return float("-inf"), {}
        out: dict[int, tuple[Candle | None, list[float]]] = {}
        with self._lock:
            for tok in tokens:
                ring = engine.history_ring(tok, interval)
                out[tok] = (engine.forming(tok, interval),
                            ring.closes(closes) if ring is not None else [])
            return engine.clock, out

    def status(self) -> dict[str, Any]:
        return self._status(self._status_parts())

    def _status_parts(self) -> dict[str, Any]:
        """What the status needs from the receiving path's state: plain copies, under the lock.

        The lock is held only for these copies (microseconds even with 9000 instruments); the
        status itself, with its per-symbol strings, is built after, so a status or dashboard
        frame never stalls the ticks.
        """
        with self._lock:
            ec = self.engine.counters if self.engine is not None else None
            return {
                "instruments": dict(self.instruments),
                "latest": dict(self._latest),
                "counts": dict(self._tick_count),
                "seen": dict(self._last_tick_at),
                "late": ec.late if ec else 0,
                "bad": ec.bad if ec else 0,
                "engine_callback_errors": ec.callback_errors if ec else 0,
                "clock": self.engine.clock if self.engine is not None else 0.0,
            }

    def _status(self, parts: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        feed = self.feed.status() if self.feed is not None else None
        latest, counts, seen = parts["latest"], parts["counts"], parts["seen"]
        symbols = {}
        shown: dict[float, str] = {}  # one frame's ticks share a receive time: format it once
        for tok, inst in parts["instruments"].items():
            hit = latest.get(tok)
            price = float(hit[0].last_price[hit[1]]) if hit else None
            at = seen.get(tok)
            if at:
                text = shown.get(at)
                if text is None:
                    text = shown[at] = iso(at)
            symbols[inst.tradingsymbol] = {
                "instrument_token": tok, "exchange": inst.exchange, "last_price": price,
                "last_tick_at": text if at else None,
                "last_tick_age_s": round(now - at, 3) if at else None,
                "ticks": counts.get(tok, 0),
            }
        state = feed.state if feed is not None else "idle"
        if not self._running and self._done.is_set():
            state = "stopped" if self.failure is None else feed.state if feed else "failed"
        clock = parts["clock"]
        return {
            "pid": os.getpid(),
            "source": self.source.name if self.source else None,
            "state": state,
            "mode": self.mode,
            "intervals": [i.name for i in self.intervals],
            "started_at": iso(self.started_at) if self.started_at else None,
            "uptime_s": round(now - self.started_at, 1) if self.started_at else 0.0,
            "reconnects": feed.reconnects if feed else 0,
            "retry_in_s": feed.retry_in_s if feed else None,
            "last_error": (feed.last_error if feed else None) or self.stopped_reason_if_failed(),
            "last_message_age_s": feed.last_message_age_s if feed else None,
            "ticks_per_s": round(feed.ticks_per_s, 1) if feed else 0.0,
            "ticks": feed.ticks if feed else 0,
            "frames": feed.frames if feed else 0,
            "malformed_frames": feed.malformed if feed else 0,
            "handler_errors": feed.handler_errors if feed else 0,
            "candles_stored": self.writer.candles_stored if self.writer is not None else 0,
            "store_error": getattr(self.writer, "error", None) if self.writer is not None else None,
            "late_ticks": parts["late"],
            "bad_ticks": parts["bad"],
            "callback_errors": self.callback_errors + parts["engine_callback_errors"],
            "feed_clock": iso(clock) if clock > 0 else None,
            "db": str(self.db_path) if self.db_path else None,
            "symbols": symbols,
        }

    def stopped_reason_if_failed(self) -> str | None:
        return str(self.failure) if self.failure is not None else None

    def _session_info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "source": self.source.name if self.source else None,
            "mode": self.mode,
            "intervals": [i.name for i in self.intervals],
            "symbols": [i.tradingsymbol for i in self.instruments.values()],
            "started_at": self.started_at,
        }

    # For the dashboard: a consistent view under the lock.
    def view(self) -> dict[str, Any]:
        with self._lock:
            parts = self._status_parts()
            recent = list(self._recent)
        return {
            "status": self._status(parts),
            "recent": recent,
            "latest": parts["latest"],
            "counts": parts["counts"],
            "seen": parts["seen"],
        }
