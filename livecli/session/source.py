"""Where a live session's ticks come from: Kite itself, or the built-in stand-in.

The policy is written once, in `choose_source`, and every command that needs a source (`stream`,
`instruments`, `config`'s report) asks it: with any Kite credential configured
(`Settings.kite_configured`: an api_key, an api_secret or an access token), "auto" means Kite,
and a missing or expired access token stops the session before it connects (AuthError, the
`livecli login` advice). Only with no Kite credential at all does "auto" start the stand-in in
this process, which the session reaches through exactly the same connection code it uses for
Kite; the choice then carries a note that the caller shows the user once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livecli.errors import UsageError
from livecli.kite.protocol import LOGIN_ADVICE

if TYPE_CHECKING:
    from livecli.config import Settings

KITE = "KITE"
SIMULATED = "SIMULATED"
SOURCES = ("auto", "kite", "sim")
# Shown once (e.g. `livecli: note: ...` on stderr) when "auto" chose the simulated market.
SIMULATED_NOTE = (
    "no Kite credentials configured: using the simulated market "
    f"(set [kite] api_key and api_secret, then {LOGIN_ADVICE}, to use Kite)"
)


@dataclass(frozen=True, slots=True)
class SourceChoice:
    """What `choose_source` decided: KITE or SIMULATED, and the note to show if it fell back."""

    name: str
    note: str | None = None  # set only when "auto" chose SIMULATED

    @property
    def simulated(self) -> bool:
        return self.name == SIMULATED


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
    # Why this source was chosen, to be shown once: set when "auto" fell back to the simulation.
    note: str | None = None

    def close(self) -> None:
        if self.standin is not None:
            self.standin.stop()
            self.standin = None


def choose_source(kind: str | None, settings: Settings) -> SourceChoice:
    """Resolve `kind` (auto, kite, sim) to KITE or SIMULATED: livecli's one source policy."""
    k = (kind or "auto").strip().lower()
    if k not in SOURCES:
        raise UsageError(f"unknown source {kind!r}: use auto, kite or sim")
    if k == "kite" or (k == "auto" and settings.kite_configured):
        return SourceChoice(KITE)
    return SourceChoice(SIMULATED, SIMULATED_NOTE if k == "auto" else None)


def open_source(
    kind: str, settings: Settings, *, speed: float | None = None, seed: int = 1,
    sim_date: str | None = None,
    sim_start: str | None = None,
) -> Source:
    """Resolve `kind` (auto, kite, sim) into a ready Source; starts the stand-in if simulated.

    Raises AuthError (before anything connects) when the choice is Kite and there is no valid
    access token.
    """
    choice = choose_source(kind, settings)
    if choice.name == KITE:
        from livecli.kite.auth import check_token_fresh

        check_token_fresh(settings)
        return Source(KITE, settings.kite.api_key or "", settings.kite.access_token or "",
                      settings.kite.ws_url, settings.kite.api_url)
    from livecli.kite.protocol import HISTORICAL_REQUESTS_PER_S
    from livecli.sim import StandIn

    # Kite's own historical rate limit, so warm start and repair meet it here as they would there.
    standin = StandIn(seed=seed, speed=speed or 1.0, date=sim_date, start_time=sim_start,
                      history_rate_limit=HISTORICAL_REQUESTS_PER_S).start()
    return Source(SIMULATED, standin.api_key, standin.access_token, standin.ws_url,
                  standin.api_url, clock_rate=standin.speed, standin=standin,
                  market_time=standin.now, note=choice.note)
