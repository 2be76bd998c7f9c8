"""One run of a live session, from start() to stop(): every part made up front, none ever None.

`Run.open()` builds the parts in the order that keeps failures cheap (the store is checked
before anything connects, symbols are resolved before the store file is created) and closes
what it opened if a later part fails. A run then owns:

* its source (Kite, or the in-process stand-in) and the clock that goes with it;
* the instrument registry (token <-> symbol) and the candle engine;
* the store (the SQLite writer, or `NoStore`);
* the receiving path (`Receiver`), the clock thread and the callback dispatcher;
* the feed (KiteFeed), which calls the receiver on the shared reactor thread.

`teardown()` stops them in the order that loses nothing: the feed first (no tick can come),
then the candles the stop completes, the threads, and the store last with the final status.
A session that starts again makes a new Run; the reactor is shared and never stopped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livecli.errors import SymbolError, TooManyInstrumentsError, UsageError
from livecli.session.clock import AdvertisedClock, Clock, MarketClock, guard_now
from livecli.session.clock_thread import ClockThread
from livecli.session.dispatch import Callbacks, Dispatcher
from livecli.session.receiver import Listeners, Receiver
from livecli.session.store import NoStore, Store
from livecli.session.view import tick_dict

if TYPE_CHECKING:
    from livecli.config import Settings
    from livecli.core.engine import CandleEngine
    from livecli.core.intervals import Interval
    from livecli.core.status import LiveStatus
    from livecli.core.ticks import Tick
    from livecli.kite.connection import KiteFeed
    from livecli.kite.instruments import Instrument
    from livecli.session.source import Source
    from livecli.session.warmup import HistoryFiller

log = logging.getLogger("livecli.session")


# How far ahead of the session's clock a tick may be stamped, in the feed's real seconds, before
# the guard refuses it (CANDLES.md rule 8: "a few seconds").
MAX_AHEAD_S = 5.0
# The per-symbol part of the once-a-second status, for the store (`livecli status` in another
# terminal): each second up to this many instruments; beyond, every SYMBOLS_EVERY_S seconds,
# unless a status listener (JSON lines, `livecli serve`, NATS) takes every second's. For 9000
# instruments it is most of the status's cost (bench/status.py) and a 0.5 MB write.
SYMBOLS_EACH_SECOND_UP_TO = 1000
SYMBOLS_EVERY_S = 5.0
# The most a speed-scaled grace may span, in market seconds (0.9 real s at 60x; see _scale_grace).
MAX_SCALED_GRACE_S = 54.0


def clock_for(source: Source) -> Clock:
    """The in-process stand-in's market clock, else the clock the ticker server advertises
    (a standalone stand-in's; none from real Kite, which leaves the wall clock)."""
    if source.market_time is not None:
        return MarketClock(source.market_time, source.clock_rate)
    return AdvertisedClock()


class Run:
    """A started session's parts and state. Made by `open()`; ended by `teardown()`."""

    def __init__(self, *, source: Source, clock: Clock, settings: Settings, mode: str,
                 engine: CandleEngine, instruments: list[Instrument], store: Store,
                 db_path: Path | None, feed_factory: Any, callbacks: Callbacks,
                 listeners: Listeners, record: bool) -> None:
        self.source = source
        self.clock = clock
        self.settings = settings
        self.mode = mode
        self.engine = engine
        self.store = store
        self.db_path = db_path
        self.listeners = listeners
        self.lock = threading.RLock()
        self.instruments: dict[int, Instrument] = {}
        self._by_symbol: dict[str, int] = {}
        for inst in instruments:
            self._add(inst)
        self.dispatcher = Dispatcher(callbacks, self._tick_dict)
        self.receiver = Receiver(self.lock, engine, store, clock, listeners, self.dispatcher,
                                 record=record, exchange_times=mode == "full")
        self._ticks_of_frame: tuple[Any, list[Any]] | None = None
        self.feed: KiteFeed = feed_factory(self.receiver.on_frame, self._on_text, self._on_state)
        if isinstance(clock, AdvertisedClock):
            feed = self.feed
            clock.bind(lambda: feed.server_clock)
        self.receiver.unread = self.feed.has_unread  # bytes on the wire: not quiet (rule 9)
        if len(self.instruments) > self.feed.max_instruments:
            raise TooManyInstrumentsError(
                f"{len(self.instruments)} instruments; Kite allows at most "
                f"{self.feed.max_instruments}"
            )
        self._symbols_due = 0.0  # monotonic time the store's per-symbol status is next due
        self.clock_thread = ClockThread(self.receiver, self.publish_second,
                                        self.feed.call_soon)
        self._scale_grace()
        self.history: HistoryFiller | None = None  # warm start and gap repair (session/warmup.py)
        self.started_at = time.time()
        self.running = False
        self.stopped_reason: str | None = None
        self.failure: BaseException | None = None
        self.clock_at_stop: float | None = None  # the session clock's time when it stopped
        self.done = threading.Event()
        self._stop_lock = threading.Lock()
        self._tearing_down = False

    # --- making one ----------------------------------------------------------------------------
    @classmethod
    def open(cls, *, source_kind: str, settings: Settings, intervals: tuple[Interval, ...],
             symbols: list[str], exchange: str, mode: str, db_path: Path | None,
             db_default: bool, record: bool, speed: float | None, seed: int,
             sim_date: str | None, callbacks: Callbacks, listeners: Listeners,
             sim_start: str | None = None,
             opened: Callable[[Run], None] | None = None) -> Run:
        """Resolve, connect and start; on any failure close whatever was opened and raise.

        `opened(run)` is called before the feed starts: frames can arrive (and listeners read
        the session) before this returns."""
        from livecli.core.engine import CandleEngine
        from livecli.kite.connection import KiteFeed
        from livecli.kite.instruments import InstrumentMaster
        from livecli.session.source import open_source

        if db_path is not None:
            from livecli.store.schema import check_writable

            check_writable(db_path, create_folder=db_default)
        source = open_source(source_kind, settings, speed=speed, seed=seed, sim_date=sim_date,
                             sim_start=sim_start)
        store: Store = NoStore()
        try:
            master = InstrumentMaster(source.api_key, source.access_token, source.api_url,
                                      settings.cache_dir)
            resolved = master.resolve(symbols, default_exchange=exchange)
            st = settings.stream
            clock = clock_for(source)
            # The guard's clock (CANDLES.md rule 8): a tick stamped ahead of it moves nothing.
            engine = CandleEngine(intervals, grace_s=st.grace_s, history=st.history,
                                  fill_gaps=st.fill_gaps, sessions=settings.session_table(),
                                  now=guard_now(clock, MAX_AHEAD_S), max_ahead_s=MAX_AHEAD_S)
            if db_path is not None:
                from livecli.store.writer import StoreWriter

                # Given the source, the writer refuses a store of the other source up front.
                store = StoreWriter(db_path, create_folder=db_default, source=source.name)

            def feed_factory(on_frame: Any, on_text: Any, on_state: Any) -> KiteFeed:
                return KiteFeed(
                    source.api_key, source.access_token, source.ws_url, on_frame,
                    on_text=on_text, on_state=on_state, watchdog_s=st.watchdog_s,
                    reconnect_max_delay_s=st.reconnect_max_delay_s,
                )

            run = cls(source=source, clock=clock, settings=settings, mode=mode,
                      engine=engine, instruments=resolved, store=store, db_path=db_path,
                      feed_factory=feed_factory, callbacks=callbacks, listeners=listeners,
                      record=record and db_path is not None)
        except BaseException:
            store.stop()
            source.close()
            raise
        try:
            if opened is not None:
                opened(run)
            run._start()
        except BaseException:
            run.teardown(clean=False)
            raise
        return run

    def _start(self) -> None:
        self.store.register_instruments(self._names())
        self.running = True
        self.store.begin_session({
            "pid": os.getpid(),
            "source": self.source.name,
            "mode": self.mode,
            "intervals": [i.name for i in self.engine.intervals],
            "symbols": [i.tradingsymbol for i in self.instruments.values()],
            "started_at": self.started_at,
        })
        self.clock_thread.start()
        self.dispatcher.start()
        self.feed.start({tok: self.mode for tok in self.instruments})
        # Only now, with the stream already receiving: history never delays the live stream.
        from livecli.session.warmup import start_filler

        self.history = start_filler(self)

    # --- the instrument registry ---------------------------------------------------------------
    def _add(self, inst: Instrument) -> None:
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

    def subscribe(self, symbol: str, exchange: str) -> int:
        from livecli.kite.instruments import InstrumentMaster

        src = self.source
        master = InstrumentMaster(src.api_key, src.access_token, src.api_url,
                                  self.settings.cache_dir)
        inst = master.resolve([symbol], default_exchange=exchange)[0]
        with self.lock:
            self._add(inst)
        self.store.register_instruments(self._names())
        self.feed.subscribe([inst.instrument_token], self.mode)
        if self.history is not None:  # its day so far, as a symbol given at start has
            self.history.want([inst.instrument_token])
        return inst.instrument_token

    def unsubscribe(self, symbol: str) -> None:
        tok = self.token_of(symbol)
        self.feed.unsubscribe([tok])
        if self.history is not None:
            self.history.forget(tok)
        with self.lock:
            inst = self.instruments.pop(tok)
            self._by_symbol.pop(inst.tradingsymbol.upper(), None)
            self._by_symbol.pop(f"{inst.exchange}:{inst.tradingsymbol}".upper(), None)

    # --- feed events (reactor thread) ----------------------------------------------------------
    def _on_text(self, message: Any) -> None:
        if message.type == "error":
            log.warning("Kite says: %s", message.data)

    def _on_state(self, status: Any) -> None:
        if status.state == "reconnecting":
            with self.lock:
                self.engine.mark_disconnect()
        self._scale_grace()  # a link upgraded: a standalone stand-in has now said its speed

    def _scale_grace(self) -> None:
        """The grace waits out the links' arrival skew, which is real time (CANDLES.md rule 8):
        against a simulated market at speed N it spans N x grace_s of the market's seconds, or
        at 60x one link's subscription snapshot would arrive late behind another's. At most
        MAX_SCALED_GRACE_S: the engine holds two open minutes per instrument, so a minute must
        close before the one after next begins."""
        grace = min(self.settings.stream.grace_s * max(1.0, self.clock.rate),
                    max(self.settings.stream.grace_s, MAX_SCALED_GRACE_S))
        if grace != self.engine.grace_s:
            with self.lock:
                self.engine.grace_s = grace

    # --- ticks as dicts (callback thread, readers) ---------------------------------------------
    def _tick_dict(self, tok: int, frame: Any, row: int) -> dict[str, Any]:
        cached = self._ticks_of_frame
        if cached is None or cached[0] is not frame:
            # Callbacks usually want several ticks of one frame: decode its rows once.
            cached = self._ticks_of_frame = (frame, frame.ticks())
        return self._named(tok, cached[1][row])

    def _named(self, tok: int, tick: Tick) -> dict[str, Any]:
        inst = self.instruments.get(tok)
        return tick_dict(tick, inst.tradingsymbol if inst else str(tok),
                         inst.exchange if inst else "")

    def latest_tick_dict(self, tok: int) -> dict[str, Any] | None:
        with self.lock:
            hit = self.receiver.latest.get(tok)
        # One packet of a frame the callbacks may never have decoded: read it alone.
        return None if hit is None else self._named(tok, hit[0].tick(hit[1]))

    # --- status --------------------------------------------------------------------------------
    def status(self, symbols: bool = True) -> LiveStatus:
        from livecli.session.status import build_status

        return build_status(self, ended=not self.running and self.done.is_set(),
                            symbols=symbols)

    def publish_second(self) -> None:
        """The clock thread's once-a-second status, with its per-symbol part when that is due
        (SYMBOLS_EACH_SECOND_UP_TO)."""
        now = time.monotonic()
        symbols = (bool(self.listeners.status) or now >= self._symbols_due
                   or len(self.instruments) <= SYMBOLS_EACH_SECOND_UP_TO)
        if symbols:
            self._symbols_due = now + SYMBOLS_EVERY_S
        self.publish(self.status(symbols=symbols), symbols=symbols)

    def publish(self, status: LiveStatus, symbols: bool = True) -> None:
        """`status` to the store (its per-symbol part unless told not) and to each status
        listener."""
        self.store.put_status(status, symbols=symbols)
        for fn in self.listeners.status:
            try:
                fn(status)
            except Exception as exc:  # a broken listener must not stop the clock
                log.debug("status listener: %s", exc)

    # --- ending --------------------------------------------------------------------------------
    def note_feed_failure(self) -> bool:
        """Take the feed's fatal error, or the store's, as the run's; True when there was one.

        A store that cannot be written (the writer gave up, e.g. on a full disk) ends the run
        like a dead feed: streaming on would only lose candles in silence.
        """
        failed = self.feed.failed or self.store.failure
        if failed is None:
            return False
        if self.failure is None:
            self.failure = failed
            self.stopped_reason = str(failed)
        return True

    def teardown(self, clean: bool) -> None:
        """Stop everything, losing nothing. Safe from any thread (a callback too), and twice."""
        with self._stop_lock:  # stop() and wait()'s failure path may race: one tears down
            if self._tearing_down:
                return
            self._tearing_down = True
        self.running = False
        try:
            if self.history is not None:
                self.history.stop()
            try:
                self.feed.stop()
            except Exception as exc:  # stopping must finish whatever the feed does
                log.debug("feed stop: %s", exc)
            forming = self.receiver.close_due()
            # Only now: the callback thread drains what the closes above queued first.
            self.clock_thread.stop()
            self.dispatcher.stop()
            self.store.put_candles(forming)
            self.store.put_status(self.status())
            self.store.end_session(state="stopped" if clean else "failed", clean=clean)
            if not self.store.stop() and self.failure is None:
                from livecli.errors import StoreError

                self.failure = StoreError(
                    f"the store {self.db_path} could not be written at shutdown "
                    f"({self.store.error or 'timed out'}): the last candles may be missing"
                )
                self.stopped_reason = str(self.failure)
        finally:
            self.clock_at_stop = self.clock.now()
            self.source.close()
            self.done.set()


def require_mode(mode: str | None) -> str:
    from livecli.kite.protocol import MODES

    m = (mode or "full").lower()
    if m not in MODES:
        raise UsageError(f"unknown mode {mode!r}: use full, quote or ltp")
    return m
