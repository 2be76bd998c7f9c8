"""The publishers' loss model (livecli/bus/room.py): closed candles are shed last, and every
shed message is counted. Both publishers admit through it, so it is tested once, here."""

from __future__ import annotations

import threading

from livecli.bus.room import Room


def test_ticks_fill_three_quarters_closed_candles_the_rest_and_every_drop_is_counted():
    room = Room(100)
    assert room.ticks(70) and not room.ticks(10)  # 80 > 75: the whole frame is shed
    assert (room.held, room.ticks_dropped) == (70, 10)
    assert not room.other(10) and room.ticks_dropped == 10  # updates: shed, not counted
    assert room.candles(30)  # closed candles still find room: up to the whole buffer
    assert not room.candles(1) and room.candles_dropped == 1
    room.release(50)
    assert room.held == 50 and room.ticks(25) and not room.ticks(1)
    room.hold(5)  # a candle sent again after no ack: held whatever the bound
    assert room.held == 80
    room.shed_ticks(3)
    room.shed_candles(2)
    assert (room.ticks_dropped, room.candles_dropped) == (14, 3)


def test_admission_from_many_threads_never_overfills():
    room = Room(1000)
    admitted = [0] * 8

    def produce(k: int) -> None:
        for _ in range(500):
            if room.ticks(3):
                admitted[k] += 3

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert room.held == sum(admitted) <= room.tick_room == 750
    assert room.held + room.ticks_dropped == 8 * 500 * 3
