"""Exchange sessions: when each exchange's continuous session opens and closes (IST).

Candles are anchored at the session open (CANDLES.md rule 2), so every candle computation needs
the session of the instrument's exchange. The defaults follow KITE.md and can be overridden
(MCX's hours, for one, change between winter and summer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time

from livecli.core.intervals import Interval
from livecli.core.timeutil import DAY_S, IST_OFFSET_S
from livecli.errors import IntervalError


@dataclass(frozen=True, slots=True)
class Session:
    """A daily session: [open, close] as seconds after IST midnight."""

    name: str
    open_s: int
    close_s: int

    @classmethod
    def from_times(cls, name: str, open_t: time, close_t: time) -> Session:
        return cls(
            name,
            open_t.hour * 3600 + open_t.minute * 60 + open_t.second,
            close_t.hour * 3600 + close_t.minute * 60 + close_t.second,
        )

    @property
    def length_s(self) -> int:
        return self.close_s - self.open_s

    def open_at(self, day: int) -> int:
        """Epoch seconds of the open on IST day number `day`."""
        return day * DAY_S - IST_OFFSET_S + self.open_s

    def close_at(self, day: int) -> int:
        return day * DAY_S - IST_OFFSET_S + self.close_s

    def check_interval(self, interval: Interval) -> None:
        """Raise IntervalError when `interval` is longer than this session."""
        if interval.seconds > self.length_s:
            raise IntervalError(
                f"interval {interval.name} is longer than the {self.name} session "
                f"({self.length_s // 60} minutes): use {self.length_s // 60}min or less"
            )

    def describe(self) -> str:
        def hm(s: int) -> str:
            return f"{s // 3600:02d}:{s % 3600 // 60:02d}"

        return f"{hm(self.open_s)}-{hm(self.close_s)} IST"


EQUITY = Session.from_times("NSE", time(9, 15), time(15, 30))
CURRENCY = Session.from_times("CDS", time(9, 0), time(17, 0))
COMMODITY = Session.from_times("MCX", time(9, 0), time(23, 30))

DEFAULT_SESSIONS: dict[str, Session] = {
    "NSE": EQUITY,
    "BSE": Session("BSE", EQUITY.open_s, EQUITY.close_s),
    "NFO": Session("NFO", EQUITY.open_s, EQUITY.close_s),
    "BFO": Session("BFO", EQUITY.open_s, EQUITY.close_s),
    "INDICES": Session("INDICES", EQUITY.open_s, EQUITY.close_s),
    "CDS": CURRENCY,
    "BCD": Session("BCD", CURRENCY.open_s, CURRENCY.close_s),
    "MCX": COMMODITY,
}

# Kite puts the segment in the low byte of every instrument token.
SEGMENT_EXCHANGES: dict[int, str] = {
    1: "NSE",
    2: "NFO",
    3: "CDS",
    4: "BSE",
    5: "BFO",
    6: "BCD",
    7: "MCX",
    8: "MCXSX",
    9: "NSE",  # indices: Kite's dump lists them under NSE (segment INDICES)
}


def exchange_of_token(token: int) -> str:
    """The exchange that lists a token, from its segment byte (indices: NSE, as Kite lists them)."""
    return SEGMENT_EXCHANGES.get(token & 0xFF, "NSE")


def session_for(exchange: str, sessions: Mapping[str, Session] | None = None) -> Session:
    """The session of `exchange`; unknown exchanges get the equity session."""
    table = sessions or DEFAULT_SESSIONS
    return table.get(exchange.upper(), table.get("NSE", EQUITY))


def is_trading_day(d: date) -> bool:
    """Weekdays. Exchange holidays are not modelled (see README, known limits)."""
    return d.weekday() < 5


def check_interval_fits(
    interval: Interval, exchanges: list[str] | None = None,
    sessions: dict[str, Session] | None = None,
) -> None:
    """Raise IntervalError unless `interval` fits in the session of every exchange given."""
    for ex in exchanges or ["NSE"]:
        session_for(ex, sessions).check_interval(interval)
