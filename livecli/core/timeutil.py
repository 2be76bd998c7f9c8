"""Time as livecli sees it: epoch-second instants, shown as Asia/Kolkata (+05:30).

Kite's packets carry epoch seconds, which are absolute instants. kiteconnect turns them into
naive local datetimes, which is wrong on any machine not set to IST; livecli never consults the
host's zone. India has no daylight saving, so IST is a fixed offset and day arithmetic is exact.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")
IST_OFFSET_S = 19_800
DAY_S = 86_400


def to_ist(epoch_s: float) -> datetime:
    """The instant `epoch_s` as an aware datetime in +05:30."""
    return datetime.fromtimestamp(epoch_s, IST)


def iso(epoch_s: float) -> str:
    """ISO 8601 with +05:30, to the second when whole, else to the microsecond."""
    if epoch_s == int(epoch_s):
        return to_ist(epoch_s).isoformat(timespec="seconds")
    return to_ist(epoch_s).isoformat(timespec="microseconds")


def ist_day(epoch_s: float) -> int:
    """The IST calendar day of an instant, as days since 1970-01-01."""
    return math.floor((epoch_s + IST_OFFSET_S) / DAY_S)


def day_start(day: int) -> int:
    """Epoch seconds of 00:00 IST on day number `day`."""
    return day * DAY_S - IST_OFFSET_S


def day_of(d: date) -> int:
    """Day number of a calendar date."""
    return (d - date(1970, 1, 1)).days


def date_of(day: int) -> date:
    """Calendar date of a day number."""
    return date(1970, 1, 1) + timedelta(days=day)


def epoch(dt: datetime) -> float:
    """Epoch seconds of an aware datetime; a naive one is taken as IST, never as host time."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=IST)
    return dt.timestamp()


def at_ist(d: date, t: time) -> float:
    """Epoch seconds of wall time `t` in IST on date `d`."""
    return epoch(datetime.combine(d, t, IST))


def parse_instant(text: str) -> float:
    """Parse ISO 8601 (an offset, or IST when none) or epoch seconds into epoch seconds."""
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    # Kite writes offsets as +0530; fromisoformat (3.11) accepts both forms.
    return epoch(datetime.fromisoformat(s))


def today_ist(now_s: float) -> date:
    """The IST date at instant `now_s`."""
    return date_of(ist_day(now_s))
