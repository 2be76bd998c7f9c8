"""The session's clock thread: candles close on time while the feed is quiet; status each second.

An illiquid instrument's candle must close when its minute ends, not at its next tick
(CANDLES.md rule 8), and a feed that goes quiet must still close the minute. So a thread wakes
every CLOCK_EVERY_S, and once no tick has come for a while asks the receiving thread to move the
feed's clock on by the session's clock. The move itself runs there (`post`), behind the frames
the links already delivered: a receiver that fell behind is not a quiet feed, and closing a
minute under its backlog would make that backlog late (rule 9). About once a second it also has
the status published (`each_second`: to the store and to the status listeners, JSON lines). A
listener that raises never stops the clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livecli.session.receiver import Receiver

log = logging.getLogger("livecli.session")

STATUS_EVERY_S = 1.0
CLOCK_EVERY_S = 0.25


class ClockThread:
    """Queues `receiver.advance_if_quiet` and runs `each_second()` until `stop()`.

    `post(fn)` runs `fn` on the receiving thread (the feed's `call_soon`).
    """

    def __init__(self, receiver: Receiver, each_second: Callable[[], None],
                 post: Callable[[Callable[[], None]], None]) -> None:
        self._receiver = receiver
        self._each_second = each_second
        self._post = post
        self._asked = threading.Event()  # one question in the receiving thread's queue at most
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="livecli-clock", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not threading.current_thread() and self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _loop(self) -> None:
        next_status = 0.0
        while not self._stopping.wait(CLOCK_EVERY_S):
            now = time.time()
            if not self._asked.is_set() and self._receiver.looks_quiet(now):
                self._asked.set()
                try:
                    self._post(self._advance)
                except Exception as exc:  # the receiving thread is gone: nothing to advance
                    self._asked.clear()
                    log.debug("clock advance: %s", exc)
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                try:
                    self._each_second()
                except Exception as exc:  # a broken listener must not stop the clock
                    log.debug("status publish: %s", exc)

    def _advance(self) -> None:
        try:
            self._receiver.advance_if_quiet()
        except Exception:  # a fault of ours: said, and the next quiet second asks again
            log.exception("closing candles on a quiet feed failed")
        finally:
            self._asked.clear()
