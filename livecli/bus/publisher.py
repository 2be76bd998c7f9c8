"""The NATS publisher: a bounded inbox filled from any thread, sent on a thread of its own.

The session's listeners run on the receiving path; publishing must never make them wait. So a
producer only appends a reference (a decoded frame, a candle, a status) to a deque and, when the
publisher's loop has not been woken since it last drained, wakes it once. Everything that costs
(encoding JSON, the NATS client, acks) happens on the publisher's own asyncio loop, in batches.

Bounded, and nothing lost in silence:

* at most `buffer` messages wait, admitted by livecli/bus/room.py's loss model (ticks shed
  and counted beyond three quarters of it, closed candles only when it is full); ticks that waited more than TICK_MAX_AGE_S when their turn comes are shed too (counted);
* ticks, forming-candle updates and the status are plain NATS publishes into the stream's
  subjects (the stream stores them; no ack is awaited);
* closed candles are JetStream publishes with a `Nats-Msg-Id` (subjects.candle_msg_id), sent
  in batches like the ticks (HPUB commands with a reply subject under the publisher's own ack
  inbox) and acknowledged asynchronously: one not acked within `ACK_TIMEOUT_S` (the server
  restarted, the link dropped) is sent again with the same id, which JetStream de-duplicates,
  until it is acked. (nats-py's `publish_async` bounded with `wait_stall` cost ~200 us a
  candle: its `asyncio.wait_for` gives each a turn of the event loop, so each went out in a
  flush and socket write of its own, and a minute's 9000 closes held the publisher for two
  seconds in which the ticks behind them aged and were shed; bench/publish.py prints both
  ways.) At most MAX_ACKS_PENDING wait for their ack;
  beyond, closed candles wait in the queue;
* the NATS client reconnects by itself, forever; the stream is made again if it went missing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from livecli.bus.loops import cancel_pending, reachable
from livecli.bus.options import PublishOptions
from livecli.bus.room import Room
from livecli.bus.subjects import STATUS_SUBJECT
from livecli.core.status import PublishStatus
from livecli.errors import ConnectionFailedError

log = logging.getLogger("livecli.bus")

TICKS, CANDLE, OTHER = 0, 1, 2
ACK_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
# The NATS client's own outbound buffer (bytes), about a second of a 50,000 ticks/s feed: while
# reconnecting, ticks beyond it are dropped; while connected, a full one makes the sender wait
# for the socket, so ticks age in the publisher's queue and are shed there (TICK_MAX_AGE_S)
# instead of waiting, unbounded, in the client.
CLIENT_PENDING_BYTES = 8 * 1024 * 1024
# JetStream's error for a stream whose subjects another stream already captures.
SUBJECTS_OVERLAP = 10065
MAX_ACKS_PENDING = 50_000  # 9000 instruments x a few intervals close together at a minute's end
BATCH_MESSAGES = 20_000  # plain messages sent as one buffer (a few MB at most)
# A publisher that falls behind (short of CPU) sheds the ticks that waited longer than this,
# counted: it publishes as many either way, and consumers of a live feed want the fresh ones.
TICK_MAX_AGE_S = 2.0

# (subject, payload, msg_id): msg_id only on closed candles.
Outgoing = tuple[str, bytes, str | None]


class TextBatch(NamedTuple):
    """Plain messages as text (a frame's ticks): `payloads[i]` on `subjects[i]`.

    Every payload is ASCII (JSON lines are: json.dumps escapes the rest), so its length in
    characters is its size in bytes, and the whole batch is framed as text and encoded once,
    not as a tuple, an `encode()` and a bytes format per message.
    """

    subjects: list[str]
    payloads: list[str]


Encoder = Callable[[int, Any, float], list[Outgoing] | TextBatch]


class NatsPublisher:
    """`start()` connects (or raises ConnectionFailedError); `put_*` from any thread; `close()`."""

    def __init__(self, opts: PublishOptions, encode: Encoder) -> None:
        self.opts = opts
        self._encode = encode
        self._items: deque[tuple[int, Any, int, float]] = deque()
        self.room = Room(opts.buffer)  # what waits in _items (a frame counts as its ticks)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._woken = False
        self._stopping = False
        self._thread = threading.Thread(target=self._thread_main, name="livecli-nats-pub",
                                        daemon=True)
        self._ready = threading.Event()
        self._taken = threading.Event()  # the pump took a batch (see wait_below)
        self.batches_taken = 0
        self._startup_error: BaseException | None = None
        self.state = "connecting"
        self.last_error: str | None = None
        self.reconnects = 0
        self.ticks_published = 0
        self.candles_published = 0
        self.updates_published = 0
        self.status_published = 0
        self.candles_duplicate = 0
        # Closed candles sent and not yet acked: msg_id -> (reply token, message, sent at; 0.0
        # when the send failed), and the token each ack comes back on -> msg_id.
        self._acks: dict[str, tuple[str, Outgoing, float]] = {}
        self._tokens: dict[str, str] = {}
        self._ack_prefix = ""
        self._next_token = 0
        self._stalled = False  # MAX_ACKS_PENDING reached: closed candles wait for acks
        self._refused: set[str] = set()  # "no responders": the stream has gone (made again)
        self._give_up_at = 0.0  # closing: when to stop waiting for the last acks
        self._nc: Any = None
        self._raw: bool | None = None  # whether the client's PUB buffer can take a batch
        self._js: Any = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> NatsPublisher:
        self._thread.start()
        self._ready.wait(CONNECT_TIMEOUT_S + 10)
        if self._startup_error is not None or not self._ready.is_set():
            self._stopping = True
            self._thread.join(5)
            if isinstance(self._startup_error, ConnectionFailedError):
                raise self._startup_error  # it names its own fix
            why = self.startup_reason
            raise ConnectionFailedError(
                f"cannot publish to {self.opts.shown_url} ({why}): start nats-server with -js "
                "there, or fix --publish / [publish] url"
            )
        return self

    def close(self, timeout: float = 10.0) -> bool:
        """Send what waits, wait for closed candles' acks (up to `timeout`); True if all done."""
        self._stopping = True
        self._kick()
        self._thread.join(timeout + 5)
        return not self._thread.is_alive() and not self._acks and not self._items

    @property
    def startup_reason(self) -> str:
        """Why `start()` failed, in a few words."""
        exc = self._startup_error
        return "timed out" if exc is None else (str(exc) or type(exc).__name__)

    @property
    def startup_advised(self) -> bool:
        """Whether `startup_reason` is a whole message naming its own fix."""
        return isinstance(self._startup_error, ConnectionFailedError)

    # --- producers (receiving path, clock thread): O(1), never wait ------------------------------
    def put_ticks(self, frame: Any, n: int, received_at: float) -> None:
        if self.room.ticks(n):
            self._items.append((TICKS, frame, n, received_at))
            self._kick()

    def put_candles(self, item: Any, n: int) -> None:
        """`n` closed candles (the encoder's item, a batch): kept unless the buffer is full."""
        if self.room.candles(n):
            self._items.append((CANDLE, item, n, time.time()))
            self._kick()

    def put_other(self, item: Any, weight: int = 1) -> bool:
        """The status, or a batch of forming-candle updates (shed like ticks when full);
        whether it was taken."""
        if not self.room.other(weight):
            return False
        self._items.append((OTHER, item, weight, time.time()))
        self._kick()
        return True

    def wait_below(self, level: int, idle_s: float) -> bool:
        """Wait until at most `level` messages wait here, for as long as the pump keeps taking
        batches; False once it has taken none for `idle_s` (NATS down, closed candles held
        for their acks), or at once when `idle_s` is 0 and more than `level` wait.

        For a producer that can hold back (the publisher's process stops reading its pipe, so
        the session's side sheds ticks before it pickles them): never call it on the
        receiving path. `batches_taken` tells such a producer when the pump moves again."""
        while self.room.held > level:
            self._taken.clear()
            if self.room.held <= level:
                break
            if not self._taken.wait(idle_s):
                return False
        return True

    @property
    def ticks_dropped(self) -> int:
        return self.room.ticks_dropped

    @property
    def candles_dropped(self) -> int:
        return self.room.candles_dropped

    def _kick(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or self._woken:
            return
        self._woken = True
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the loop has closed
            self._woken = False

    # --- status --------------------------------------------------------------------------------
    def stats(self) -> PublishStatus:
        items = self._items
        oldest = items[0][3] if items else 0.0
        return PublishStatus(
            url=self.opts.shown_url, stream=self.opts.stream, state=self.state,
            ticks_published=self.ticks_published, candles_published=self.candles_published,
            updates_published=self.updates_published, status_published=self.status_published,
            ticks_dropped=self.ticks_dropped, candles_dropped=self.candles_dropped,
            candles_duplicate=self.candles_duplicate, pending=self.room.held,
            acks_pending=len(self._acks),
            lag_s=round(max(0.0, time.time() - oldest), 3) if oldest else 0.0,
            reconnects=self.reconnects, last_error=self.last_error,
        )

    # --- the publisher's thread ----------------------------------------------------------------
    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        except BaseException as exc:  # anything: the status says so, the session goes on
            self.state = "failed"
            self.last_error = f"{type(exc).__name__}: {exc}"
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            log.warning("NATS publisher stopped: %s", self.last_error)
        finally:
            self._loop = None
            cancel_pending(loop)
            loop.close()

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        import nats

        opts = self.opts

        async def on_disconnect() -> None:
            if not self._stopping:
                self.state = "reconnecting"

        async def on_reconnect() -> None:
            self.reconnects += 1
            self.state = "connected"
            try:  # a server restarted without its store has lost the stream: make it again
                await self._ensure_stream(js)
            except Exception as exc:
                self.last_error = f"stream: {exc}"
            self._resend_unacked(time.time(), force=True)
            self._kick_local()

        async def on_error(exc: Exception) -> None:
            self.last_error = f"{type(exc).__name__}: {exc}"

        kw: dict[str, Any] = {}
        if opts.credentials is not None:
            kw["user_credentials"] = str(opts.credentials)
        await reachable(opts.url, CONNECT_TIMEOUT_S)
        nc = await nats.connect(
            servers=[opts.url], connect_timeout=CONNECT_TIMEOUT_S, allow_reconnect=True,
            max_reconnect_attempts=-1, reconnect_time_wait=0.5, ping_interval=5,
            max_outstanding_pings=3, pending_size=CLIENT_PENDING_BYTES,
            disconnected_cb=on_disconnect, reconnected_cb=on_reconnect, error_cb=on_error,
            name="livecli-publisher", **kw,
        )
        js = nc.jetstream()
        self._nc, self._js = nc, js
        await self._ensure_stream(js)
        # One subscription for every closed candle's ack (the client re-subscribes it after a
        # reconnect); the reply subject's last token says which candle it acks.
        self._ack_prefix = nc.new_inbox() + "."
        await nc.subscribe(self._ack_prefix + "*", cb=self._on_ack,
                           pending_msgs_limit=MAX_ACKS_PENDING * 2,
                           pending_bytes_limit=MAX_ACKS_PENDING * 1024)
        self._wake = asyncio.Event()
        self._loop = loop
        self.state = "connected"
        self._ready.set()
        try:
            await self._pump()
        finally:
            self.state = "closed"
            try:
                await asyncio.wait_for(nc.drain(), 5)
            except Exception:
                await nc.close()

    def _kick_local(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _ensure_stream(self, js: Any) -> None:
        """The stream, made with the user's limits if absent (an existing one is left as it is:
        its owner may have set other limits on purpose)."""
        from nats.js.api import DiscardPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        opts = self.opts
        try:
            await js.stream_info(opts.stream)
            return
        except NotFoundError:
            pass
        from nats.js.errors import BadRequestError

        from livecli.bus.subjects import ALL_SUBJECTS
        try:
            await js.add_stream(StreamConfig(
                name=opts.stream, subjects=[ALL_SUBJECTS], storage=StorageType.FILE,
                max_age=opts.max_age_s or None, max_bytes=opts.max_bytes or -1,
                duplicate_window=opts.duplicate_window_s, discard=DiscardPolicy.OLD,
            ))
        except BadRequestError as exc:
            if exc.err_code != SUBJECTS_OVERLAP:
                raise
            other, subjects = None, []
            try:
                other = await js.find_stream_name_by_subject(ALL_SUBJECTS)
                subjects = list((await js.stream_info(other)).config.subjects or [])
            except Exception:
                pass
            raise ConnectionFailedError(subjects_taken(opts, other, subjects)) from None

    async def _pump(self) -> None:
        wake = self._wake
        assert wake is not None
        nc = self._nc
        encode = self._encode
        items = self._items
        while True:
            self._woken = False  # first: a later put wakes the loop again
            self._stalled = False
            if self._refused:
                await self._remake_stream()
            while items and not self._stalled:
                # Everything queued, encoded, then sent as one buffer: every send lets go of
                # the GIL, and getting it back behind a busy receiving path costs up to the
                # interpreter's switch interval, so fewer, bigger sends go much faster.
                batch: list[Outgoing] = []
                acked: list[Outgoing] = []  # closed candles
                texts: list[TextBatch] = []  # ticks
                counts = [0, 0, 0]  # ticks, forming updates, status messages in the batch
                stale = time.time() - TICK_MAX_AGE_S
                while items and len(batch) + len(acked) + counts[0] + counts[1] < \
                        BATCH_MESSAGES:
                    if items[0][0] == CANDLE and \
                            len(self._acks) + len(acked) >= MAX_ACKS_PENDING:
                        self._stalled = True  # an ack frees a place and wakes the loop
                        break
                    kind, payload, n, at = items.popleft()
                    self.room.release(n)
                    if kind == TICKS and at < stale:
                        self.room.shed_ticks(n)  # behind: fresh ticks go first, these are shed
                        continue
                    try:
                        out = ([payload.msg] if isinstance(payload, _Resend)
                               else encode(kind, payload, at))
                    except Exception as exc:  # a bad item is reported, never fatal
                        self.last_error = f"encode: {type(exc).__name__}: {exc}"
                        if kind == TICKS:  # and counted: nothing is lost in silence
                            self.room.shed_ticks(n)
                        elif kind == CANDLE:
                            self.room.shed_candles(n)
                        continue
                    if isinstance(out, TextBatch):
                        texts.append(out)
                        counts[0 if kind == TICKS else 1] += len(out.payloads)
                        continue
                    if kind == CANDLE:
                        acked.extend(out)
                        continue
                    batch.extend(out)
                    if kind == TICKS:
                        counts[0] += len(out)
                    elif out and out[0][0] == STATUS_SUBJECT:
                        counts[2] += len(out)
                    else:
                        counts[1] += len(out)
                self.batches_taken += 1
                self._taken.set()  # what waits is less now: a waiter in wait_below() looks
                try:
                    skipped = await self._send_plain(nc, batch, texts)
                except Exception as exc:  # the client's own buffer is full while reconnecting
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self.room.shed_ticks(counts[0])
                else:
                    self.room.shed_ticks(skipped)
                    self.ticks_published += counts[0] - skipped
                    self.updates_published += counts[1]
                    self.status_published += counts[2]
                await self._send_acked(nc, acked)
                await asyncio.sleep(0)  # let acks and the client's flusher run
            self._resend_unacked(time.time())
            if self._stopping and not items:
                if not self._acks:
                    return
                if self._give_up_at == 0.0:
                    self._give_up_at = time.monotonic() + ACK_TIMEOUT_S * 2
                if time.monotonic() > self._give_up_at:
                    return
            if items and not self._stalled:
                continue  # more came in while sending
            try:
                await asyncio.wait_for(wake.wait(), 0.5 if self._acks else 1.0)
            except TimeoutError:
                pass
            wake.clear()

    async def _send_plain(self, nc: Any, out: list[Outgoing], texts: list[TextBatch]) -> int:
        """Plain publishes of one batch (ticks, updates, the status): one PUB blob for all.

        nats-py's `publish()` costs some 5 us a message in Python; a frame of ticks written as
        one buffer of PUB commands costs a fraction of that (the protocol is `PUB <subject>
        <size>\r\n<payload>\r\n`). Only with a client that has the buffer we append to
        (checked once); any other client gets `publish()` per message. Returns how many of
        `texts`' messages (ticks) were skipped for being over the server's max_payload.
        """
        skipped = 0
        if not out and not texts:
            return skipped
        if not self._raw_client(nc):
            for subject, data, _ in out:
                await nc.publish(subject, data)
            for t in texts:
                for subject, text in zip(t.subjects, t.payloads, strict=True):
                    await nc.publish(subject, text.encode())
            return skipped
        limit = nc.max_payload
        if any(len(data) > limit for _, data, _ in out) or any(
                max(map(len, t.payloads), default=0) > limit for t in texts):
            # The server would drop the link: such a message is skipped, and said so.
            self.last_error = f"a message over the server's max_payload ({limit} bytes) skipped"
            out = [m for m in out if len(m[1]) <= limit]
            kept = [_within(t, limit) for t in texts]
            skipped = sum(len(t.payloads) for t in texts) - sum(len(t.payloads) for t in kept)
            texts = kept
        parts = [b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(data), data)
                 for subject, data, _ in out]
        for t in texts:
            if t.payloads:
                parts.append("\r\n".join([f"PUB {subject} {len(text)}\r\n{text}" for subject, text
                                           in zip(t.subjects, t.payloads, strict=True)]).encode())
                parts.append(b"\r\n")
        blob = b"".join(parts)
        if nc.is_closed:
            raise ConnectionError("the NATS connection is closed")
        if not nc.is_connected and (
                nc._pending_data_size + len(blob) > nc._max_pending_size):
            raise BufferError("the NATS client's reconnect buffer is full")
        await nc._send_command(blob)
        await nc._flush_pending()
        return skipped

    def _raw_client(self, nc: Any) -> bool:
        """Whether the client has the PUB buffer a batch is appended to (checked once)."""
        if self._raw is None:
            self._raw = hasattr(nc, "_send_command") and hasattr(nc, "_flush_pending") \
                and hasattr(nc, "_pending_data_size") and hasattr(nc, "_max_pending_size")
        return self._raw

    async def _send_acked(self, nc: Any, out: list[Outgoing]) -> None:
        """Closed candles, as one buffer of HPUB commands: each with its `Nats-Msg-Id` and a
        reply subject of its own under the ack inbox, kept in `_acks` until its ack comes
        (`_on_ack`) or it is due again (`_resend_unacked`)."""
        if not out:
            return
        now = time.time()
        acks, tokens, prefix = self._acks, self._tokens, self._ack_prefix
        limit = nc.max_payload
        sent: list[tuple[Outgoing, str]] = []  # (message, its reply token)
        for msg in out:
            subject, data, msg_id = msg
            assert msg_id is not None
            if len(data) > limit:  # the server would drop the link: never sent, said so
                self.last_error = f"a closed candle over max_payload ({limit} bytes) skipped"
                self.room.shed_candles(1)
                continue
            old = acks.get(msg_id)
            if old is not None:  # sent before: an ack for that send is no longer awaited
                tokens.pop(old[0], None)
            token = str(self._next_token)
            self._next_token += 1
            acks[msg_id] = (token, msg, now)
            tokens[token] = msg_id
            sent.append((msg, token))
        try:
            if nc.is_closed:
                raise ConnectionError("the NATS connection is closed")
            if not self._raw_client(nc):
                for (subject, data, msg_id), token in sent:
                    await nc.publish(subject, data, reply=prefix + token,
                                     headers={"Nats-Msg-Id": msg_id or ""})
                return
            blob = b"".join([_hpub(subject, prefix + token, msg_id or "", data)
                             for (subject, data, msg_id), token in sent])
            if not nc.is_connected and (
                    nc._pending_data_size + len(blob) > nc._max_pending_size):
                raise BufferError("the NATS client's reconnect buffer is full")
            await nc._send_command(blob)
            await nc._flush_pending()
        except Exception as exc:  # not even sent: kept, and sent again when connected
            self.last_error = f"{type(exc).__name__}: {exc}"
            for msg, token in sent:
                acks[msg[2] or ""] = (token, msg, 0.0)

    async def _on_ack(self, msg: Any) -> None:
        """A closed candle's ack (or JetStream's refusal, or "no responders": kept, and sent
        again when due)."""
        token = msg.subject[len(self._ack_prefix):]
        msg_id = self._tokens.pop(token, None)
        if msg_id is None:
            return  # an earlier send's, since sent again
        data = msg.data
        if not data:  # no responders: no stream holds the subject (removed, or lost)
            self.last_error = f"ack: no stream holds {msg_id}'s subject; making {self.opts.stream}"
            self._refused.add(msg_id)
            self._kick_local()
            return
        if b'"error"' in data:
            self.last_error = f"ack: {_api_error(data)}"
            return  # kept in _acks: sent again after ACK_TIMEOUT_S
        self._acks.pop(msg_id, None)
        if b'"duplicate":true' in data or b'"duplicate": true' in data:
            self.candles_duplicate += 1
        else:
            self.candles_published += 1
        if self._stalled and len(self._acks) < MAX_ACKS_PENDING // 2:
            self._stalled = False
            self._kick_local()

    async def _remake_stream(self) -> None:
        """The stream went away under a running publisher (`nats stream rm`, a server that
        lost its store): made again, and the closed candles it refused sent at once."""
        refused, self._refused = self._refused, set()
        try:
            await self._ensure_stream(self._js)
        except Exception as exc:  # they stay unacked: sent again after ACK_TIMEOUT_S
            self.last_error = f"stream: {exc}"
            return
        for msg_id in refused:
            held = self._acks.get(msg_id)
            if held is not None:
                self._acks[msg_id] = (held[0], held[1], 0.0)  # due now

    def _resend_unacked(self, now: float, force: bool = False) -> None:
        """Closed candles not acked in time go back to the front of the queue (same id)."""
        if not self._acks or self.state != "connected":
            return
        due = [held for held in self._acks.values()
               if force or now - held[2] > ACK_TIMEOUT_S]
        for token, msg, _ in due:
            self._tokens.pop(token, None)
            self.room.hold(1)
            self._items.appendleft((CANDLE, _Resend(msg), 1, now))


def _hpub(subject: str, reply: str, msg_id: str, data: bytes) -> bytes:
    """One HPUB command (`HPUB <subject> <reply> <header size> <total size>`) carrying the
    message id JetStream de-duplicates on."""
    hdr = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % msg_id.encode()
    return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (subject.encode(), reply.encode(), len(hdr),
                                                len(hdr) + len(data), hdr, data)


def _within(t: TextBatch, limit: int) -> TextBatch:
    """`t` without its payloads over `limit` bytes."""
    keep = [i for i, text in enumerate(t.payloads) if len(text) <= limit]
    return TextBatch([t.subjects[i] for i in keep], [t.payloads[i] for i in keep])


def _api_error(data: bytes) -> str:
    """JetStream's error reply in a few words."""
    import json

    try:
        err = json.loads(data).get("error") or {}
        return f"{err.get('description', 'error')} (code {err.get('err_code', '?')})"
    except (ValueError, AttributeError):
        return data[:120].decode("utf-8", "replace")


class _Resend:
    """A closed candle's message already encoded, sent again as it was."""

    __slots__ = ("msg",)

    def __init__(self, msg: Outgoing) -> None:
        self.msg = msg


def subjects_taken(opts: PublishOptions, other: str | None, subjects: list[str]) -> str:
    """The one line for a server where another stream already holds livecli's subjects
    (JetStream lets one stream hold a subject): publish into it when it captures all of them,
    else remove it or narrow its subjects."""
    from livecli.bus.subjects import ALL_SUBJECTS

    where = f"cannot publish to {opts.shown_url}: "
    made = f"so stream {opts.stream} cannot be made"
    if other is None:
        return (f"{where}another JetStream stream there already holds subjects under "
                f"{ALL_SUBJECTS}, {made}; find it with `nats stream ls` and publish into it "
                "([publish] stream) if it captures all of them, or remove it")
    if ALL_SUBJECTS in subjects or ">" in subjects:
        return (f"{where}JetStream stream {other} there already captures {ALL_SUBJECTS}, {made};"
                f' publish into it with [publish] stream = "{other}" (or '
                f"LIVECLI_PUBLISH_STREAM={other}), or remove it (`nats stream rm {other}`)")
    return (f"{where}JetStream stream {other} there holds part of {ALL_SUBJECTS} "
            f"({', '.join(subjects) or 'its subjects'}), {made}; remove it "
            f"(`nats stream rm {other}`) or give it other subjects")
