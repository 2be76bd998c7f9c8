"""Where a live session's ticks come from: Kite itself, or the built-in stand-in.

With no Kite credentials configured, `source="auto"` starts the stand-in in this process and the
session connects to it through exactly the same connection code it uses for Kite. With
credentials configured, "auto" means Kite and never falls back to simulation silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livecli.errors import UsageError

if TYPE_CHECKING:
    from livecli.config import Settings

KITE = "KITE"
SIMULATED = "SIMULATED"
SOURCES = ("auto", "kite", "sim")


@dataclass(slots=True)
class Source:
    """Credentials and endpoints for one session, and the stand-in when it is simulated."""

    name: str  # KITE or SIMULATED
    api_key: str
    access_token: str
    ws_url: str
    api_url: str
    clock_rate: float = 1.0  # simulated seconds per wall second (the stand-in's --speed)
    standin: Any = None
    market_time: Callable[[], float] | None = None  # the simulated market's clock, if any

    def close(self) -> None:
        if self.standin is not None:
            self.standin.stop()
            self.standin = None


def open_source(
    kind: str, settings: Settings, *, speed: float | None = None, seed: int = 1,
    sim_date: str | None = None,
) -> Source:
    """Resolve `kind` (auto, kite, sim) into a ready Source; starts the stand-in if simulated."""
    k = (kind or "auto").lower()
    if k not in SOURCES:
        raise UsageError(f"unknown source {kind!r}: use auto, kite or sim")
    if k == "auto":
        k = "kite" if settings.has_credentials else "sim"
    if k == "kite":
        from livecli.kite.auth import check_token_fresh

        check_token_fresh(settings)
        return Source(KITE, settings.kite.api_key or "", settings.kite.access_token or "",
                      settings.kite.ws_url, settings.kite.api_url)
    from livecli.sim import StandIn

    standin = StandIn(seed=seed, speed=speed or 1.0, date=sim_date).start()
    return Source(SIMULATED, standin.api_key, standin.access_token, standin.ws_url,
                  standin.api_url, clock_rate=standin.speed, standin=standin,
                  market_time=standin.now)
