"""The dashboard's keys: each one changes the `ViewState`, or asks the session to do something.

Runs on the key thread. Session actions that can take a while (resolving a symbol to add one
loads the instrument list) run on a short-lived thread of their own, so the keys and the frames
keep going; their result is the status message. Everything the session is asked goes through its
public methods (`subscribe_symbol`, `unsubscribe_symbol`, `add_interval`), the same ones a
strategy or a remote session has, and a refusal is shown as the one-line error the command line
would print for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from livecli.core.intervals import Interval, parse_interval
from livecli.dashboard import keys as K
from livecli.dashboard.state import (
    ADD,
    FILTER,
    NUMBER_INTERVALS,
    SORT_LABELS,
    SORTS,
    SYMBOL,
    TABLE,
    ViewState,
)
from livecli.errors import LivecliError


class ControlledSession(Protocol):
    """What the keys ask of a session (LiveSession has these; so may a remote one)."""

    intervals: tuple[Interval, ...]

    def subscribe_symbol(self, symbol: str, exchange: str = ...) -> int: ...

    def unsubscribe_symbol(self, symbol: str) -> None: ...

    def add_interval(self, interval: str | int | Interval) -> Interval: ...


MAX_PROMPT = 60


class Controls:
    """Acts on keys. `order()` is the rows' current order (tokens), as the builder last made it;
    `symbol_of(token)` the name a token is subscribed under; `on_quit` stops the stream;
    `on_change` asks for a redraw now."""

    def __init__(
        self, state: ViewState, session: ControlledSession, *,
        order: Callable[[], Sequence[int]], symbol_of: Callable[[int], str | None],
        on_quit: Callable[[], None], on_change: Callable[[], None] = lambda: None,
        exchange: str = "NSE", expand: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.state = state
        self.session = session
        self.order = order
        self.symbol_of = symbol_of
        self.on_quit = on_quit
        self.on_change = on_change
        self.exchange = exchange
        self.expand = expand or (lambda s: [s])
        self.workers: list[threading.Thread] = []

    # --- entry -------------------------------------------------------------------------------
    def __call__(self, key: str) -> None:
        st = self.state
        with st.lock:
            if key != K.CTRL_C:
                st.message = None
            if st.prompt is not None:
                self._prompt_key(key)
            elif st.help:
                if key == "q":
                    self.on_quit()
                st.help = False  # any key closes the help
            else:
                self._key(key)
        self.on_change()

    def _key(self, key: str) -> None:
        st = self.state
        if key in ("q", K.CTRL_C):
            self.on_quit()
        elif key == "?":
            st.help = True
        elif key == K.ESC:
            if st.screen == SYMBOL:
                st.screen = TABLE
            elif st.filter:
                st.filter = ""
        elif key in (K.UP, "k"):
            self._move(-1)
        elif key in (K.DOWN, "j"):
            self._move(1)
        elif key == K.PGUP:
            self._move(-max(1, st.scroll.page))
        elif key == K.PGDN:
            self._move(max(1, st.scroll.page))
        elif key in (K.HOME, "g"):
            self._move_to(0)
        elif key in (K.END, "G"):
            self._move_to(len(self.order()) - 1)
        elif key == "s":
            i = SORTS.index(st.sort)
            st.sort = SORTS[(i + 1) % len(SORTS)]
            st.message = (f"sorted by {SORT_LABELS[st.sort]}" if st.sort is not None
                          else "in the order given")
        elif key == "r":
            st.reverse = not st.reverse
            st.message = f"sort reversed ({SORT_LABELS[st.sort]})"
        elif key == "/":
            st.prompt, st.buffer = FILTER, st.filter
        elif key == "a":
            st.prompt, st.buffer = ADD, ""
        elif key == "d":
            self._remove()
        elif key == "p":
            st.paused = not st.paused
            st.message = "paused: p resumes" if st.paused else "resumed"
        elif key == "i":
            built = sorted(self.session.intervals)
            nxt = next((iv for iv in built if iv > st.interval), built[0])
            st.interval = nxt
            st.message = f"showing {nxt.name} candles"
        elif key in "1234567" and len(key) == 1:
            self._interval(NUMBER_INTERVALS[int(key) - 1])
        elif key == K.ENTER and self._selected() is not None:
            st.screen = SYMBOL

    # --- the pieces ----------------------------------------------------------------------------
    def _selected(self) -> int | None:
        st = self.state
        order = list(self.order())
        if not order:
            return None
        if st.selected not in order:
            st.selected = order[0]
        return st.selected

    def _move(self, by: int) -> None:
        order = list(self.order())
        if not order:
            return
        cur = self._selected()
        i = order.index(cur) if cur in order else 0
        self._move_to(i + by)

    def _move_to(self, i: int) -> None:
        order = list(self.order())
        if order:
            self.state.selected = order[max(0, min(len(order) - 1, i))]

    def _interval(self, name: str) -> None:
        st = self.state
        iv = parse_interval(name)
        if iv not in self.session.intervals:
            try:
                self.session.add_interval(iv)
            except LivecliError as exc:
                st.message = f"error: {exc}"
                return
            st.message = f"added {iv.name} candles (history folded from the 1-minute candles)"
        else:
            st.message = f"showing {iv.name} candles"
        st.interval = iv

    def _remove(self) -> None:
        st = self.state
        tok = self._selected()
        name = self.symbol_of(tok) if tok is not None else None
        if tok is None or name is None:
            st.message = "no symbol selected"
            return
        order = list(self.order())
        try:
            self.session.unsubscribe_symbol(name)
        except LivecliError as exc:
            st.message = f"error: {exc}"
            return
        i = order.index(tok)
        rest = [t for t in order if t != tok]
        st.selected = rest[min(i, len(rest) - 1)] if rest else None
        if st.screen == SYMBOL:
            st.screen = TABLE
        st.message = f"removed {name} (a adds it back)"

    def _prompt_key(self, key: str) -> None:
        st = self.state
        if key == K.ESC or key == K.CTRL_C:
            if st.prompt == FILTER:
                st.filter = ""
            st.prompt, st.buffer = None, ""
        elif key == K.ENTER:
            text, kind = st.buffer.strip(), st.prompt
            st.prompt, st.buffer = None, ""
            if kind == FILTER:
                st.filter = text
            elif text:
                self._add(text)
        elif key == K.BACKSPACE:
            st.buffer = st.buffer[:-1]
        elif key == K.CTRL_U:
            st.buffer = ""
        elif len(key) == 1 and len(st.buffer) < MAX_PROMPT:
            st.buffer += key
        if st.prompt == FILTER:
            st.filter = st.buffer  # the filter narrows as it is typed

    def _add(self, text: str) -> None:
        st = self.state
        try:
            names = [n for part in text.replace(",", " ").split() for n in self.expand(part)]
        except LivecliError as exc:
            st.message = f"error: {exc}"
            return
        st.message = f"adding {', '.join(names)}…"

        def work() -> None:
            added, errors = [], []
            for name in names:
                try:
                    tok = self.session.subscribe_symbol(name, self.exchange)
                except LivecliError as exc:
                    errors.append(str(exc))
                    continue
                except Exception as exc:  # the feed refused it: say so, keep the dashboard
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
                    continue
                added.append(name)
                with st.lock:
                    st.selected = tok
            with st.lock:
                st.message = ("error: " + "; ".join(errors)) if errors else \
                    f"added {', '.join(added)}"
            self.on_change()

        t = threading.Thread(target=work, name="livecli-dashboard-add", daemon=True)
        self.workers.append(t)
        t.start()
