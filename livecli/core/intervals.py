"""Candle intervals: any whole number of minutes, with Kite's names and short forms as aliases.

`parse_interval("10min")`, `parse_interval("10minute")`, `parse_interval("1h")` all give an
`Interval`. Whether an interval fits in a session depends on the exchange: see
`livecli.core.sessions.Session.check_interval`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from livecli.errors import IntervalError

NAMED_MINUTES = (1, 3, 5, 10, 15, 30, 60)

ACCEPTED_FORMS = (
    "1min, 3min, 5min, 10min, 15min, 30min, 60min or any whole number of minutes such as 2min "
    "or 45min; Kite's names minute, 5minute, 60minute; short forms 1m, 5m, 1h"
)

_PATTERN = re.compile(
    r"^\s*(?:(?P<n>\d+)\s*(?P<unit>minutes?|mins?|m|hours?|hrs?|h)?|(?P<word>minute))\s*$",
    re.IGNORECASE,
)


@total_ordering
@dataclass(frozen=True, slots=True)
class Interval:
    """A candle length in whole minutes."""

    minutes: int

    def __post_init__(self) -> None:
        if not isinstance(self.minutes, int) or self.minutes < 1:
            raise IntervalError(f"interval must be a whole number of minutes >= 1, got {self.minutes!r}")

    @property
    def seconds(self) -> int:
        return self.minutes * 60

    @property
    def name(self) -> str:
        """The canonical name, e.g. ``5min``."""
        return f"{self.minutes}min"

    @property
    def kite_name(self) -> str:
        """Kite's historical-API name, e.g. ``minute``, ``5minute``."""
        return "minute" if self.minutes == 1 else f"{self.minutes}minute"

    @property
    def is_named(self) -> bool:
        return self.minutes in NAMED_MINUTES

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Interval):
            return NotImplemented
        return self.minutes < other.minutes

    def __str__(self) -> str:
        return self.name


ONE_MINUTE = Interval(1)
NAMED_INTERVALS = tuple(Interval(m) for m in NAMED_MINUTES)


def parse_interval(text: str | int | Interval) -> Interval:
    """Parse an interval as users write it; raise IntervalError listing the accepted forms."""
    if isinstance(text, Interval):
        return text
    if isinstance(text, int) and not isinstance(text, bool):
        return Interval(text)
    m = _PATTERN.match(str(text))
    if not m:
        raise IntervalError(f"unknown interval {text!r}: use {ACCEPTED_FORMS}")
    if m.group("word"):
        return Interval(1)
    n = int(m.group("n"))
    unit = (m.group("unit") or "min").lower()
    minutes = n * 60 if unit.startswith("h") else n
    if minutes < 1:
        raise IntervalError(f"interval {text!r} is empty: use {ACCEPTED_FORMS}")
    return Interval(minutes)
