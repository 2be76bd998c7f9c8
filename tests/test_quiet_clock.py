"""Late means late on the wire (CANDLES.md rule 9): a receiving path that fell behind, or bytes
still unread on a link, never let the clock thread move the feed's clock on and close a minute
whose ticks were already delivered.

The real receiving path (`Receiver`, the columnar engine, frames encoded and decoded by the
Kite codec) on the simulated market's clock at 60x, where one second of wall time is a minute
of market time; the stall is a frame listener that takes its time, on a second thread; the
unread bytes are a real socket pair's.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import date
from datetime import time as dtime

import pytest

from livecli.core.engine import CandleEngine
from livecli.core.timeutil import at_ist
from livecli.kite.codec import decode_frame, encode_frame, encode_full
from livecli.session.clock import MarketClock
from livecli.session.dispatch import Callbacks, Dispatcher
from livecli.session.receiver import Listeners, Receiver
from livecli.session.store import NoStore

# Every test on both of the engine's paths: numpy, and the compiled kernel.
pytestmark = pytest.mark.usefixtures("engine_kernel")

INFY = 408065
DAY = date(2025, 1, 6)


def at(h: int, m: int, s: float = 0.0) -> float:
    return at_ist(DAY, dtime(h, m)) + s


def frame(price: float, volume: int, ts: float, received_at: float):
    pkt = encode_full(INFY, price, 1, price, volume, 0, 0, price, price, price, price, int(ts),
                      0, 0, 0, int(ts), [], [])
    return decode_frame(encode_frame([pkt]), received_at)


def receiver(listeners: Listeners) -> tuple[Receiver, CandleEngine]:
    engine = CandleEngine()
    clock = MarketClock(lambda: at(10, 0, 50), 60.0)
    rx = Receiver(threading.RLock(), engine, NoStore(), clock, listeners,
                  Dispatcher(Callbacks(), lambda *a: {}), record=False, exchange_times=True)
    return rx, engine


def test_a_slow_frame_does_not_make_the_next_one_late():
    started, release = threading.Event(), threading.Event()

    def slow(frame, received_at):  # the receiving path stuck on this frame
        if len(frame) and frame.last_price[0] == 100.0:
            started.set()
            assert release.wait(10)

    rx, engine = receiver(Listeners(frames=[slow]))
    wall = time.time() - 3  # it arrived three wall seconds (three market minutes) ago
    worker = threading.Thread(target=rx.on_frame, args=(frame(100.0, 10, at(10, 0, 50), wall),
                                                        wall))
    worker.start()
    assert started.wait(10)
    # The clock thread looks while the receiving path is on it: not quiet.
    rx.advance_if_quiet(time.time())
    release.set()
    worker.join(10)
    # Just finished: the frame queued behind it was delivered long ago; still not quiet.
    rx.advance_if_quiet(time.time())
    assert engine.clock == at(10, 0, 50)
    rx.on_frame(frame(101.0, 20, at(10, 0, 55), wall + 0.1), time.time())
    assert engine.counters.late == 0
    assert engine.forming(INFY).volume == 10 and engine.forming(INFY).close == 101.0


def test_the_clock_waits_while_bytes_wait_unread_on_a_link():
    rx, engine = receiver(Listeners())
    a, b = socket.socketpair()
    try:
        def unread() -> bool:
            import select

            return bool(select.select([b], [], [], 0)[0])

        rx.unread = unread
        wall = time.time()
        rx.on_frame(frame(100.0, 10, at(10, 0, 50), wall), wall)
        a.sendall(b"\x00\x01")  # a frame the link delivered, not read yet
        rx.advance_if_quiet(wall + 5)
        assert engine.clock == at(10, 0, 50) and not engine.history(INFY)
        b.recv(16)  # read: and nothing came after it for 5 s: the feed is quiet
        rx.advance_if_quiet(wall + 5)
        assert engine.clock > at(10, 1, 2)
        assert [c.close for c in engine.history(INFY)] == [100.0]
    finally:
        a.close()
        b.close()
