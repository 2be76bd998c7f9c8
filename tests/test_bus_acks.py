"""Closed candles on a real JetStream server: a minute's burst, each acked once, kept until it is.

At a minute's end every instrument's candle closes at once. The publisher sends them in
batches with their `Nats-Msg-Id` and its own ack inbox (nats-py's `publish_async`, bounded
with `wait_stall`, took ~200 us a candle, so 9000 held the publisher two seconds while the
ticks behind them aged and were shed), holds at most MAX_ACKS_PENDING unacked, and sends a candle again until its ack comes:
also when the stream is removed under it. A message the server would refuse for its size (it
drops the link for one) is skipped and counted, never sent. Skipped where `nats-server` is not
installed.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from livecli.bus import publisher as publisher_mod
from livecli.bus.options import PublishOptions
from livecli.core.candles import Candle
from livecli.core.closed import ClosedCandles
from livecli.session.publish import CANDLE_CHUNK, Publication
from tests.nats_server import closed_candle_key, nats_server, needs_nats, read_stream

__all__ = ["nats_server"]
pytestmark = [needs_nats]


def _minute(n: int, start: int = 1_765_338_300) -> ClosedCandles:
    """`n` instruments' 1-minute candles closing together, as the engine hands them over."""
    candles = [Candle(instrument_token=1000 + i, interval_min=1, start=start, open=100.0,
                      high=101.0, low=99.5, close=100.0 + i / 100, volume=10 * i, oi=None,
                      ticks=3, closed=True) for i in range(n)]
    batch = ClosedCandles.from_candles(candles, np.arange(n), 1)
    batch.symbols = [f"SYM{i}" for i in range(n)]
    batch.exchanges = ["NSE"] * n
    return batch


def _publication(url: str) -> Publication:
    # The session's side without a session: its candle listener and encoder, the publisher
    # on a thread of this process.
    pub = Publication(None, PublishOptions(url=url, buffer=100_000),  # type: ignore[arg-type]
                      in_process=True)
    pub.publisher.start()
    return pub


def _until(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def _closed_in_stream(url: str) -> list[tuple[int, str, str]]:
    return [closed_candle_key(d) for _, d, _ in read_stream(url, "livecli.candles.>")
            if d.get("closed")]


def test_a_minutes_closes_are_each_acked_once_and_a_second_send_is_a_duplicate(nats_server):
    n = 3000
    pub = _publication(nats_server.url)
    nats = pub.publisher
    try:
        pub._on_candles(_minute(n))
        assert _until(lambda: nats.candles_published == n), nats.stats()
        assert nats.stats().acks_pending == 0 and nats.candles_duplicate == 0
        # The same candles again (a publisher restarted within the duplicate window):
        # JetStream keeps the first, and the acks say so.
        pub._on_candles(_minute(n))
        assert _until(lambda: nats.candles_duplicate == n), nats.stats()
        assert nats.candles_published == n and nats.stats().candles_dropped == 0
    finally:
        assert pub.publisher.close(timeout=10)
    keys = _closed_in_stream(nats_server.url)
    assert len(keys) == n and len(set(keys)) == n


def test_at_most_max_acks_pending_wait_for_an_ack_and_the_rest_wait_their_turn(
        nats_server, monkeypatch):
    cap = 400
    monkeypatch.setattr(publisher_mod, "MAX_ACKS_PENDING", cap)
    n = 4000
    pub = _publication(nats_server.url)
    nats = pub.publisher
    seen = [0]
    try:
        pub._on_candles(_minute(n))
        deadline = time.monotonic() + 30
        while nats.candles_published < n and time.monotonic() < deadline:
            seen[0] = max(seen[0], len(nats._acks))
            time.sleep(0.001)
        assert nats.candles_published == n, nats.stats()
    finally:
        assert pub.publisher.close(timeout=10)
    # A queued item of up to CANDLE_CHUNK candles is taken whole once there is room.
    assert 0 < seen[0] < cap + CANDLE_CHUNK
    assert len(set(_closed_in_stream(nats_server.url))) == n


def test_a_stream_removed_under_the_publisher_is_made_again_and_loses_no_closed_candle(
        nats_server):
    import nats as nats_py

    pub = _publication(nats_server.url)
    publisher = pub.publisher
    try:
        pub._on_candles(_minute(500))
        assert _until(lambda: publisher.candles_published == 500), publisher.stats()

        async def remove() -> None:
            nc = await nats_py.connect(nats_server.url)
            try:
                await nc.jetstream().delete_stream("LIVECLI")
            finally:
                await nc.close()

        asyncio.run(remove())
        pub._on_candles(_minute(500, start=1_765_338_360))
        # Refused ("no responders"), the stream made again, and sent at once: well inside
        # the ack timeout, so this is not the slow path of a candle that was never acked.
        assert _until(lambda: publisher.candles_published == 1000,
                      timeout=publisher_mod.ACK_TIMEOUT_S - 1), publisher.stats()
        assert publisher.stats().acks_pending == 0
    finally:
        assert pub.publisher.close(timeout=10)
    keys = _closed_in_stream(nats_server.url)
    assert len(keys) == 500 and {k[2] for k in keys} == {"2025-12-10T09:16:00+05:30"}


def test_a_closed_candle_over_the_servers_max_payload_is_counted_not_sent(nats_server,
                                                                        monkeypatch):
    n = 3
    pub = _publication(nats_server.url)
    publisher = pub.publisher
    try:
        monkeypatch.setattr(publisher._nc, "_max_payload", 50)  # any candle's line is longer
        pub._on_candles(_minute(n))
        assert _until(lambda: publisher.candles_dropped == n), publisher.stats()
        assert publisher.candles_published == 0 and "max_payload" in publisher.last_error
        assert publisher._nc.is_connected  # the link was not dropped by the server
    finally:
        pub.publisher.close(timeout=5)


def test_a_tick_over_the_servers_max_payload_is_counted_as_shed_and_the_rest_go(
        nats_server, monkeypatch):
    from livecli.bus.publisher import TICKS, TextBatch

    class Encoder:  # a frame's ticks as the session's encoder gives them: one long line
        def __call__(self, kind, item, at):
            assert kind == TICKS
            return TextBatch([f"livecli.ticks.NSE.S{i}" for i in range(item)],
                             ['{"t": 1}\n' if i != 2 else '{"t": "' + "x" * 200 + '"}\n'
                              for i in range(item)])

    pub = publisher_mod.NatsPublisher(PublishOptions(url=nats_server.url, buffer=1000),
                                      Encoder()).start()
    try:
        monkeypatch.setattr(pub._nc, "_max_payload", 100)
        pub.put_ticks(5, 5, time.time())
        assert _until(lambda: pub.ticks_published + pub.ticks_dropped == 5), pub.stats()
        assert (pub.ticks_published, pub.ticks_dropped) == (4, 1)
        assert "max_payload" in (pub.last_error or "") and pub._nc.is_connected
    finally:
        assert pub.close(timeout=5)
    got = read_stream(nats_server.url, "livecli.ticks.>")
    assert sorted(subject for subject, _, _ in got) == [f"livecli.ticks.NSE.S{i}"
                                                        for i in (0, 1, 3, 4)]
