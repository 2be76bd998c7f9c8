"""`LiveSession`: the one object both `livecli stream` and strategy code drive.

A thin façade. What it keeps across runs is what the user gave it: the settings, the intervals,
the store's path, the callbacks and the output listeners. Each `start()` makes a `Run`
(livecli/session/run.py) holding every moving part, none of them None; `stop()` ends it. The
parts, and their threads:

* the receiving path (`receiver.py`), on kiteconnect's reactor thread: decode, candles, store;
* the clock thread (`clock_thread.py`): candles close on time while the feed is quiet, and the
  status is published about once a second; whose time that is, is the run's `Clock`
  (`clock.py`): the wall's for Kite, the simulated market's for the stand-in;
* the callback dispatcher (`dispatch.py`): user callbacks off the receiving path; one that
  raises is counted and reported, nothing more;
* the store writer (its own thread) batches writes to SQLite off the tick path.

What may be read of a running session is typed: `live_status()` (`LiveStatus`, made in
`status.py`), `latest_ticks()`, `recent_ticks()` and `forming_candles()` (`view.py`).
A session can stop and start again in the same process: the reactor is shared, never stopped.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from livecli.config.schema import KERNEL_MIN_INSTRUMENTS
from livecli.core.intervals import ONE_MINUTE, Interval, parse_interval
from livecli.core.status import LiveStatus
from livecli.errors import SymbolError, TooManyInstrumentsError, UsageError
from livecli.kite.protocol import MAX_INSTRUMENTS
from livecli.session.dispatch import Callbacks, CandleCloseCallback, TickCallback
from livecli.session.receiver import Listeners
from livecli.session.run import Run, require_mode
from livecli.session.view import Depth, FormingCandle, LatestTick, RecentTick

if TYPE_CHECKING:
    import pandas as pd

    from livecli.config import Settings
    from livecli.core.candles import Candle
    from livecli.core.closed import ClosedCandles
    from livecli.core.status import PublishStatus
    from livecli.kite.instruments import Instrument
    from livecli.session.publish import Publication
    from livecli.session.source import Source


class LiveSession:
    """A live market-data session with candles, callbacks, a store and a status.

    `source`: "auto" (Kite when credentials are configured, else the built-in stand-in),
    "kite" or "sim"; a URL ("http://127.0.0.1:8000") attaches to a served session instead
    (see `attach`). `intervals`: candle intervals besides 1 minute (always built). `db`: the
    SQLite store (default from config; `False` for none). `config`: a config file path.
    """

    def __new__(cls, source: str = "auto", *args: Any, **kwargs: Any) -> LiveSession:
        # LiveSession(source="http://127.0.0.1:8000"): the served session's client instead.
        from livecli.session.attach import is_url

        if is_url(source):
            return cls.attach(source, *args, **kwargs)
        return super().__new__(cls)

    @staticmethod
    def attach(url: str, *args: Any, **options: Any) -> Any:
        """A session served by another process (`livecli serve` at "http://HOST:PORT"), with
        this class's surface: `get_candles`, `on_candle_close`, `status`, `subscribe_symbol`...
        over its API, callbacks fed by its WebSocket, reconnecting when the server restarts.
        Options: `api_key`, `timeout`, `reconnect_max_delay_s` (livecli.session.remote).

        "nats://HOST:4222": a feed published with `--publish` (livecli.session.attach_nats),
        started unless `start=False`: SYMBOLs to follow (positional or `symbols=`; none: all),
        `durable="NAME"` (a named consumer that resumes where it stopped), `stream`,
        `credentials`, `history`, `db`."""
        from livecli.session.attach import NATS_SCHEMES, attach, scheme_of

        if scheme_of(url) in NATS_SCHEMES:
            start = options.pop("start", True)
            symbols = tuple(args[0]) if args else tuple(options.pop("symbols", ()))
            session = attach(url, symbols=symbols, **options)
            return session.start() if start else session
        if args or set(options) - {"api_key", "timeout", "reconnect_max_delay_s"}:
            raise UsageError("an attached session takes only api_key, timeout and "
                             "reconnect_max_delay_s: intervals, store and market are the "
                             "server's (set them on `livecli serve`)")
        return attach(url, **options)

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
        sim_start: str | None = None,
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
        self.db_path: Path | None
        if db is False:
            self.db_path = None
        elif db:
            self.db_path = Path(str(db))
        else:
            # The simulated market has a store of its own (livecli-sim.db): its candles, made
            # under Kite's real tokens, must never mix with Kite's.
            from livecli.session.source import SIMULATED, choose_source

            simulated = choose_source(source, self.settings).name == SIMULATED
            self.db_path = self.settings.store_path_for(simulated)
        self.record = record or bool(self.settings.store.record_ticks)
        self._speed = speed
        self._seed = seed
        self._sim_date = sim_date
        self._sim_start = sim_start  # HH:MM IST the simulated market's clock starts at
        self._callbacks = Callbacks()
        self._listeners = Listeners()
        self._run: Run | None = None  # the current (or last) run

    # --- lifecycle -------------------------------------------------------------------------
    def start(
        self, symbols: Iterable[str], exchange: str = "NSE", mode: str = "full"
    ) -> LiveSession:
        """Resolve symbols, connect, and start building candles. Returns self."""
        if self.running:
            raise UsageError("this session is already running: stop() it first")
        mode = require_mode(mode)
        wanted = [s for s in symbols if s.strip()]
        if not wanted:
            raise UsageError("no symbols given: name at least one, e.g. RELIANCE or NSE:INFY")
        if len(wanted) > MAX_INSTRUMENTS:
            raise TooManyInstrumentsError(
                f"{len(wanted)} instruments asked for; Kite allows at most {MAX_INSTRUMENTS} "
                "per api_key (3 connections of 3000): subscribe fewer"
            )
        _load_kernel_soon(self.settings.stream.engine, len(wanted))

        def opened(run: Run) -> None:
            # Before the feed starts, not when open() returns: the first frames reach the
            # listeners (the JSON lines name each tick from `instruments`) while the history
            # thread is still being started, and they must find this run's instruments.
            self._run = run

        self._run = Run.open(
            source_kind=self._source_kind, settings=self.settings, intervals=self.intervals,
            symbols=wanted, exchange=exchange, mode=mode, db_path=self.db_path,
            db_default=self._db_default, record=self.record, speed=self._speed, seed=self._seed,
            sim_date=self._sim_date, callbacks=self._callbacks, listeners=self._listeners,
            sim_start=self._sim_start, opened=opened,
        )
        return self

    def stop(self, reason: str | None = None) -> None:
        """Stop cleanly: close the feed, close or store every candle, flush the store.

        Safe from any thread, a callback included, and safe to call twice.
        """
        run = self._run
        if run is None or not run.running:
            return
        run.note_feed_failure()  # the feed died before anyone waited on it
        run.stopped_reason = reason or run.stopped_reason or "stopped"
        run.teardown(clean=run.failure is None)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the session ends (stop() or a fatal feed error); True if it ended."""
        run = self._run
        if run is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if run.done.is_set():
                return True
            if run.running and run.note_feed_failure():
                run.teardown(clean=False)
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            run.done.wait(0.1 if left is None else min(0.1, left))

    @property
    def running(self) -> bool:
        return self._run is not None and self._run.running

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the last run was ---------------------------------------------------------------
    @property
    def source(self) -> Source | None:
        return self._run.source if self._run is not None else None

    @property
    def mode(self) -> str:
        return self._run.mode if self._run is not None else "full"

    @property
    def instruments(self) -> Mapping[int, Instrument]:
        """{token: instrument} subscribed in the current run (a read-only live view)."""
        if self._run is None:
            return MappingProxyType({})
        return MappingProxyType(self._run.instruments)

    @property
    def started_at(self) -> float | None:
        return self._run.started_at if self._run is not None else None

    @property
    def stopped_reason(self) -> str | None:
        return self._run.stopped_reason if self._run is not None else None

    @property
    def failure(self) -> BaseException | None:
        return self._run.failure if self._run is not None else None

    @property
    def callback_errors(self) -> int:
        return self._run.dispatcher.errors if self._run is not None else 0

    @property
    def last_callback_error(self) -> str | None:
        return self._run.dispatcher.last_error if self._run is not None else None

    # --- instruments -----------------------------------------------------------------------
    def _require_running(self) -> Run:
        run = self._run
        if run is None or not run.running:
            raise UsageError("the session is not running: call start() first")
        return run

    def _token(self, symbol: str) -> int:
        if self._run is None:
            raise SymbolError(f"{symbol} is not subscribed in this session (it has none: "
                              "start() it first)")
        return self._run.token_of(symbol)

    def token_of(self, symbol: str) -> int:
        return self._token(symbol)

    def subscribe_symbol(self, symbol: str, exchange: str = "NSE") -> int:
        """Add an instrument to the running session (in the session's mode)."""
        run = self._require_running()
        token = run.subscribe(symbol, exchange)
        _load_kernel_soon(self.settings.stream.engine, len(run.instruments))
        return token

    def unsubscribe_symbol(self, symbol: str) -> None:
        self._require_running().unsubscribe(symbol)

    # --- callbacks and listeners -----------------------------------------------------------
    def on_tick(self, symbol: str | None, fn: TickCallback) -> None:
        """Call `fn(tick_dict)` for every tick of `symbol` (None: every instrument)."""
        self._callbacks.add_tick(None if symbol is None else self._token(symbol), fn)

    def on_candle_close(self, interval: str | int | Interval, fn: CandleCloseCallback) -> None:
        """Call `fn(instrument_token, candle)` whenever a candle of `interval` closes."""
        iv = parse_interval(interval)
        if iv not in self.intervals:
            raise UsageError(
                f"{iv.name} candles are not built in this session: add it to intervals "
                f"(built: {', '.join(i.name for i in self.intervals)})"
            )
        self._callbacks.add_candle(iv.minutes, fn)

    def add_status_listener(self, fn: Callable[[LiveStatus], None]) -> None:
        """`fn(status)` about once a second, on the clock thread (the CLI's JSON lines)."""
        self._listeners.status.append(fn)

    def add_candle_listener(self, fn: Callable[[Candle], None]) -> None:
        """`fn(candle)` for every closed candle, on the receiving path: keep it O(1)."""
        self._listeners.candles.append(fn)

    def add_candle_batch_listener(self, fn: Callable[[Any], None]) -> None:
        """`fn(batch)` for every `ClosedCandles` batch (livecli/core/closed.py), on the
        receiving path, before any Candle object is made: `batch.candles()` on your own thread."""
        self._listeners.candle_batches.append(fn)

    def add_frame_listener(self, fn: Callable[[Any, float], None]) -> None:
        """`fn(frame, received_at)` for every decoded frame, on the receiving path."""
        self._listeners.frames.append(fn)

    def add_drop_counter(self, fn: Callable[[], int]) -> None:
        """`fn()`: tick events an output shed so far; summed into `tick_lines_dropped`."""
        self._listeners.drop_counters.append(fn)

    def set_publish_status(self, fn: Callable[[], PublishStatus] | None) -> None:
        """`fn()`: the NATS publisher's state, shown in the status's `publish` (None: none)."""
        self._listeners.publisher = fn

    # --- other machines (NATS) -------------------------------------------------------------
    def publish(self, url: str | None = None) -> Publication | None:
        """Publish this session to NATS JetStream (`url`, else `[publish] url`); before
        `start()`. Returns the publication (`close()` it after `stop()`), None when no URL is
        given or configured. See livecli/session/publish.py."""
        from livecli.session.publish import Publication, publish_options

        opts = publish_options(self, url)
        return None if opts is None else Publication(self, opts).start()

    # --- reading ---------------------------------------------------------------------------
    def wait_for_history(self, timeout: float | None = None) -> bool:
        """Wait until the warm start from Kite's history is in (the minute in progress at start
        too, once Kite has it); True at once when history is off. False on timeout."""
        run = self._require_running()
        return True if run.history is None else run.history.wait_warm(timeout)

    def get_latest_tick(self, symbol: str) -> dict[str, Any] | None:
        tok = self._token(symbol)
        assert self._run is not None
        return self._run.latest_tick_dict(tok)

    def get_current_candle(self, symbol: str, interval: str | int = "1min") -> dict[str, Any] | None:
        tok = self._token(symbol)
        run = self._run
        assert run is not None
        with run.lock:
            c = run.engine.forming(tok, interval)
        return None if c is None else c.to_dict()

    def get_candles(
        self, symbol: str, interval: str | int = "5min", count: int = 100,
        include_current: bool = False,
    ) -> pd.DataFrame:
        """The newest `count` candles (closed; plus the forming one if asked) as a DataFrame."""
        import pandas as pd

        from livecli.core.candles import CANDLE_FIELDS

        tok = self._token(symbol)
        run = self._run
        assert run is not None
        iv = parse_interval(interval)
        if iv not in self.intervals:
            raise UsageError(f"{iv.name} candles are not built in this session")
        with run.lock:
            rows = run.engine.history(tok, iv)
            forming = run.engine.forming(tok, iv) if include_current else None
        if forming is not None:
            rows = [*rows, forming]
        rows = rows[-count:] if count > 0 else []
        df = pd.DataFrame([c.to_dict() for c in rows], columns=list(CANDLE_FIELDS))
        df["start"] = pd.to_datetime(df["start"], format="ISO8601")
        return df

    def latest_ticks(self, tokens: Iterable[int] | None = None) -> dict[int, LatestTick]:
        """Each instrument's newest tick (those of `tokens`, or all), as `LatestTick`s."""
        from livecli.session.reading import latest_ticks

        return {} if self._run is None else latest_ticks(self._run, tokens)

    def recent_ticks(self, n: int = 12) -> list[RecentTick]:
        """The newest `n` ticks of the whole session, oldest first."""
        from livecli.session.reading import recent_ticks

        return [] if self._run is None else recent_ticks(self._run, n)

    def forming_candles(self, tokens: Iterable[int], interval: Interval, closes: int = 24
                        ) -> dict[int, FormingCandle]:
        """Per token, its forming candle of `interval` and its last `closes` closes (one lock)."""
        from livecli.session.reading import forming_candles

        return {} if self._run is None else forming_candles(self._run, tokens, interval, closes)

    def candles(self, token: int, interval: Interval, count: int = 120) -> list[Candle]:
        """The newest `count` candles of `token` in `interval`, oldest first, the forming one
        last (a chart's data)."""
        from livecli.session.reading import candles

        return [] if self._run is None else candles(self._run, token, interval, count)

    def depth(self, token: int) -> Depth | None:
        """`token`'s 5-level market depth from its newest full packet (None in other modes)."""
        from livecli.session.reading import depth

        return None if self._run is None else depth(self._run, token)

    def add_interval(self, interval: str | int | Interval) -> Interval:
        """Build `interval`'s candles too from now on (in a running session: at once, its
        history folded from the 1-minute candles held). Returns it."""
        iv = parse_interval(interval)
        for ses in self.settings.session_table().values():
            ses.check_interval(iv)
        run = self._run
        if run is not None and run.running:
            with run.lock:
                run.engine.add_interval(iv)
        self.intervals = tuple(sorted({*self.intervals, iv}))
        return iv

    def forming_batch(self, interval: Interval) -> ClosedCandles | None:
        """Every instrument's forming candle in `interval`, as one batch made under one short
        lock hold (what `--publish` sends each second); None before the session runs."""
        run = self._run
        if run is None:
            return None
        with run.lock:
            return run.engine.forming_batch(interval)

    def now(self) -> float:
        """The session clock's time: the wall's for Kite, the simulated market's for the stand-in;
        frozen at the moment a run stopped."""
        from livecli.session.reading import session_now

        return time.time() if self._run is None else session_now(self._run)

    def live_status(self, symbols: bool = True) -> LiveStatus:
        """The status, typed (see livecli.core.status); `symbols=False` leaves out the
        per-symbol part, most of the cost with thousands of instruments."""
        if self._run is None:
            return LiveStatus(intervals=tuple(i.name for i in self.intervals), pid=os.getpid(),
                              db=str(self.db_path) if self.db_path else None)
        return self._run.status(symbols)

    def status(self) -> dict[str, Any]:
        """The status as a JSON-ready dict (`live_status().to_json_dict()`)."""
        return self.live_status().to_json_dict()


def _load_kernel_soon(engine: str, instruments: int) -> None:
    """Make the engine's compiled kernel on a thread, when the session's `stream.engine` asks
    for it at this many instruments: importing numba takes about half a second of a core (the
    first compile on a machine a few seconds) and about 110 MB, which a session of a few
    instruments would pay for nothing; the engine uses its numpy path until the kernel is there."""
    from livecli.core import kernel

    if engine == "numpy" or (engine == "auto" and instruments < KERNEL_MIN_INSTRUMENTS):
        return
    if kernel.loaded() is None and kernel.failed() is None:
        threading.Thread(target=kernel.load, name="livecli-kernel", daemon=True).start()
