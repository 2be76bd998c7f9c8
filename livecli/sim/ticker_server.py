"""The stand-in's WebSocket ticker: Kite's streaming protocol over loopback.

It accepts what kiteconnect's KiteTicker sends (the `?api_key=..&access_token=..` query on the
upgrade, JSON subscribe/unsubscribe/mode messages) and answers as Kite does: HTTP 403 on a bad
pair, binary frames of ltp/quote/full (and index) packets, a 1-byte heartbeat when there is
nothing to say, JSON text messages for errors. Ticks come from the shared `Market`, so every
client sees the same ticks; each frame holds a link's ticks of one slice of market time, in
exchange-time order, each packet in its instrument's mode. Subscribing (or changing mode) also
sends the instrument's latest snapshot of the day, as Kite does, so a quiet instrument shows its
price at once. Unlike Kite, the upgrade response names the stand-in, its market clock and its
speed (the `STANDIN_*` headers of livecli.kite.protocol), so livecli's client can judge tick
times against the simulated clock rather than the wall clock.

Three schedules, none waiting on another:

* encoding: a link's packets are built ahead, about a real second of market time at once, on a
  worker thread (`livecli.sim.tape`), the next stretch while the current one is being sent;
  the market itself is generated ahead of its clock by `livecli.sim.warmup`;
* frames: every link cuts its frames at the same market instants, multiples of `frame_span_s`
  (at most FRAME_SPAN_S, one market second: a frame every 0.25 s at 1x, every sixtieth of a
  second at 60x), and sends each slice once the market clock has passed its end;
* heartbeats: a link that sent nothing for `heartbeat_s` real seconds gets one, whatever the
  encoder is doing, so a big subscription can never starve the client's watchdog.

The grace, and why the links of one api_key move in lockstep. livecli's candle engine closes a
minute once the newest tick it has seen, from any link, is `grace_s` (2 s by default) past the
minute's end; a tick of that minute arriving later on another link is late. The grace is meant
as real seconds of arrival skew between links, and at 60x a real second is 60 market seconds.
The stand-in does not ask the client to scale its grace; it keeps the skew between the links of
one api_key (the links of one client) small in market time, on its side of the sockets:

* a frame carries at most one market second, and every link cuts at the same instants;
* no link sends more than LINK_LEAD_S (one market second) beyond what its slowest sibling has
  delivered, that is, what has left the stand-in (its transport and kernel send buffer, kept
  small: SEND_BUFFER_BYTES); a sibling waiting for its own tape is waited for, one whose client
  stopped reading is given up after LOCKSTEP_GIVE_UP_S;
* links that subscribe together start together (STARTUP_WAIT_S), on the next minute when that
  is near (a subscription's snapshot of a quiet instrument is a tick of an earlier minute, late
  on every link but the first unless they start on the minute), and a link that subscribes
  while its siblings stream (a reconnect) starts where they are, with each instrument's current
  state as its snapshot, as Kite starts a subscription, rather than replaying the ticks between;
* when the stand-in cannot keep up with its own clock (a loaded machine), every link of the
  group falls behind together, and a backlog is spread out (DRIP_S) rather than sent in one
  burst and followed by silence, which a client would take for a quiet market.

What the stand-in cannot see is the client's own receive buffer: a client that reads slower
than the market runs lets megabytes pile up there, and if it reads one link's socket less often
than another's, that skew is its own. Up to FRAME_SPAN_S / MIN_CYCLE_S = 200x the skew on the
stand-in's side stays near a market second; beyond, a frame spans `speed * MIN_CYCLE_S` market
seconds, and a client should set its grace to at least about twice that (`[stream] grace_s`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import logging
import math
import re
import socket
import struct
import termios
import time
from collections import deque
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import numpy as np

from livecli.core.timeutil import ist_day
from livecli.kite.protocol import (
    HEARTBEAT,
    MAX_PER_CONNECTION,
    MODE_QUOTE,
    MODES,
    STANDIN_CLOCK_HEADER,
    STANDIN_HEADER,
    STANDIN_SPEED_HEADER,
)
from livecli.sim.clock import SimClock
from livecli.sim.market import Market
from livecli.sim.packets import EMPTY, MAX_FRAME_PACKETS, Packed
from livecli.sim.state import ConnInfo, SimState
from livecli.sim.tape import Tape, build_tape, epoch_ms

# Market seconds one frame covers at most; see the module docstring for why.
FRAME_SPAN_S: Final = 1.0
# The shortest real time between two frames of a link (beyond 200x a frame spans over 1 s).
MIN_CYCLE_S: Final = 0.005
# A tape holds about this much real time of a link's packets, within these market-second bounds.
TAPE_REAL_S: Final = 1.0
TAPE_MIN_S: Final = 5.0
TAPE_MAX_S: Final = 300.0
# How far (market seconds) a link may send ahead of the slowest other link of its api_key...
LINK_LEAD_S: Final = 1.0
# ...unless that one has delivered nothing new for this many real seconds while it had frames
# to deliver: a link of a client that stopped reading must not hold up every other client of
# the same api_key for ever (one that waits for its encoding, or for a sibling, is waited for).
LOCKSTEP_GIVE_UP_S: Final = 2.0
# The first links of an api_key start on the next minute if that is this near (real seconds).
MINUTE_ALIGN_S: Final = 1.5
# How long (real seconds) the first links of an api_key wait for each other's first tapes, and
# for the subscription of one that has just opened.
STARTUP_WAIT_S: Final = 15.0
STARTUP_SUBSCRIBE_S: Final = 2.0
# A link with a backlog that would run dry before its next tape is ready spreads what it has
# over the wait, sending at least a frame this often (real seconds): a client takes a link
# that sends nothing for a second as a quiet market and moves its clock on.
DRIP_S: Final = 0.25
# The kernel's send buffer of a link (it would otherwise grow to megabytes, tens of market
# seconds at 60x, and differently per link: see `_Link.delivered`).
SEND_BUFFER_BYTES: Final = 256 * 1024
# Worker threads encoding tapes (more would only share the GIL more finely).
TAPE_WORKERS: Final = 2
# The value of STANDIN_HEADER: which stand-in, and the version of what its headers mean.
STANDIN_NAME: Final = "livecli-sim/1"

log = logging.getLogger("livecli.sim.ticker")


class _MaskTokens(logging.Filter):
    """websockets logs each upgrade's request line, which carries the access token: mask it."""

    _pattern = re.compile(r"(access_token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "access_token=" in text:
            from livecli.config import mask  # the one masking function livecli has

            record.msg = self._pattern.sub(lambda m: m[1] + mask(m[0][len(m[1]):]), text)
            record.args = ()
        return True


log.addFilter(_MaskTokens())


def _malformed(frame: bytes | None) -> bytes:
    """A frame whose last packet runs past its end (a real one cut short, or a made-up one)."""
    if frame is None or len(frame) < 8:
        # Claims one 44-byte quote packet but carries only 10 bytes of it.
        return b"\x00\x01\x00\x2c" + b"\x00" * 10
    return frame[: len(frame) - 5]


def _decimal(x: float) -> str:
    """`x` as a plain decimal (never 1e-07): what the STANDIN_* headers promise."""
    text = repr(float(x))
    if "e" in text or "E" in text:
        text = f"{x:.20f}".rstrip("0").rstrip(".")
    return text


def _unsent(fd: int) -> int:
    """Bytes in socket `fd`'s kernel send queue (0 where the system cannot tell)."""
    if fd < 0:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except (OSError, AttributeError):
        return 0


def _frame(head: Packed, body: Packed, lo: int, hi: int) -> bytes:
    """One frame of `head`'s packets followed by `body`'s packets lo..hi-1."""
    n = len(head) + hi - lo
    o = body.offsets
    return (n.to_bytes(2, "big") + head.data
            + memoryview(body.data)[int(o[lo]):int(o[hi])])


class _Group:
    """The live links of one api_key: the links one client opens, kept in lockstep."""

    __slots__ = ("links", "started", "waiting_since")

    def __init__(self) -> None:
        self.links: list[_Link] = []
        # False until a link of the group has sent ticks: until then links that subscribed
        # together wait for each other's first tape and start together (see TickerServer._limit).
        self.started = False
        self.waiting_since = time.monotonic()


class _Link:
    """One connection's sending state, kept on the loop thread."""

    __slots__ = ("build_s", "build_started", "building", "bytes_out", "conn", "cursor",
                 "delivered_to", "fd", "fresh", "group", "last_frame", "last_sent", "moved_at",
                 "opened", "rate", "rate_mark", "sent_log", "snapshot", "tapes", "wake", "ws")

    def __init__(self, conn: ConnInfo, ws: Any, cursor: float) -> None:
        self.conn = conn
        self.ws = ws
        # Market time up to which this link's ticks were sent (or passed over in silence).
        self.cursor = cursor
        # Consecutive tapes of the current subscription version, the first covering the cursor.
        self.tapes: list[Tape] = []
        self.building = False
        self.build_started = 0.0
        self.build_s = 0.0  # how long (real seconds) this link's tapes take to build, smoothed
        # True from a change of subscriptions until a tape for them is ready: siblings do not
        # wait for such a link (see TickerServer._built for how it joins them).
        self.fresh = False
        # Instruments owed a snapshot (freshly subscribed, or their mode changed).
        self.snapshot: set[int] = set()
        self.opened = self.last_sent = time.monotonic()  # anything sent, heartbeats included
        self.last_frame = self.last_sent  # ticks
        # Set when this link may be able to send more: its tape is ready, or a sibling moved on.
        self.wake = asyncio.Event()
        # The live links of the same api_key, this one included.
        self.group = _Group()
        # Bytes handed to the transport, and (bytes so far, cursor) after each batch of frames.
        self.bytes_out = 0
        self.sent_log: deque[tuple[int, float]] = deque()
        self.delivered_to = cursor
        self.moved_at = time.monotonic()  # when delivered_to last moved on
        # Market seconds delivered per real second, smoothed, and the last (time, position)
        # it was measured from.
        self.rate = 0.0
        self.rate_mark = (self.moved_at, cursor)
        sock = ws.transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1

    def sent(self, nbytes: int, upto: float) -> None:
        """Note that a frame of `nbytes` with the ticks up to `upto` went to the transport."""
        self.bytes_out += nbytes
        self.sent_log.append((self.bytes_out, upto))

    def delivered(self) -> float:
        """Market time up to which this link's frames have left the stand-in for the client.

        When the client is slow, a link's frames wait in the transport and in the kernel's send
        queue; two links' queues can differ by megabytes, tens of market seconds at 60x, and
        the client reads its links in turn, so lockstep on what was merely sent would still let
        one link reach it that far ahead of another. (What waits in the client's own receive
        buffer the stand-in cannot see; see the module docstring.)
        """
        queued = self.ws.transport.get_write_buffer_size() + _unsent(self.fd)
        done = self.bytes_out - queued
        log = self.sent_log
        before = self.delivered_to
        while log and log[0][0] <= done:
            self.delivered_to = log.popleft()[1]
        if not log:
            self.delivered_to = self.cursor  # nothing in flight (or only heartbeats)
        if self.delivered_to > before:
            now = time.monotonic()
            self.moved_at = now
            t0, d0 = self.rate_mark
            if now - t0 >= 0.5:
                r = (self.delivered_to - d0) / (now - t0)
                self.rate = r if not self.rate else 0.5 * self.rate + 0.5 * r
                self.rate_mark = (now, self.delivered_to)
        return self.delivered_to

    def _current(self) -> list[Tape]:
        v = self.conn.version
        if self.tapes and self.tapes[0].version != v:
            self.tapes = []  # the subscriptions changed: what was encoded for them is void
        return self.tapes

    def take(self, upto: float, span: float) -> tuple[list[tuple[bytes, float]], int]:
        """Frames of every tick in (cursor, upto], cut at multiples of `span`, each with the
        market time it runs to, and the number of packets; moves the cursor."""
        frames: list[tuple[bytes, float]] = []
        count = 0
        if not self.conn.tokens:
            self.cursor = max(self.cursor, upto)
            return frames, count
        tapes = self._current()
        while tapes and self.cursor < upto:
            tape = tapes[0]
            hi = min(upto, tape.end)
            body = tape.packets
            head = tape.head
            if len(head):
                tape.head = EMPTY
                self.snapshot -= tape.snapshot_tokens
            i = body.index_after(epoch_ms(self.cursor))
            cut = (math.floor(self.cursor / span) + 1) * span
            while True:
                edge = min(cut, hi)
                j = body.index_after(epoch_ms(edge))
                while len(head) or j > i:
                    k = min(j, i + MAX_FRAME_PACKETS - len(head))
                    frames.append((_frame(head, body, i, k), edge))
                    count += len(head) + k - i
                    head, i = EMPTY, k
                if edge >= hi:
                    break
                cut += span
            self.cursor = hi
            if hi >= tape.end:
                tapes.pop(0)
        return frames, count

    def join_at(self, target: float) -> None:
        """Start sending at `target`, what lies before it sent as a snapshot instead: each
        instrument's latest packet up to `target` (a fresh subscription starts from the current
        state, as on Kite). For a link whose tape was ready after its siblings had moved on."""
        tape = self.tapes[0]
        target = min(target, tape.end)
        p = tape.packets
        i = p.index_after(epoch_ms(self.cursor))
        j = p.index_after(epoch_ms(target))
        if j > i:
            _, first = np.unique(p.token[i:j][::-1], return_index=True)
            latest = p.pick(np.sort(j - 1 - first))
            head = tape.head
            if len(head):
                head = head.pick(np.flatnonzero(~np.isin(head.token, latest.token)))
            tape.head = Packed.join(head, latest)
        self.cursor = max(self.cursor, target)

    def skip(self, upto: float) -> None:
        """Pass over (cursor, upto] sending nothing: a silent link loses what it would have sent."""
        self.cursor = max(self.cursor, upto)
        tapes = self._current()
        while tapes and tapes[0].end <= self.cursor:
            self.snapshot -= tapes.pop(0).snapshot_tokens
        if tapes and len(tapes[0].head) and tapes[0].start < self.cursor:
            self.snapshot -= tapes[0].snapshot_tokens
            tapes[0].head = EMPTY


class TickerServer:
    """Serves Kite's ticker protocol on `host:port` from `market` on `clock`'s time.

    `cycle_s` is the real time between two frames of a link at low speed; at high speed it is
    shortened so that a frame never covers more than `FRAME_SPAN_S` of market time.
    """

    def __init__(self, market: Market, clock: SimClock, state: SimState, host: str = "127.0.0.1",
                 port: int = 0, heartbeat_s: float = 1.0, cycle_s: float = 0.25,
                 max_tokens: int = MAX_PER_CONNECTION) -> None:
        self.market = market
        self.clock = clock
        self.state = state
        self.host = host
        self.port = port
        self.heartbeat_s = heartbeat_s
        self.cycle_s = max(MIN_CYCLE_S, min(cycle_s, FRAME_SPAN_S / clock.speed))
        # Market seconds per frame: every link cuts its frames on this one grid.
        self.frame_span_s = self.cycle_s * clock.speed
        self.tape_span_s = min(max(clock.speed * TAPE_REAL_S, TAPE_MIN_S, 2 * self.frame_span_s),
                               max(TAPE_MAX_S, 2 * self.frame_span_s))
        self.max_tokens = max_tokens
        self._server: Any = None
        self._live: dict[int, _Link] = {}
        self._groups: dict[str, _Group] = {}
        self._stopping = False
        self._encoder: concurrent.futures.ThreadPoolExecutor | None = None
        self._build_s = 1.0  # how long (real seconds) a tape takes to build, over all links

    async def start(self) -> int:
        from websockets.asyncio.server import serve

        self._encoder = concurrent.futures.ThreadPoolExecutor(
            TAPE_WORKERS, thread_name_prefix="livecli-sim-tape")
        self._server = await serve(
            self._handle, self.host, self.port, process_request=self._check_auth,
            process_response=self._identify, compression=None, ping_interval=None,
            max_size=4 * 1024 * 1024, server_header="livecli-sim", logger=log,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        self._stopping = True  # no new encoding: the worker threads are about to go
        if self._server is not None:
            for link in list(self._live.values()):
                with contextlib.suppress(Exception):
                    link.ws.transport.abort()
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        if self._encoder is not None:
            self._encoder.shutdown(wait=False, cancel_futures=True)
            self._encoder = None

    # --- handshake ----------------------------------------------------------------------------
    def _check_auth(self, connection: Any, request: Any) -> Any:
        q = parse_qs(urlsplit(request.path).query)
        key = (q.get("api_key") or [None])[0]
        token = (q.get("access_token") or [None])[0]
        if self.state.credentials_ok(key, token):
            return None
        with self.state.cond:
            self.state.rejected_upgrades += 1
        # Kite fails the upgrade itself with 403; kiteconnect sees "upgrade failed (403 - Forbidden)".
        return connection.respond(HTTPStatus.FORBIDDEN, "Invalid api_key or access_token.\n")

    def _identify(self, connection: Any, request: Any, response: Any) -> None:
        """Name the stand-in, its market clock at this moment and its speed (Kite never does)."""
        response.headers[STANDIN_HEADER] = STANDIN_NAME
        response.headers[STANDIN_CLOCK_HEADER] = _decimal(round(self.clock.now(), 6))
        response.headers[STANDIN_SPEED_HEADER] = _decimal(self.clock.speed)

    # --- one connection -----------------------------------------------------------------------
    async def _handle(self, ws: Any) -> None:
        q = parse_qs(urlsplit(ws.request.path).query)
        peer = ws.remote_address
        conn = self.state.add_conn(f"{peer[0]}:{peer[1]}" if peer else "?",
                                   (q.get("api_key") or [""])[0])
        link = _Link(conn, ws, self.clock.now())
        with contextlib.suppress(OSError, AttributeError):
            ws.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        self._live[conn.id] = link
        link.group = self._groups.setdefault(conn.api_key, _Group())
        link.group.links.append(link)
        if self.state.is_dropping():
            ws.transport.abort()  # an outage: every link is cut as soon as it opens
        tasks = [asyncio.create_task(self._send_loop(link)),
                 asyncio.create_task(self._heartbeat_loop(link))]
        try:
            async for msg in ws:
                if isinstance(msg, str):
                    await self._on_text(link, msg)
        except Exception:  # a dropped or aborted connection ends the same way
            pass
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            self._live.pop(conn.id, None)
            link.group.links.remove(link)
            if not link.group.links:
                self._groups.pop(conn.api_key, None)
            for other in link.group.links:
                other.wake.set()
            self.state.remove_conn(conn)

    async def _on_text(self, link: _Link, text: str) -> None:
        try:
            msg = json.loads(text)
            action, value = msg["a"], msg.get("v")
        except (ValueError, TypeError, KeyError):
            return  # Kite ignores what it cannot read
        conn = link.conn
        errors: list[str] = []
        changed = False
        with self.state.cond:
            if action == "subscribe" and isinstance(value, list):
                for tok in value:
                    if not isinstance(tok, int) or tok in conn.tokens:
                        continue
                    if len(conn.tokens) >= self.max_tokens:
                        errors.append(
                            f"Subscription limit of {self.max_tokens} instruments per connection "
                            f"reached: ignored {tok} and the rest")
                        break
                    conn.tokens[tok] = MODE_QUOTE  # Kite's mode for a fresh subscription
                    link.snapshot.add(tok)
                    changed = True
            elif action == "unsubscribe" and isinstance(value, list):
                for tok in value:
                    if isinstance(tok, int) and tok in conn.tokens:
                        conn.tokens.pop(tok)
                        link.snapshot.discard(tok)
                        changed = True
            elif (action == "mode" and isinstance(value, list) and len(value) == 2
                  and value[0] in MODES and isinstance(value[1], list)):
                for tok in value[1]:
                    if isinstance(tok, int) and tok in conn.tokens:
                        conn.tokens[tok] = value[0]
                        link.snapshot.add(tok)
                        changed = True
            if changed:
                link.fresh = True
                # Whatever was encoded for the old subscriptions is void. The new tape is
                # planned by the link's next cycle, not here: a client sends "subscribe" and
                # "mode" back to back, and one encoding for both is enough.
                conn.version += 1
            self.state.cond.notify_all()
        for e in errors:
            await link.ws.send(json.dumps({"type": "error", "data": e}))

    # --- encoding ahead -----------------------------------------------------------------------
    def demand(self) -> float | None:
        """The earliest market time a streaming link has yet to send (None: none streams).

        Any thread. The warm-up generates from here: on a loaded machine the links fall behind
        the clock, and a market generated ahead of the clock instead of ahead of the links
        pushed the chunks the links were about to need out of the cache (each tape then made
        3000 instruments' chunk itself: a link silent for seconds).
        """
        mono = time.monotonic()
        # A link whose client stopped reading is left out, as its siblings leave it behind
        # (LOCKSTEP_GIVE_UP_S): its stalled cursor must not hold the market back for all.
        cursors = [lk.cursor for g in list(self._groups.values()) for lk in list(g.links)
                   if lk.conn.tokens and not lk.conn.closed
                   and not (lk.sent_log and mono - lk.moved_at >= LOCKSTEP_GIVE_UP_S)]
        return min(cursors) if cursors else None

    def _grid(self, t: float) -> float:
        """The latest frame edge at or before market time `t`."""
        return math.floor(t / self.frame_span_s) * self.frame_span_s

    def _siblings(self, link: _Link) -> list[_Link]:
        """The other links of the api_key that stream and keep up: the ones to wait for."""
        mono = time.monotonic()
        out = []
        for other in link.group.links:
            if other is not link and other.conn.tokens and not other.fresh:
                at = other.delivered()
                stuck = other.sent_log and mono - other.moved_at >= LOCKSTEP_GIVE_UP_S
                if at >= link.cursor or not stuck:
                    out.append(other)
        return out

    def _floor(self, link: _Link) -> float:
        """How far the slowest sibling that streams and keeps up has delivered (inf if none)."""
        return min((o.delivered_to for o in self._siblings(link)), default=math.inf)

    def _limit(self, link: _Link, upto: float) -> float:
        """`upto`, held back to LINK_LEAD_S past the slowest sibling that is keeping up.

        Before the group has sent any tick, a link also waits (up to STARTUP_WAIT_S) for its
        siblings' first tapes (and a sibling that has just opened, for its subscription), so the
        links a client opens together start together: nothing is lost by waiting then, while
        one that starts alone runs ahead of those that join it.
        """
        group = link.group
        mono = time.monotonic()
        if (not group.started and mono - group.waiting_since < STARTUP_WAIT_S
                and any(o.fresh if o.conn.tokens else mono - o.opened < STARTUP_SUBSCRIBE_S
                        for o in group.links if o is not link)):
            return link.cursor
        floor = self._floor(link)
        if floor == math.inf:
            return upto
        return min(upto, self._grid(floor + LINK_LEAD_S))

    def _paced(self, link: _Link, upto: float, mono: float) -> float:
        """`upto`, or less when sending that much would empty the link's backlog long before
        its next tape is ready: then the backlog is spread over the expected wait."""
        tapes = link.tapes
        if not tapes or not link.building or upto < tapes[-1].end:
            return upto
        left = tapes[-1].end - link.cursor
        if left <= self.frame_span_s:
            return upto
        eta = max(link.build_started + link.build_s - mono, DRIP_S)
        since = mono - link.last_frame
        step = left * min(1.0, since / eta)
        if step < self.frame_span_s:
            if since < DRIP_S:
                return link.cursor
            step = self.frame_span_s
        return min(upto, max(self._grid(link.cursor + step), link.cursor))

    def _fresh_start(self, link: _Link) -> float:
        """Where the first tape for a link's new subscriptions should start (each instrument's
        state at that moment sent first, as Kite starts a subscription), if not at its cursor.

        While its siblings stream, where they will be once the tape is built: starting where
        the link stopped would send the ticks in between after newer ones from the other links
        (late). When the group starts, at the next minute if that is near (MINUTE_ALIGN_S): a
        subscription's snapshot of a quiet instrument is a tick from an earlier minute, late
        at once on every link after the first unless the links start on the minute.
        """
        siblings = self._siblings(link)
        if siblings:
            # As fast as the slowest of them delivers (the client may read slower than the
            # market runs). Too far ahead costs a wait; too short, another build.
            slowest = min(siblings, key=lambda o: o.delivered_to)
            rate = min(slowest.rate or self.clock.speed, self.clock.speed)
            return self._grid(slowest.delivered_to + self._build_s * rate)
        if not link.group.started and self._minutes_before(link):
            minute = math.ceil(link.cursor / 60) * 60
            if minute - link.cursor <= MINUTE_ALIGN_S * self.clock.speed:
                return minute
        return link.cursor

    def _minutes_before(self, link: _Link) -> bool:
        """Whether the link's session had a whole minute before its cursor (only then can a
        snapshot hold a tick of an earlier minute)."""
        tok = next(iter(link.conn.tokens), None)
        if tok is None or tok not in self.market:
            return False
        plan = self.market.plan(tok, ist_day(link.cursor))
        return link.cursor * 1000 >= plan.open_ms + 60_000

    def _plan(self, link: _Link) -> None:
        """Start encoding the link's next tape on a worker thread, if it needs one."""
        if link.building or link.conn.closed or self._stopping:
            return
        conn = link.conn
        with self.state.cond:
            if not conn.tokens:
                return
            subs = list(conn.tokens.items())
            version = conn.version
        tapes = link._current()
        if not tapes:
            start, snapshot = link.cursor, frozenset(link.snapshot)
            if link.fresh:
                ahead = self._fresh_start(link)
                if ahead > start:
                    start, snapshot = ahead, frozenset(tok for tok, _ in subs)
        elif len(tapes) == 1:
            start, snapshot = tapes[0].end, frozenset()
        else:
            return
        end = self._grid(start + self.tape_span_s)
        if end <= start:
            end = start + self.frame_span_s
        link.building = True
        link.build_started = time.monotonic()
        fut = asyncio.get_running_loop().run_in_executor(
            self._encoder, build_tape, self.market, subs, snapshot, start, end, version,
            lambda: conn.version != version)
        fut.add_done_callback(lambda f: self._built(link, f))

    def _built(self, link: _Link, fut: asyncio.Future) -> None:
        link.building = False
        took = time.monotonic() - link.build_started
        link.build_s = took if not link.build_s else 0.7 * link.build_s + 0.3 * took
        self._build_s = 0.7 * self._build_s + 0.3 * took
        if fut.cancelled() or link.conn.closed:
            return
        exc = fut.exception()
        if exc is not None:
            log.error("encoding ticks for link %d failed: %r", link.conn.id, exc)
            return  # the next cycle tries again
        tape: Tape | None = fut.result()
        tapes = link._current()
        if tape is None or tape.version != link.conn.version:
            pass  # built for subscriptions that have changed since
        elif not tapes and link.fresh:
            # The first tape for new subscriptions: the link starts where its siblings are
            # now (see _plan), or builds again if they have gone past all of this tape.
            floor = self._floor(link)
            if floor == math.inf or floor < tape.end:
                link.fresh = False
                link.cursor = max(link.cursor, tape.start)
                tapes.append(tape)
                if floor != math.inf and floor - link.cursor > LINK_LEAD_S:
                    link.join_at(floor)
        elif not tapes:
            if tape.start <= link.cursor < tape.end:
                tapes.append(tape)
        elif tape.start == tapes[-1].end:
            tapes.append(tape)
        link.wake.set()
        self._plan(link)

    # --- sending ------------------------------------------------------------------------------
    async def _send_loop(self, link: _Link) -> None:
        try:
            await self._send_frames(link)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            from websockets.exceptions import ConnectionClosed

            if not isinstance(exc, ConnectionClosed):
                log.exception("link %d stopped sending", link.conn.id)
                link.ws.transport.abort()

    async def _send_frames(self, link: _Link) -> None:
        ws, conn, state = link.ws, link.conn, self.state
        while True:
            link.wake.clear()  # what changes from here on wakes the wait below at once
            now_edge = self._grid(self.clock.now())
            self._plan(link)
            if state.is_silent():
                link.skip(now_edge)
                link.last_sent = time.monotonic()  # a silent link sends not even heartbeats
            else:
                upto = self._paced(link, self._limit(link, now_edge), time.monotonic())
                frames, count = link.take(upto, self.frame_span_s)
                with state.cond:
                    malformed = conn.malformed_pending or state.is_malforming()
                    conn.malformed_pending = False
                if malformed:
                    first = (_malformed(frames[0][0] if frames else None),
                             frames[0][1] if frames else link.cursor)
                    frames = [first, *frames[1:]]
                if frames:
                    for f, upto in frames:
                        await ws.send(f)
                        link.sent(len(f), upto)
                    link.last_sent = link.last_frame = time.monotonic()
                    with state.cond:
                        conn.frames += len(frames)
                        conn.packets += count
                        conn.bytes_sent += sum(len(f) for f, _ in frames)
                        conn.malformed_sent += int(malformed)
                    link.group.started = True
                    for other in link.group.links:
                        if other is not link:
                            other.wake.set()
            # Sleep until the market passes the next frame edge; a link held back (its tape
            # not ready, or a sibling behind) also wakes when that changes, and catches up.
            delay = max(0.0, self.clock.real_seconds_until(now_edge + self.frame_span_s)) + 1e-4
            if link.cursor < now_edge and link.conn.tokens:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(link.wake.wait(), delay)
            else:
                await asyncio.sleep(delay)

    async def _heartbeat_loop(self, link: _Link) -> None:
        """A heartbeat whenever the link has sent nothing for `heartbeat_s`, on its own clock."""
        while True:
            wait = link.last_sent + self.heartbeat_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            link.last_sent = time.monotonic()
            if self.state.is_silent():
                continue
            try:
                await link.ws.send(HEARTBEAT)
            except Exception:
                return  # the connection is gone; its handler cleans up
            with self.state.cond:
                link.conn.heartbeats += 1
                link.conn.bytes_sent += 1


async def broadcast_text(server: TickerServer, payload: str) -> int:
    """Send a JSON text message to every connected client; the number reached."""
    n = 0
    for link in list(server._live.values()):
        with contextlib.suppress(Exception):
            await link.ws.send(payload)
            n += 1
    return n


def abort_all(server: TickerServer) -> int:
    """Abort the TCP connection of every client at once (no close frame): Kite dropping us."""
    n = 0
    for link in list(server._live.values()):
        with contextlib.suppress(Exception):
            link.ws.transport.abort()
            n += 1
    return n
