"""Generates the simulated market ahead of its clock, so nobody waits for the day so far.

The market is generated lazily, five market minutes (`CHUNK_S`) per instrument at a time, and a
chunk's starting state (volume, high, low...) is the previous chunk's end: the first look at an
instrument at 13:00 generates its whole day up to 13:00. With thousands of instruments at 60x,
that made a client who subscribed a minute after `livecli sim` started wait for tens of seconds
of generation, and every new chunk (every 5 real seconds at 60x) held up the link that met it.
So a background thread keeps every instrument's current chunk, and the next one before the clock
reaches it, generated, many instruments in one vectorised pass (livecli.sim.chunkgen): a
subscription, a reconnect or a tape only ever reads what exists.

It works in passes per session (instruments of one exchange share one chunk grid) and only when
the grid moves on, so an idle stand-in costs a few dictionary lookups a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Final

from livecli.core.timeutil import ist_day
from livecli.sim.clock import SimClock
from livecli.sim.market import CHUNK_S, Market

log = logging.getLogger("livecli.sim.warmup")

# How far ahead of the clock, or of the links when they are behind it (market seconds), the
# next chunk is made ready: 4.5 real seconds at
# 60x, which a loaded machine needs for 9000 instruments (at 0.6 of a chunk the tapes met chunks
# not made yet). The market's cache holds two chunks per instrument, so the one the clock just
# left stays for 30 market seconds more.
AHEAD_S: Final = 0.9 * CHUNK_S
# Instruments generated in one vectorised pass (a few milliseconds of holding the market's lock).
BATCH: Final = 128
# How often (real seconds) the thread looks at the clock when there is nothing to do.
POLL_S: Final = 0.25


class Warmup:
    """A daemon thread that keeps `market` generated from `clock.now()` (or the links' demand,
    when they are behind it) to AHEAD_S beyond it."""

    def __init__(self, market: Market, clock: SimClock,
                 demand: Callable[[], float | None] | None = None) -> None:
        self.market = market
        self.clock = clock
        # The earliest market time a client's link has yet to be sent (the ticker's), when
        # that is behind the clock: generating ahead of the clock would then make chunks
        # nobody needs yet and push out the ones the links are about to read.
        self.demand = demand
        self._groups: dict[str, list[int]] = defaultdict(list)
        for ins in market.instruments:
            self._groups[market.session(ins.instrument_token).name].append(ins.instrument_token)
        # (session, day, chunk) made for all: a set, since the links' demand may move back
        # behind a chunk already made at the clock.
        self._done: set[tuple[str, int, int]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.generated = 0  # chunks this thread had to make (tests and benches read it)

    def start(self) -> Warmup:
        self._thread = threading.Thread(target=self._run, name="livecli-sim-warmup", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = self.clock.now()
                need = self.demand() if self.demand is not None else None
                if need is not None and need < now:
                    now = need
                busy = any([self._pass(now), self._pass(now + AHEAD_S)])
                if not busy:
                    self._stop.wait(POLL_S)
        except Exception:  # the market is still served lazily without it
            log.exception("the stand-in's market warm-up stopped")

    def _pass(self, t: float) -> bool:
        """Make every instrument's chunk at market time `t`; True if the grid had moved on."""
        day = ist_day(t)
        if not self.market.is_trading_day(day):
            return False
        busy = False
        for name, tokens in self._groups.items():
            plan = self.market.plan(tokens[0], day)
            t_ms = int(t * 1000)
            if t_ms < plan.open_ms:
                continue
            k = min((t_ms - plan.open_ms) // (CHUNK_S * 1000), plan.n_chunks - 1)
            if (name, day, k) in self._done:
                continue
            busy = True
            for lo in range(0, len(tokens), BATCH):
                if self._stop.is_set():
                    return busy
                self.generated += self.market.prepare(tokens[lo:lo + BATCH], t, BATCH)
                time.sleep(0)  # the GIL to the sending loop and the tape encoders first
            self._done.add((name, day, k))
        return busy
