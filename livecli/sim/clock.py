"""The stand-in's simulated clock: a trading day's wall time, running at `speed` x real time.

Tests cannot wait for real minutes to pass, and a developer trying livecli in the evening still
wants a market that trades. So the stand-in keeps its own clock: it starts at the equity open
(09:15 IST) of a chosen trading day and runs `speed` times faster than the real one.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time, timedelta

from livecli.core.sessions import EQUITY
from livecli.core.timeutil import at_ist, today_ist
from livecli.errors import UsageError

DEFAULT_START = time(EQUITY.open_s // 3600, EQUITY.open_s % 3600 // 60)


def parse_sim_date(text: str | date | None, now_s: float | None = None) -> tuple[date, str]:
    """The simulated trading date and a note about how it was chosen.

    None means today in IST, moved back to Friday on a weekend (there is no session to show).
    A date that is given is used as it is, weekend or not.
    """
    if isinstance(text, date):
        return text, f"simulating {text.isoformat()} (given)"
    if text is None or str(text).strip().lower() in ("", "today"):
        today = today_ist(_time.time() if now_s is None else now_s)
        if today.weekday() >= 5:
            friday = today - timedelta(days=today.weekday() - 4)
            return friday, (f"today ({today.isoformat()}) is a weekend: simulating the previous "
                            f"Friday, {friday.isoformat()}")
        return today, f"simulating today, {today.isoformat()}"
    try:
        d = date.fromisoformat(str(text).strip())
    except ValueError:
        raise UsageError(f"invalid --date {text!r}: use YYYY-MM-DD, e.g. 2025-12-10") from None
    return d, f"simulating {d.isoformat()} (given)"


def parse_start(text: str | time | None) -> time:
    """A time of day HH:MM[:SS] (IST) at which the simulated clock starts."""
    if text is None:
        return DEFAULT_START
    if isinstance(text, time):
        return text
    try:
        return time.fromisoformat(str(text).strip())
    except ValueError:
        raise UsageError(f"invalid start time {text!r}: use HH:MM or HH:MM:SS (IST)") from None


@dataclass
class SimClock:
    """Simulated epoch seconds: `start` on `day` (IST) plus `speed` x the real time elapsed."""

    day: date
    speed: float = 1.0
    start: time = DEFAULT_START
    real: Callable[[], float] = _time.monotonic

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise UsageError(f"speed must be above 0, got {self.speed}")
        self.start_epoch = at_ist(self.day, self.start)
        self._real0 = self.real()

    def now(self) -> float:
        return self.start_epoch + (self.real() - self._real0) * self.speed

    def real_seconds_until(self, sim_epoch: float) -> float:
        """Real seconds until the simulated clock reaches `sim_epoch` (<= 0 if passed)."""
        return (sim_epoch - self.now()) / self.speed
