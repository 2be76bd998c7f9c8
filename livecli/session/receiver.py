"""The receiving path: every decoded frame, on the reactor thread, into candles and the store.

Decoding is done by the feed; here each frame updates the candle engine (in order, under the
session's lock, because it is cheap and must stay in order), hands the candles it closed to the
store in one batch, keeps cheap references for the read API (the frame and row of each
instrument's latest tick, per-token counts, a ring of the newest ticks), records raw ticks when
asked, and queues what the callbacks want. Nothing here waits: the store, the callbacks and the
outputs each have a thread of their own.

The engine's fused hot loop is `CandleEngine._run` (livecli/core/engine.py); this module only
feeds it and never updates a candle itself.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livecli.core.candles import Candle
    from livecli.core.engine import CandleEngine
    from livecli.core.status import LiveStatus
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
StatusListener = Callable[["LiveStatus"], None]


@dataclass
class Listeners:
    """O(1) hooks the outputs (JSON lines) attach, kept by the session across runs.

    `drop_counters` report how many tick events an output shed under pressure; their sum is the
    status's `tick_lines_dropped`.
    """

    frames: list[FrameListener] = field(default_factory=list)
    candles: list[CandleListener] = field(default_factory=list)
    status: list[StatusListener] = field(default_factory=list)
    drop_counters: list[Callable[[], int]] = field(default_factory=list)

    def dropped(self) -> int:
        return sum(fn() for fn in self.drop_counters)


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
        self.latest: dict[int, tuple[Any, int]] = {}
        self.counts: dict[int, int] = {}
        self.seen: dict[int, float] = {}
        self.recent: deque[tuple[float, int, float, int | None]] = deque(maxlen=RECENT_TICKS)
        self._closed: list[Candle] = []
        self.feed_max = float("-inf")
        self.feed_max_wall = 0.0  # when the frame that set the feed's clock was received
        self.idle_since = 0.0  # when the receiving thread finished its latest frame
        engine.on_close(self._on_candle_closed)

    # --- the reactor thread ---------------------------------------------------------------------
    def on_frame(self, frame: Any, received_at: float) -> None:
        n = len(frame)
        if not n:
            return
        if self._stamp:
            frame.received_at = self.clock.at(received_at)
        cols = frame.columns()
        tokens = cols.token
        with self.lock:
            counters = self.engine.counters
            refused = counters.future
            self.engine.update_columns(cols)
            self.flush_closed()
            times = cols.time
            if counters.future != refused:  # the engine says so: no scan of a good frame
                limit = self.engine.last_limit
                # Ticks the feed-clock guard refused (stamped too far ahead): counted by the
                # engine, and never recorded, shown as the latest price or handed to callbacks,
                # so the store's recording rebuilds the same candles the session built.
                keep = [i for i, t in enumerate(times) if t <= limit]
                frame = frame.take(keep)
                n = len(frame)
                if not n:
                    return
                cols = frame.columns()
                tokens, times = cols.token, cols.time
            tmax = self.engine.tick_clock  # not max(times): a tick from the future is not one
            if tmax > self.feed_max:
                self.feed_max = tmax
            self.feed_max_wall = received_at
            latest = self.latest
            counts = self.counts
            seen = self.seen
            for i, tok in enumerate(tokens):
                latest[tok] = (frame, i)
                counts[tok] = counts.get(tok, 0) + 1
                seen[tok] = received_at
            prices = cols.price
            vols = cols.volume
            for i in range(max(0, n - RECENT_TICKS), n):  # the panel shows only the newest
                v = vols[i]
                self.recent.append((times[i], tokens[i], prices[i], None if v < 0 else v))
        if self.record:
            self.store.put_ticks(list(zip(
                tokens, cols.time, cols.price,
                [None if v < 0 else v for v in cols.volume],
                [None if o < 0 else o for o in cols.oi],
                [None if h != h else h for h in cols.day_high],
                [None if lo != lo else lo for lo in cols.day_low],
                [received_at] * n, strict=True,
            )))
        for fn in self.listeners.frames:
            fn(frame, received_at)
        dispatcher = self.dispatcher
        if dispatcher.callbacks.ticks:
            for i, tok in enumerate(tokens):
                if dispatcher.wants_ticks(tok):
                    dispatcher.tick(tok, frame, i)
        self.idle_since = time.time()

    def _on_candle_closed(self, c: Candle) -> None:
        # Called by the engine under the lock, on the receiving or the clock thread. At a
        # minute's end thousands close at once: they reach the store in one batch (flush_closed).
        self._closed.append(c)
        for fn in self.listeners.candles:
            fn(c)
        if self.dispatcher.wants_candles(c.interval_min):
            self.dispatcher.candle(c)

    def flush_closed(self) -> None:
        """Hand the candles closed by the last engine call to the store (under the lock)."""
        if self._closed:
            self.store.put_candles(self._closed)
            self._closed = []

    # --- the clock thread -----------------------------------------------------------------------
    def looks_quiet(self, wall_now: float) -> bool:
        """From another thread, without the lock: worth asking the receiving thread?"""
        return self.feed_max > float("-inf") and wall_now - self.idle_since >= QUIET_S

    def advance_if_quiet(self) -> None:
        """Move the feed's clock on by the session clock while no tick comes (rule 8).

        Runs on the receiving thread (queued there by the clock thread), so every frame the
        links delivered before it has been taken: the clock moves on only past a real silence,
        by the time since the last frame arrived.
        """
        with self.lock:
            now = time.time()
            if self.feed_max > float("-inf") and now - self.idle_since >= QUIET_S:
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
