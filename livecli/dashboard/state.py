"""What the person at the dashboard has chosen: sort, filter, selection, interval, screen.

Plain data, changed by `controls.Controls` on the key thread and read by the builder on the
dashboard thread; every change is made under `lock`, and the builder copies what it needs under
it, so a frame never sees half a change. `Scroll` is the one piece the renderer writes back: how
many rows the terminal shows (PgUp/PgDn move by that) and which row is at the top.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from livecli.core.intervals import Interval

# The sort columns `s` cycles through; None is the order the symbols were given in.
SORTS: tuple[str | None, ...] = (None, "symbol", "chg", "volume", "ticks", "age")
SORT_LABELS = {None: "as given", "symbol": "symbol", "chg": "chg%", "volume": "volume",
               "ticks": "ticks", "age": "last-tick age"}
# The intervals keys 1..7 choose (Kite's own chart intervals); one not built yet is added.
NUMBER_INTERVALS = ("1min", "3min", "5min", "10min", "15min", "30min", "60min")

TABLE, SYMBOL = "table", "symbol"
FILTER, ADD = "filter", "add"


@dataclass(slots=True)
class Scroll:
    """The table's window: `top` row shown and `page` rows that fit (set by the renderer)."""

    top: int = 0
    page: int = 10


@dataclass(slots=True)
class ViewState:
    interval: Interval
    sort: str | None = None
    reverse: bool = False
    filter: str = ""
    selected: int | None = None  # instrument token of the selected row
    screen: str = TABLE  # TABLE or SYMBOL (the selected symbol's view)
    help: bool = False
    paused: bool = False
    prompt: str | None = None  # FILTER or ADD while a line is being typed
    buffer: str = ""
    message: str | None = None  # the last action's result, shown until the next key
    scroll: Scroll = field(default_factory=Scroll)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
