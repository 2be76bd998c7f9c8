"""Strategy callbacks, run on a thread of their own so slow code never stalls the ticks.

`Callbacks` is the registry (`on_tick`, `on_candle_close`), owned by the session and kept across
runs. Each run gets a `Dispatcher`: the receiving path queues events (a tick's frame and row, a
closed candle) and returns; the dispatcher's thread turns them into tick dicts and calls the
registered functions. A callback that raises is counted and its message kept, nothing more. A
`stop()` from inside a callback is safe: the session never joins the thread it is called on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livecli.core.candles import Candle

log = logging.getLogger("livecli.session")

TickCallback = Callable[[dict[str, Any]], None]
CandleCloseCallback = Callable[[int, "Candle"], None]
# Builds the tick dict for (token, frame, row): the session's, which knows the names.
TickMaker = Callable[[int, Any, int], dict[str, Any]]


@dataclass
class Callbacks:
    """Who wants what: tick callbacks by token (None: every token), candle ones by minutes."""

    ticks: dict[int | None, list[TickCallback]] = field(default_factory=dict)
    candles: dict[int, list[CandleCloseCallback]] = field(default_factory=dict)

    def add_tick(self, token: int | None, fn: TickCallback) -> None:
        self.ticks.setdefault(token, []).append(fn)

    def add_candle(self, minutes: int, fn: CandleCloseCallback) -> None:
        self.candles.setdefault(minutes, []).append(fn)


class Dispatcher:
    """One run's callback thread and its queue; `errors` counts callbacks that raised."""

    def __init__(self, callbacks: Callbacks, make_tick: TickMaker) -> None:
        self.callbacks = callbacks
        self._make_tick = make_tick
        # Its own queue and stop event per run: a thread that outlives stop() (a slow
        # callback) can never serve the next run's queue.
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="livecli-callbacks", daemon=True)
        self.errors = 0
        self.last_error: str | None = None

    # --- the receiving path: queue and return ------------------------------------------------
    def wants_ticks(self, token: int) -> bool:
        t = self.callbacks.ticks
        return bool(t) and (token in t or None in t)

    def tick(self, token: int, frame: Any, row: int) -> None:
        self._queue.put(("tick", token, frame, row))

    def wants_candles(self, minutes: int) -> bool:
        return minutes in self.callbacks.candles

    def candle(self, c: Candle) -> None:
        self._queue.put(("candle", c.interval_min, c))

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what is queued, then end (never joins itself: stop() from a callback)."""
        self._stopping.set()
        if self._thread is not threading.current_thread() and self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    # --- the callback thread -------------------------------------------------------------------
    def _loop(self) -> None:
        items, stopping = self._queue, self._stopping
        while True:
            try:
                item = items.get(timeout=0.2)
            except queue.Empty:
                if stopping.is_set():
                    return
                continue
            try:
                if item[0] == "tick":
                    _, tok, frame, row = item
                    tick = self._make_tick(tok, frame, row)
                    cbs = self.callbacks.ticks
                    for on_tick in cbs.get(tok, []) + cbs.get(None, []):
                        self._call(on_tick, tick)
                else:
                    _, minutes, c = item
                    for on_close in self.callbacks.candles.get(minutes, []):
                        self._call(on_close, c.instrument_token, c)
            except Exception as exc:  # never let the dispatcher die
                self._record(exc)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self._record(exc)

    def _record(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.errors == 1 or self.errors % 100 == 0:
            log.warning("a callback raised (%d so far): %s", self.errors, self.last_error)
