"""A connection's ticks for a stretch of market time, encoded ahead of the moment they are sent.

Why ahead: at 60x a link of 3000 instruments makes about 66,000 ticks a real second, and turning
them into packets is numpy work of hundreds of milliseconds. Done at the moment of sending (as
the stand-in once did, one frame per cycle), it held up everything queued behind it, heartbeats
included, until the client's watchdog gave up on the link. So a link's packets are encoded a
stretch at a time (`Tape`, about a real second of market time, the next one while the current
one is being sent) on a worker thread, and sending is only cutting slices out of bytes that
already exist: two binary searches and a copy.

A tape is built for one version of the link's subscriptions (`ConnInfo.version`); when the
subscriptions change, the link drops its tapes and builds anew (from where it stopped, or from
where its sibling links will be by then, see livecli.sim.ticker_server), so an unsubscribed
instrument is never sent again and a new one starts with its current state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from livecli.sim.market import Market
from livecli.sim.packets import EMPTY, FrameBuilder, Packed


def epoch_ms(t: float) -> int:
    """Market epoch seconds as the whole milliseconds the market stamps its ticks with."""
    return math.floor(t * 1000)


@dataclass(slots=True)
class Tape:
    """The link's packets stamped in (start, end], plus the snapshots to send before them."""

    start: float
    end: float
    version: int
    packets: Packed
    # The latest tick at or before `start` of each instrument in `snapshot_tokens` (Kite sends
    # a fresh subscription the instrument's current state at once).
    head: Packed = field(default_factory=lambda: EMPTY)
    snapshot_tokens: frozenset[int] = field(default_factory=frozenset)

    def __len__(self) -> int:
        return len(self.packets)


def build_tape(market: Market, subs: list[tuple[int, str]], snapshot: set[int] | frozenset[int],
               start: float, end: float, version: int,
               stale: Callable[[], bool] | None = None) -> Tape | None:
    """Encode every tick of `subs` ((token, mode) pairs) stamped in (start, end].

    `stale()` is asked now and then; once it says the subscriptions changed, the work is
    abandoned (None), so a superseded encoding does not delay the one that replaces it.
    """
    body = FrameBuilder()
    head = FrameBuilder()
    # A stretch that reaches a chunk the warm-up has not made yet (it fell behind on a loaded
    # machine) has it made here in vectorised batches: one by one, 3000 instruments took the
    # link several seconds, a silence the client rightly took for a quiet market (its clock
    # moved on and the ticks that followed were late).
    market.prepare([tok for tok, _ in subs if tok in market], end)
    for n, (tok, mode) in enumerate(subs):
        if stale is not None and n % 256 == 255 and stale():
            return None
        if tok not in market:
            continue
        if tok in snapshot:
            last = market.last_tick(tok, start)
            if last is not None:
                head.add(last, mode)
        for blk in market.ticks_between(tok, start, end):
            body.add(blk, mode)
    return Tape(start, end, version, body.packed(), head.packed(), frozenset(snapshot))
