"""NATS subjects of the feed, and the message ids that make closed candles exactly-once.

Subjects (see README, "A feed for several machines"):

* `livecli.ticks.<EXCHANGE>.<SYMBOL>`: every tick;
* `livecli.candles.<INTERVAL>.<EXCHANGE>.<SYMBOL>`: forming-candle updates and closes;
* `livecli.status`: the publishing session's status, about once a second.

A subject is tokens separated by `.`; a token cannot hold whitespace, `.`, `*` or `>` (the last
two are wildcards). Each such character of a symbol (and any control character) becomes `_`:
`NIFTY 50` -> `NIFTY_50`, `BAJAJ-AUTO` stays, `M&M` stays. Two symbols differing only there
would share a subject; the messages still carry the real `symbol` and `instrument_token`.
"""

from __future__ import annotations

import re

PREFIX = "livecli"
STATUS_SUBJECT = f"{PREFIX}.status"
TICKS = f"{PREFIX}.ticks"
CANDLES = f"{PREFIX}.candles"
ALL_SUBJECTS = f"{PREFIX}.>"  # what the stream captures

_BAD = re.compile(r"[\s.*>\x00-\x1f\x7f]")


def token(text: str) -> str:
    """`text` as one subject token: whitespace, `.`, `*`, `>` and control characters -> `_`."""
    return _BAD.sub("_", text) or "_"


def tick_subject(exchange: str, symbol: str) -> str:
    return f"{TICKS}.{token(exchange)}.{token(symbol)}"


def candle_subject(interval: str, exchange: str, symbol: str) -> str:
    return f"{CANDLES}.{token(interval)}.{token(exchange)}.{token(symbol)}"


def candle_msg_id(instrument_token: int, interval: str, start: float, origin: str = "live"
                  ) -> str:
    """A closed candle's `Nats-Msg-Id`: the same candle always gets the same id, so a publisher
    restarted within the stream's duplicate window never stores a closed candle twice. The
    origin is part of it: the candle Kite's history gives for a minute (the one in progress at
    start, or one a disconnect spoiled) replaces the live one, and must not be de-duplicated
    away as a repeat of it."""
    return f"c:{instrument_token}:{interval}:{int(start)}:{origin}"


def symbol_filters(kind: str, symbol: str, default_exchange: str | None = None) -> str:
    """The subject filter of one consumer's SYMBOL (`INFY`, `NSE:INFY`) for `kind` (ticks or
    candles): any exchange unless the symbol names one."""
    exch, _, sym = symbol.rpartition(":")
    exch = exch or default_exchange or "*"
    ex = exch if exch == "*" else token(exch.upper())
    sy = token(sym.strip().upper())
    if kind == "ticks":
        return f"{TICKS}.{ex}.{sy}"
    return f"{CANDLES}.*.{ex}.{sy}"
