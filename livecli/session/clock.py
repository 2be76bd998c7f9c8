"""Whose time a session keeps: the wall clock for Kite, the market's own for the stand-in.

A session needs "now" in three places: to stamp packets that carry no time (ltp and quote
modes), to move the feed's clock on while the feed is quiet (CANDLES.md rule 8), and to show the
time on the dashboard. With Kite that is the wall clock. The simulated market runs its own
trading day at any hour and any speed, so there "now" is the market's clock and a quiet wall
second is `speed` market seconds. The session is handed one `Clock` and never asks which source
it is talking to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """The time a session keeps. `rate` is clock seconds per wall second."""

    @property
    def rate(self) -> float: ...

    def now(self) -> float:
        """The clock's epoch seconds now."""
        ...

    def at(self, wall_s: float) -> float:
        """The clock's time at wall-clock instant `wall_s` (a receive time)."""
        ...


class WallClock:
    """The host's clock: Kite stamps and serves the real day."""

    rate = 1.0

    def now(self) -> float:
        return time.time()

    def at(self, wall_s: float) -> float:
        return wall_s


class MarketClock:
    """A simulated market's clock, `market_time()`, running `rate` times the wall clock."""

    def __init__(self, market_time: Callable[[], float], rate: float) -> None:
        self._market_time = market_time
        self.rate = float(rate)

    def now(self) -> float:
        return self._market_time()

    def at(self, wall_s: float) -> float:
        # The market's now, less the market time that passed since `wall_s`.
        return self._market_time() - (time.time() - wall_s) * self.rate


class AdvertisedClock:
    """The clock a ticker server advertises on the WebSocket upgrade, else the wall clock.

    Real Kite advertises none, so against Kite this is the wall clock. A standalone `livecli sim`
    runs its simulated day at any hour and speed (09:15 in the market while the wall says 01:30
    is normal use) and says so in its upgrade headers (`KiteFeed.server_clock`); the feed-clock
    guard and the stamping of ltp/quote ticks must then use the market's clock, or every tick
    would look hours ahead. `bind()` hands it the feed once the feed exists.
    """

    def __init__(self) -> None:
        self._advertised: Callable[[], tuple[float, float, float] | None] = lambda: None

    def bind(self, advertised: Callable[[], tuple[float, float, float] | None]) -> None:
        self._advertised = advertised

    @property
    def rate(self) -> float:
        adv = self._advertised()
        return 1.0 if adv is None else adv[2]

    def now(self) -> float:
        return self.at(time.time())

    def at(self, wall_s: float) -> float:
        adv = self._advertised()
        if adv is None:
            return wall_s
        market, wall, speed = adv
        return market + (wall_s - wall) * speed


def guard_now(clock: Clock, ahead_s: float) -> Callable[[], float]:
    """The `now` for the candle engine's feed-clock guard, which allows `ahead_s` on top of it.

    The allowance is meant in the feed's real seconds: a simulated clock read off an upgrade
    response is off by the latency times the speed, so at 60x five real seconds are 300 market
    seconds. Against Kite (rate 1) this is the clock's own now.
    """
    return lambda: clock.now() + ahead_s * (clock.rate - 1.0)


WALL_CLOCK = WallClock()
