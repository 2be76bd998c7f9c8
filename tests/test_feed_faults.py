"""KiteFeed (kiteconnect's real KiteTicker underneath) against a server that misbehaves.

The stand-in only sends what Kite sends; these faults need a server of the tests' own
(tests/bad_server.py, loopback): frames cut short or with a count larger than what follows,
megabytes of error text, a message over the size limit, ticks of tokens never subscribed,
upgrade headers, a link that accepts and then says nothing, a handshake that never ends.
Candles are compared with the ticks the server actually sent (tests/oracle.py), not with
what livecli delivered. Waits are on conditions with deadlines; nothing sleeps.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from datetime import time as dtime
from typing import Any

import pytest

from livecli.core.engine import CandleEngine
from livecli.core.timeutil import at_ist
from livecli.kite.codec import encode_frame, encode_full, encode_ltp
from livecli.kite.connection import CONNECTED, CONNECTING, RECONNECTING, KiteFeed
from livecli.kite.protocol import (
    MAX_MESSAGE_BYTES,
    STANDIN_CLOCK_HEADER,
    STANDIN_HEADER,
    STANDIN_SPEED_HEADER,
)
from tests.bad_server import BadServer, Conn
from tests.oracle import OTick, oracle
from tests.streams import DAY, as_dict

API_KEY = "test-key"
TOKEN = "test-access-token-0123456789abcdef"
A, B, C = (1001 << 8) | 1, (1002 << 8) | 1, (1003 << 8) | 1  # NSE equities (segment 1)
STRANGER = (4242 << 8) | 1  # a token nobody subscribes to
SENTINEL = (9999 << 8) | 1  # its arrival tells the test every earlier message was handled
T0 = at_ist(DAY, dtime(10, 0))


class Rec:
    """What a feed handed on: decoded columns per frame, fed to a real candle engine."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.tokens: list[int] = []
        self.prices: list[float] = []
        self.texts: list[Any] = []
        self.states: list[str] = []
        self.reasons: list[str] = []  # last_error as each reconnect began
        self.engine = CandleEngine()
        self.closed: list[Any] = []
        self.engine.on_close(self.closed.append)

    def on_frame(self, frame: Any, received_at: float) -> None:
        cols = frame.columns()
        with self.cond:
            self.tokens += cols.token
            self.prices += cols.price
            self.engine.update_columns(cols)
            self.cond.notify_all()

    def on_text(self, message: Any) -> None:
        with self.cond:
            self.texts.append(message)
            self.cond.notify_all()

    def on_state(self, status: Any) -> None:
        with self.cond:
            self.states.append(status.state)
            if status.state == RECONNECTING:
                self.reasons.append(status.last_error or "")
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout=timeout)

    def saw(self, token: int, timeout: float = 5.0) -> bool:
        return self.wait(lambda: token in self.tokens, timeout)

    def candles(self) -> dict:
        with self.cond:
            return as_dict(self.closed + self.engine.close_all())


@pytest.fixture
def feeds() -> Iterator[list[KiteFeed]]:
    made: list[KiteFeed] = []
    yield made
    for f in made:
        f.stop()


def make(feeds: list[KiteFeed], url: str, rec: Rec, **kw: Any) -> KiteFeed:
    f = KiteFeed(API_KEY, TOKEN, url, rec.on_frame, on_text=rec.on_text, on_state=rec.on_state,
                 **kw)
    feeds.append(f)
    return f


def full_ticks(token: int, n: int) -> tuple[list[bytes], list[OTick]]:
    """`n` full packets of one minute's trades, and the ticks they carry (what was sent).

    The open (1000.00) and the low (999.50) come first, so losing the frame's early packets
    shows in the candle.
    """
    moves = [0.0, -0.5, 0.25, 0.75, 0.5, 1.25, 1.0, 0.8, 0.6, 0.95]
    packets, sent = [], []
    hi = lo = 1000.0
    for i in range(n):
        price = round(1000.0 + moves[i % len(moves)] + 0.05 * (i // len(moves)), 2)
        hi, lo = max(hi, price), min(lo, price)
        ts, volume = int(T0) + i, 5000 + 10 * i
        packets.append(encode_full(token, price, 10, price, volume, 1, 1, 1000.0, hi, lo, 998.0,
                                   ts, 0, 0, 0, ts, [], []))
        sent.append(OTick(token, float(ts), price, volume, hi, lo, 0))
    return packets, sent


def sentinel_frame() -> bytes:
    return encode_frame([encode_ltp(SENTINEL, 1.0)])


# -- a frame that is cut short costs only its broken packet ---------------------------------------


@pytest.mark.parametrize("damage", ["last_packet_cut", "count_too_large"])
def test_a_damaged_frame_keeps_every_complete_packet(feeds: list[KiteFeed], damage: str) -> None:
    packets, sent = full_ticks(A, 20)
    whole = encode_frame(packets)
    if damage == "last_packet_cut":
        frame, kept = whole[:-5], sent[:19]  # the 20th packet loses its last 5 bytes
    else:
        frame, kept = struct.pack(">H", 21) + whole[2:], sent  # claims 21, carries 20

    async def script(conn: Conn) -> None:
        await conn.subscribed([A, SENTINEL])
        await conn.send(frame)
        await conn.send(sentinel_frame())
        await conn.heartbeats()

    rec = Rec()
    with BadServer(script) as srv:
        feed = make(feeds, srv.url, rec)
        feed.start({A: "full", SENTINEL: "ltp"})
        assert rec.saw(SENTINEL)
        st = feed.status()
    with rec.cond:
        got = [(t, p) for t, p in zip(rec.tokens, rec.prices, strict=True) if t == A]
    assert got == [(t.token, t.price) for t in kept]
    assert st.malformed == 1 and st.state == CONNECTED and st.reconnects == 0
    assert "malformed" in (st.last_error or "")
    # The candle is the one the sent ticks make: right open, right low, every tick counted.
    want = oracle(kept, [1])
    got_candles = {k: v for k, v in rec.candles().items() if k[0] == A}
    assert got_candles == want
    (candle,) = want.values()
    assert (candle[0], candle[2], candle[6]) == (1000.0, 999.5, len(kept))  # open, low, ticks


# -- server text is bounded; last_error clears once the link recovers ------------------------------


def test_megabytes_of_error_text_are_cut_and_cleared_on_recovery(
        feeds: list[KiteFeed], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    huge = "E" * (2 * 1024 * 1024)

    async def script(conn: Conn) -> None:
        await conn.subscribed([SENTINEL])
        if conn.index == 0:
            await conn.send(json.dumps({"type": "error", "data": huge}))
            await conn.send(sentinel_frame())
            await conn.gate("drop")
            await conn.ws.close()  # and the client reconnects
            return
        await conn.send(sentinel_frame())
        await conn.heartbeats()

    rec = Rec()
    with BadServer(script) as srv:
        feed = make(feeds, srv.url, rec, reconnect_initial_s=0.05)
        feed.start({SENTINEL: "ltp"})
        assert rec.saw(SENTINEL)
        st = feed.status()
        assert st.text_messages == 1 and st.last_error is not None
        assert st.last_error.startswith("Kite error message: EEE") and len(st.last_error) <= 220
        assert len(str(st)) < 2000  # the status line carries no megabytes
        with rec.cond:
            (message,) = rec.texts
        assert message.type == "error" and len(message.data) <= 200
        srv.open_gate("drop")
        assert feed.wait_state(lambda s: s.reconnects >= 1 and s.state == CONNECTED, 5)
        st = feed.status()
        assert st.last_error is None and all(lk.last_error is None for lk in st.links)
    assert RECONNECTING in rec.states
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("livecli")]
    assert ours and max(len(m) for m in ours) < 1000


def test_a_link_that_never_delivered_a_message_is_connecting(feeds: list[KiteFeed]) -> None:
    async def script(conn: Conn) -> None:
        await conn.gate("speak")  # the upgrade is done, and then: nothing
        await conn.heartbeats()

    rec = Rec()
    with BadServer(script) as srv:
        feed = make(feeds, srv.url, rec)
        feed.start({A: "quote"})
        assert srv.wait(lambda: srv.accepted == 1)
        # Bounded negative check: opened, but silent, is not connected.
        assert not feed.wait_connected(0.6)
        st = feed.status()
        assert st.state == CONNECTING and st.connected == 0 and st.links[0].state == CONNECTING
        srv.open_gate("speak")
        assert feed.wait_connected(3)
        assert feed.status().heartbeats >= 1
    assert rec.states[:2] == [CONNECTING, CONNECTED]


def test_a_handshake_time_out_says_so(feeds: list[KiteFeed]) -> None:
    # A listening socket that never accepts: TCP connects, the upgrade is never answered.
    with socket.socket() as lsock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        port = lsock.getsockname()[1]
        rec = Rec()
        feed = make(feeds, f"ws://127.0.0.1:{port}", rec, connect_timeout_s=1.0,
                    reconnect_initial_s=5.0)
        t0 = time.monotonic()
        feed.start({A: "quote"})
        assert feed.wait_state(lambda s: s.state == RECONNECTING, 5)
        took = time.monotonic() - t0
        err = feed.status().links[0].last_error or ""
    assert "handshake timed out after 1s" in err and "aborted" not in err, err
    assert took < 3.5, took  # autobahn's time-out ended it, not livecli's later backstop


# -- a maximum message size, enforced where the client receives ---------------------------------


def test_a_message_over_the_limit_is_refused_at_its_header(feeds: list[KiteFeed]) -> None:
    async def script(conn: Conn) -> None:
        await conn.subscribed([SENTINEL])
        if conn.index == 0:
            # A binary frame header claiming one byte more than the limit, then a trickle:
            # the client must hang up on the header, not buffer (or wait for) the payload.
            conn.write_raw(b"\x82\x7f" + struct.pack(">Q", MAX_MESSAGE_BYTES + 1) + b"\x00" * 64)
            await conn.ws.wait_closed()
            return
        await conn.send(sentinel_frame())
        await conn.heartbeats()

    rec = Rec()
    with BadServer(script) as srv:
        feed = make(feeds, srv.url, rec, reconnect_initial_s=0.05)
        feed.start({SENTINEL: "ltp"})
        assert srv.wait(lambda: srv.closed >= 1, 3), "the client kept the connection"
        assert rec.saw(SENTINEL)  # ... and came back on a new one
        st = feed.status()
        with rec.cond:
            reasons = list(rec.reasons)
    assert st.reconnects == 1 and st.state == CONNECTED
    assert any(f"{MAX_MESSAGE_BYTES + 1:,} bytes" in r for r in reasons), reasons


def test_the_largest_real_kite_frame_is_received(feeds: list[KiteFeed]) -> None:
    # 65535 full packets: the most one Kite message can carry (about 12 MB).
    packets, _ = full_ticks(A, 10)
    frame = encode_frame([packets[i % 10] for i in range(0xFFFF)])
    assert 12_000_000 < len(frame) <= MAX_MESSAGE_BYTES

    async def script(conn: Conn) -> None:
        await conn.subscribed([A, SENTINEL])
        await conn.send(frame)
        await conn.send(sentinel_frame())
        await conn.heartbeats()

    rec = Rec()
    with BadServer(script) as srv:
        feed = make(feeds, srv.url, rec)
        feed.start({A: "full", SENTINEL: "ltp"})
        assert rec.saw(SENTINEL, 15)
        st = feed.status()
    assert st.reconnects == 0 and st.malformed == 0
    with rec.cond:
        assert rec.tokens.count(A) == 0xFFFF


# -- ticks of tokens never subscribed are ignored and counted ------------------------------------


def test_ticks_for_tokens_never_subscribed_are_ignored_and_counted(feeds: list[KiteFeed]) -> None:
    packets, sent = full_ticks(A, 6)
    stranger, _ = full_ticks(STRANGER, 6)
    mixed = [p for pair in zip(packets, stranger, strict=True) for p in pair]  # A, S, A, S...

    async def script(conn: Conn) -> None:
        await conn.subscribed([A, B, SENTINEL])
        await conn.send(encode_frame(mixed))
        await conn.send(encode_frame(stranger[:3]))  # nothing subscribed in this one
        await conn.unsubscribed([B])
        await conn.send(encode_frame([encode_ltp(B, 5.0), encode_ltp(B, 5.5)]))  # in flight
        await conn.send(sentinel_frame())
        await conn.heartbeats()

    rec = Rec()
    frames: list[int] = []
    with BadServer(script) as srv:
        def on_frame(frame: Any, at: float) -> None:
            frames.append(len(frame))
            rec.on_frame(frame, at)

        feed = KiteFeed(API_KEY, TOKEN, srv.url, on_frame, on_state=rec.on_state)
        feeds.append(feed)
        feed.start({A: "full", B: "ltp", SENTINEL: "ltp"})
        assert srv.wait(lambda: srv.accepted == 1)
        assert feed.wait_connected(5)
        feed.unsubscribe([B])
        assert rec.saw(SENTINEL)
        st = feed.status()
    with rec.cond:
        assert STRANGER not in rec.tokens and B not in rec.tokens
        assert [t for t in rec.tokens if t == A] == [A] * 6
    assert frames == [6, 1]  # the frame of strangers only, and B's, never reached the handler
    assert st.unsubscribed_ticks == 6 + 3 + 2
    assert st.ticks == 6 + 1
    assert {k: v for k, v in rec.candles().items() if k[0] == A} == oracle(sent, [1])


# -- the stand-in's clock, read from the upgrade response ----------------------------------------


@pytest.mark.parametrize("headers, want", [
    ({STANDIN_HEADER: "1", STANDIN_CLOCK_HEADER: "1736138700.25", STANDIN_SPEED_HEADER: "60"},
     (1736138700.25, 60.0)),
    ({}, None),  # real Kite sends none of them
    ({STANDIN_HEADER: "1", STANDIN_CLOCK_HEADER: "soon", STANDIN_SPEED_HEADER: "60"}, None),
    ({STANDIN_HEADER: "1", STANDIN_CLOCK_HEADER: "1736138700", STANDIN_SPEED_HEADER: "0"}, None),
    ({STANDIN_HEADER: "1", STANDIN_CLOCK_HEADER: "nan", STANDIN_SPEED_HEADER: "1"}, None),
    ({STANDIN_CLOCK_HEADER: "1736138700", STANDIN_SPEED_HEADER: "1"}, None),  # not identified
])
def test_server_clock_comes_from_the_upgrade_headers(
        feeds: list[KiteFeed], headers: dict[str, str], want: tuple[float, float] | None) -> None:
    async def script(conn: Conn) -> None:
        await conn.heartbeats()

    rec = Rec()
    with BadServer(script, headers=headers) as srv:
        feed = make(feeds, srv.url, rec)
        assert feed.server_clock is None
        before = time.time()
        feed.start({A: "quote"})
        assert feed.wait_connected(5)
        after = time.time()
        clock = feed.server_clock
    if want is None:
        assert clock is None
        return
    assert clock is not None
    market, wall, speed = clock
    assert (market, speed) == want
    assert before <= wall <= after
