"""The NATS subscriber: a published feed's messages, on a thread of its own, to one handler.

What is read, and how:

* candles (`livecli.candles...`) through a JetStream consumer, from the start of the stream's
  history (so a consumer has the candles closed before it came), or, with a `durable` name,
  from where that named consumer last acknowledged (a restarted strategy resumes there);
* ticks (`livecli.ticks...`) and the status (`livecli.status`) live, as plain subscriptions:
  a consumer that falls behind is cut off from messages by the server (NATS's slow-consumer
  rule), never slowing the publisher; the last status is read from the stream at start.

`handler(kind, data)` is called on this thread, in order per subject; `kind` is "tick",
"candle" or "status" and `data` the message's JSON bytes. The client reconnects by itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from livecli.bus.loops import cancel_pending, reachable
from livecli.bus.subjects import CANDLES, STATUS_SUBJECT, TICKS, symbol_filters
from livecli.errors import ConnectionFailedError

log = logging.getLogger("livecli.bus")

CONNECT_TIMEOUT_S = 5.0
Handler = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class SubscribeOptions:
    url: str
    symbols: tuple[str, ...] = ()  # none: every instrument
    stream: str = "LIVECLI"
    durable: str | None = None
    credentials: str | None = None
    history: bool = True  # candles from the stream's start (False: only new ones)
    ticks: bool = True


class NatsSubscriber:
    """`start()` connects (or raises ConnectionFailedError); `close()` stops."""

    def __init__(self, opts: SubscribeOptions, handler: Handler) -> None:
        self.opts = opts
        self._handler = handler
        self._thread = threading.Thread(target=self._thread_main, name="livecli-nats-sub",
                                        daemon=True)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._startup_error: BaseException | None = None
        self.state = "connecting"
        self.last_error: str | None = None
        self.reconnects = 0
        self.received = 0
        self.done = threading.Event()

    def start(self) -> NatsSubscriber:
        self._thread.start()
        self._ready.wait(CONNECT_TIMEOUT_S + 10)
        if self._startup_error is not None or not self._ready.is_set():
            self.close()
            raise ConnectionFailedError(
                f"cannot attach to {self.opts.url} ({self._startup_error or 'timed out'}): is "
                f"a livecli feed published there (stream {self.opts.stream})? Start one with "
                "`livecli stream ... --publish nats://HOST:4222`"
            )
        return self

    def close(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        if self._thread.is_alive():
            self._thread.join(10)

    # --- the subscriber's thread ---------------------------------------------------------------
    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        except BaseException as exc:
            self.state = "failed"
            self.last_error = f"{type(exc).__name__}: {exc}"
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
        finally:
            self._loop = None
            cancel_pending(loop)
            loop.close()
            self.done.set()

    def _filters(self, kind: str) -> Sequence[str]:
        if not self.opts.symbols:
            return [f"{TICKS}.>" if kind == "ticks" else f"{CANDLES}.>"]
        return sorted({symbol_filters(kind, s) for s in self.opts.symbols})

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        opts = self.opts

        async def on_disconnect() -> None:
            self.state = "reconnecting"

        async def on_reconnect() -> None:
            self.reconnects += 1
            self.state = "connected"

        async def on_error(exc: Exception) -> None:
            self.last_error = f"{type(exc).__name__}: {exc}"

        kw: dict[str, Any] = {}
        if opts.credentials:
            kw["user_credentials"] = opts.credentials
        await reachable(opts.url, CONNECT_TIMEOUT_S)
        nc = await nats.connect(
            servers=[opts.url], connect_timeout=CONNECT_TIMEOUT_S, allow_reconnect=True,
            max_reconnect_attempts=-1, reconnect_time_wait=0.5, ping_interval=5,
            disconnected_cb=on_disconnect, reconnected_cb=on_reconnect, error_cb=on_error,
            name="livecli-consumer", **kw,
        )
        try:
            js = nc.jetstream()
            await js.stream_info(opts.stream)  # the feed is there, or a clear error
            handler = self._handler

            def deliver(kind: str) -> Callable[[Any], Any]:
                async def cb(msg: Any) -> None:
                    self.received += 1
                    try:
                        handler(kind, msg.data)
                    except Exception as exc:  # the handler's own bug: counted, never fatal
                        self.last_error = f"handler: {type(exc).__name__}: {exc}"
                    if opts.durable:
                        await msg.ack()
                return cb

            try:  # the newest status, so the consumer knows the feed at once
                last = await js.get_last_msg(opts.stream, STATUS_SUBJECT)
                if last.data:
                    handler("status", last.data)
            except Exception:
                pass  # none published yet
            await nc.subscribe(STATUS_SUBJECT, cb=deliver("status"))
            if opts.ticks:
                for subject in self._filters("ticks"):
                    await nc.subscribe(subject, cb=deliver("tick"),
                                       pending_msgs_limit=200_000,
                                       pending_bytes_limit=256 * 1024 * 1024)
            policy = DeliverPolicy.ALL if opts.history else DeliverPolicy.NEW
            for i, subject in enumerate(self._filters("candles")):
                if opts.durable:
                    name = opts.durable if i == 0 else f"{opts.durable}-{i}"
                    await js.subscribe(subject, stream=opts.stream, durable=name,
                                       cb=deliver("candle"), manual_ack=True,
                                       config=ConsumerConfig(deliver_policy=policy,
                                                             ack_policy=AckPolicy.EXPLICIT,
                                                             max_ack_pending=20_000))
                else:
                    await js.subscribe(subject, stream=opts.stream, cb=deliver("candle"),
                                       ordered_consumer=True,
                                       config=ConsumerConfig(deliver_policy=policy))
            self._stop = asyncio.Event()
            self._loop = loop
            self.state = "connected"
            self._ready.set()
            await self._stop.wait()
        finally:
            self.state = "closed"
            try:
                await asyncio.wait_for(nc.close(), 5)
            except Exception:
                pass

