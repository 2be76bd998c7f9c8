"""The receiving path: every decoded frame, on the reactor thread, into candles and the store.

Decoding is done by the feed; here each frame updates the candle engine (in order, under the
session's lock, because it is cheap and must stay in order), hands the candles it closed to the
store in one batch, keeps cheap references for the read API (each instrument's latest tick, count and receipt
time as arrays: livecli/session/latest.py; a ring of the newest ticks), records raw ticks when
asked, and queues what the callbacks want. Nothing here waits: the store, the callbacks and the
outputs each have a thread of their own.

The engine's vectorised per-frame update is `CandleEngine.update_columns`
(livecli/core/engine.py); this module only feeds it numpy columns and never updates a candle.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from livecli.session.latest import LatestTicks

if TYPE_CHECKING:
    from livecli.core.candles import Candle
    from livecli.core.closed import ClosedCandles
    from livecli.core.engine import CandleEngine
    from livecli.core.status import LiveStatus, PublishStatus
    from livecli.session.clock import Clock
    from livecli.session.dispatch import Dispatcher
    from livecli.session.store import Store

RECENT_TICKS = 40
# The feed counts as quiet after this long without a tick; only then does the session's clock
# move the feed's clock on (CANDLES.md rule 8). Sooner, and ticks already in flight turn up late.
# Quiet is measured on the receiving thread, from when it finished its last frame: a receiver
# busy with a backlog is not a quiet feed (rule 9: lateness is the feed's, never livecli's).
QUIET_S = 1.0

FrameListener = Callable[[Any, float], None]
CandleListener = Callable[["Candle"], None]
CandleBatchListener = Callable[["ClosedCandles"], None]
StatusListener = Callable[["LiveStatus"], None]


@dataclass
class Listeners:
    """O(1) hooks the outputs (JSON lines) attach, kept by the session across runs.

    `drop_counters` report how many tick events an output shed under pressure; their sum is the
    status's `tick_lines_dropped`.
    """

    frames: list[FrameListener] = field(default_factory=list)
    candles: list[CandleListener] = field(default_factory=list)
    # Batches of closed candles as the engine closed them (no Candle objects on this path).
    candle_batches: list[CandleBatchListener] = field(default_factory=list)
    status: list[StatusListener] = field(default_factory=list)
    drop_counters: list[Callable[[], int]] = field(default_factory=list)
    # The NATS publisher's state for the status (`--publish`), None when not publishing.
    publisher: Callable[[], PublishStatus] | None = None

    def dropped(self) -> int:
        return sum(fn() for fn in self.drop_counters)


def _never() -> bool:
    return False


class Receiver:
    """One run's receiving path. `on_frame` is the feed's frame handler."""

    def __init__(self, lock: threading.RLock, engine: CandleEngine, store: Store, clock: Clock,
                 listeners: Listeners, dispatcher: Dispatcher, *, record: bool,
                 exchange_times: bool) -> None:
        self.lock = lock
        self.engine = engine
        self.store = store
        self.clock = clock
        self.listeners = listeners
        self.dispatcher = dispatcher
        self.record = record
        # ltp and quote packets carry no time: they are stamped at receipt, by the session's
        # clock (the simulated market's clock is not the wall's).
        self._stamp = not exchange_times
        self.latest = LatestTicks()
        self.recent: deque[tuple[float, int, float, int | None]] = deque(maxlen=RECENT_TICKS)
        self._closed: list[ClosedCandles] = []
        self.feed_max = float("-inf")
        self.feed_max_wall = 0.0  # when the frame that set the feed's clock was received
        # When the receiving path last finished a frame, and whether it is inside one: the
        # feed is quiet only when it has delivered nothing for a while, not while frames wait
        # for livecli (rule 9: lateness is the feed's, never livecli's processing).
        self.done_wall = 0.0
        self.busy = False
        # Set by the run once the feed exists: bytes the links delivered that nobody has read.
        self.unread: Callable[[], bool] = _never
        engine.on_close_batch(self._on_batch_closed)

    # --- the reactor thread ---------------------------------------------------------------------
    def on_frame(self, frame: Any, received_at: float) -> None:
        n = len(frame)
        if not n:
            return
        self.busy = True
        try:
            self._on_frame(frame, received_at, n)
        finally:
            self.busy = False
            self.done_wall = time.time()

    def _on_frame(self, frame: Any, received_at: float, n: int) -> None:
        if self._stamp:
            frame.received_at = self.clock.at(received_at)
        cols = frame.columns(lists=False)  # numpy columns: the engine's vectorised input
        with self.lock:
            counters = self.engine.counters
            refused = counters.future
            self.engine.update_columns(cols)
            self.flush_closed()
            if counters.future != refused:  # the engine says so: no scan of a good frame
                limit = self.engine.last_limit
                # Ticks the feed-clock guard refused (stamped too far ahead): counted by the
                # engine, and never recorded, shown as the latest price or handed to callbacks,
                # so the store's recording rebuilds the same candles the session built.
                keep = [i for i, t in enumerate(cols.time.tolist()) if t <= limit]
                frame = frame.take(keep)
                n = len(frame)
                if not n:
                    return
                cols = frame.columns(lists=False)
            tmax = self.engine.tick_clock  # not max(times): a tick from the future is not one
            if tmax > self.feed_max:
                self.feed_max = tmax
            self.feed_max_wall = received_at
            self.latest.update(frame, cols.token, cols.price, received_at)
            times = cols.time
            lo_ = max(0, n - RECENT_TICKS)  # the panel shows only the newest
            for t_, tok, p_, v in zip(times[lo_:].tolist(), cols.token[lo_:].tolist(),
                                      cols.price[lo_:].tolist(), cols.volume[lo_:].tolist(),
                                      strict=True):
                self.recent.append((t_, tok, p_, None if v < 0 else v))
        dispatcher = self.dispatcher
        tokens = cols.token.tolist() if dispatcher.callbacks.ticks else []
        if self.record:  # as columns: the writer makes the rows on its own thread
            self.store.put_tick_columns(cols, received_at)
        for fn in self.listeners.frames:
            fn(frame, received_at)
        if dispatcher.callbacks.ticks:
            for i, tok in enumerate(tokens):
                if dispatcher.wants_ticks(tok):
                    dispatcher.tick(tok, frame, i)

    def _on_batch_closed(self, batch: ClosedCandles) -> None:
        # Called by the engine under the lock, on the receiving or the clock thread. At a
        # minute's end thousands close at once, as one batch: it reaches the store as is
        # (flush_closed), and Candle objects are made only for those who want them.
        self._closed.append(batch)
        for bfn in self.listeners.candle_batches:
            bfn(batch)
        wants = self.dispatcher.wants_candles(batch.interval_min)
        if self.listeners.candles or wants:
            for c in batch.candles():
                for fn in self.listeners.candles:
                    fn(c)
                if wants:
                    self.dispatcher.candle(c)

    def flush_closed(self) -> None:
        """Hand the candles closed by the last engine call to the store (under the lock)."""
        if self._closed:
            for batch in self._closed:
                self.store.put_candle_batch(batch)
            self._closed = []

    # --- the clock thread -----------------------------------------------------------------------
    def looks_quiet(self, wall_now: float) -> bool:
        """From another thread, without the lock: worth asking the receiving thread?"""
        return (self.feed_max > float("-inf") and not self.busy
                and wall_now - self.done_wall >= QUIET_S)

    def advance_if_quiet(self, wall_now: float | None = None) -> None:
        """Move the feed's clock on by the session clock while no tick comes (rule 8).

        Queued on the receiving thread by the clock thread, so it runs behind every frame the
        links delivered before it; and from any thread it still holds off while a frame is
        being handled or bytes wait unread on a link. Quiet is measured from the last frame the
        links delivered (the newest received, or the one the receiving path just finished):
        otherwise a receiving path that fell behind would close minutes whose ticks were
        already on the wire and make them late.
        """
        if self.busy or self.unread():
            return
        with self.lock:
            now = time.time() if wall_now is None else wall_now
            since = self.feed_max_wall if self.feed_max_wall > self.done_wall else self.done_wall
            if self.busy or now - since < QUIET_S or self.unread():
                return
            # The feed's clock moves on from the last tick by the quiet time after the last
            # delivery (not after the last tick's receipt, which may be much older).
            if self.feed_max > float("-inf"):
                self.engine.advance(self.feed_max + (now - self.feed_max_wall) * self.clock.rate)
                self.flush_closed()

    def close_due(self) -> list[Candle]:
        """At the stop: close what only waited out the grace; the forming candles that remain.

        No tick can come any more, so a candle whose end the feed's clock has passed is complete:
        close it now, or it would be lost, since only the newest minute counts as forming.
        """
        with self.lock:
            engine = self.engine
            if engine.clock > float("-inf"):
                engine.advance(engine.clock + engine.grace_s)
                self.flush_closed()
            return engine.forming_all()
