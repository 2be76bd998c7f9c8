"""The WebSocket fan-out: one feed to many clients, none of which can hold up another.

Runs on the asyncio loop. What the session's listeners queued (`tap.Inbox`) is taken in
batches, at most every `flush_every_s`: each tick and each candle is encoded to JSON once, and
the text is shared by every client that wants it. Clients with the same subscription form an
*audience* and get the very same message strings, so a hundred clients subscribed to everything
cost one encoding and a hundred queue appends per batch.

Every client has a bounded queue and a task of its own that sends from it; the hub only
appends. A client whose queue is full cannot keep up: it is dropped at once (close code 1008
and a reason, counted in the server's status) and the others never notice. Forming candles are
read from the session at most every `forming_every_s` for the instruments that ticked, and sent
when they changed; closes are sent as they happen and, while a client keeps up, never dropped.
Within one client, messages keep the session's order (a close before the next candle's update).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from livecli.core.intervals import parse_interval
from livecli.errors import LivecliError
from livecli.server import shapes
from livecli.server.status import status_json
from livecli.server.tap import CANDLE, FRAME, Inbox, frame_columns, frame_ticks, frame_tokens

log = logging.getLogger("livecli.server")

FLUSH_EVERY_S = 0.01
FORMING_EVERY_S = 0.25
ALL = "*"

TICKS, CANDLES, RAW = "ticks", "candles", ""


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one client receives. Tokens are instrument tokens; intervals are minutes."""

    ticks_all: bool = False
    ticks: frozenset[int] = frozenset()
    candles_all: frozenset[int] = frozenset()  # intervals wanted for every instrument
    candles: frozenset[tuple[int, int]] = frozenset()  # (interval minutes, token)
    status: bool = False

    def plus(self, o: Subscription) -> Subscription:
        return Subscription(
            self.ticks_all or o.ticks_all, self.ticks | o.ticks,
            self.candles_all | o.candles_all, self.candles | o.candles, self.status or o.status,
        )

    def minus(self, o: Subscription) -> Subscription:
        return Subscription(
            self.ticks_all and not o.ticks_all, self.ticks - o.ticks,
            self.candles_all - o.candles_all, self.candles - o.candles,
            self.status and not o.status,
        )

    def normalized(self) -> Subscription:
        """The same subscription with nothing listed twice (all-instrument wins)."""
        return Subscription(
            self.ticks_all, frozenset() if self.ticks_all else self.ticks, self.candles_all,
            frozenset(k for k in self.candles if k[0] not in self.candles_all), self.status,
        )


class NameBook(dict):
    """token -> (tradingsymbol, exchange), filled from the session's instruments on demand."""

    def __init__(self, instruments: Callable[[], Mapping[int, Any]]) -> None:
        super().__init__()
        self._instruments = instruments

    def __missing__(self, tok: int) -> tuple[str, str]:
        inst = self._instruments().get(tok)
        if inst is None:
            raise KeyError(tok)
        value = self[tok] = (inst.tradingsymbol, inst.exchange)
        return value

    def key(self, tok: int) -> str | None:
        """The symbol as the session resolves it unambiguously: "NSE:INFY"."""
        try:
            sym, ex = self[tok]
        except KeyError:
            return None
        return f"{ex}:{sym}"


@dataclass(eq=False)
class Audience:
    sub: Subscription
    clients: set[Client] = field(default_factory=set)


# A client that fell behind gets its queued batches merged into one message, up to this size:
# fewer, larger sends cost less per tick, so a lagging client catches up instead of sinking.
MAX_MERGED_CHARS = 1 << 20


class Client:
    """One WebSocket client: a bounded queue and the task that sends from it.

    Queue items are `(kind, body, text)`: for a batch, `kind` ("ticks", "candles") and `body`
    (its objects, comma-joined) beside the whole message `text`, shared with every client of
    the audience; for anything else `kind` is "" and only `text` counts.
    """

    def __init__(self, hub: Hub, send: Callable[[str], Awaitable[Any]],
                 close: Callable[[int, str], Awaitable[Any]], queue_size: int) -> None:
        self.hub = hub
        self._send = send
        self._close = close
        self.maxsize = queue_size
        self.queue: deque[tuple[str, str, str]] = deque()
        self._ready = asyncio.Event()
        self.sub = Subscription()
        self.dropped = False
        self.gone = False
        self.sent = 0
        self.task = asyncio.get_running_loop().create_task(self._pump())

    def offer(self, msg: str, kind: str = "", body: str = "") -> bool:
        """Queue a message; a full queue drops the client (it cannot keep up). Never waits."""
        if self.dropped or self.gone:
            return False
        if len(self.queue) >= self.maxsize:
            self.hub.drop(self, shapes.CLOSE_TOO_SLOW,
                          f"too slow: {self.maxsize} messages waiting; read faster or "
                          "subscribe to fewer streams")
            return False
        self.queue.append((kind, body, msg))
        self._ready.set()
        return True

    async def _pump(self) -> None:
        q, send, ready = self.queue, self._send, self._ready
        try:
            while True:
                if not q:
                    ready.clear()
                    await ready.wait()
                    continue
                kind, body, text = q.popleft()
                if kind and q and q[0][0] == kind:
                    parts, size = [body], len(body)
                    while q and q[0][0] == kind and size < MAX_MERGED_CHARS:
                        nxt = q.popleft()[1]
                        parts.append(nxt)
                        size += len(nxt)
                    text = shapes.batch(kind, parts)
                await send(text)
                self.sent += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away while we were sending
            log.debug("websocket send: %s", exc)
            self.hub.disconnect(self)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self._close(code, reason)


class Hub:
    """The fan-out. Create it on the loop thread (`start()`), feed it through its `inbox`."""

    def __init__(self, session: Any, inbox: Inbox, *, queue_size: int = 256,
                 flush_every_s: float = FLUSH_EVERY_S,
                 forming_every_s: float = FORMING_EVERY_S) -> None:
        self.session = session
        self.inbox = inbox
        self.queue_size = queue_size
        self.flush_every_s = flush_every_s
        self.forming_every_s = forming_every_s
        self.names = NameBook(lambda: session.instruments)
        self.encoder = shapes.TickEncoder(self.names)
        self.clients: set[Client] = set()
        self.clients_dropped = 0
        self.clients_total = 0
        self._gone_sent = 0
        # Per token, the newest tick seen: (frame, row, received_at), for GET /tick/latest.
        self.latest: dict[int, tuple[Any, int, float]] = {}
        self.last_status: Any = None
        self.last_status_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_drain = 0.0
        self._dirty: set[int] = set()
        self._forming_sent: dict[tuple[int, int], dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reindex()

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.inbox.take()  # what came before anyone could listen
        self.inbox.bind(self._loop, self._on_ready)
        self._spawn(self._forming_loop())

    async def stop(self, code: int = shapes.CLOSE_SHUTDOWN, reason: str = "server stopping") -> None:
        self.inbox.bind(None, None)
        for c in list(self.clients):
            self._remove(c)
            c.task.cancel()
            self._spawn(c.close(code, reason))
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        for t in self._tasks:
            t.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        assert self._loop is not None
        task: asyncio.Task[Any] = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- clients -----------------------------------------------------------------------------
    def connect(self, send: Callable[[str], Awaitable[Any]],
                close: Callable[[int, str], Awaitable[Any]]) -> Client:
        c = Client(self, send, close, self.queue_size)
        self.clients.add(c)
        self.clients_total += 1
        return c

    def disconnect(self, c: Client) -> None:
        """The client went away (or its handler ended): forget it."""
        if c.gone:
            return
        c.gone = True
        self._remove(c)
        c.task.cancel()

    def drop(self, c: Client, code: int, reason: str) -> None:
        """Drop a client that cannot keep up: stop sending, tell it why, count it."""
        if c.dropped or c.gone:
            return
        c.dropped = True
        self.clients_dropped += 1
        log.info("dropped a WebSocket client: %s", reason)
        self._remove(c)
        c.task.cancel()
        # The close frame goes out once the client reads what its socket already holds; the
        # wait is this task's alone.
        self._spawn(c.close(code, reason))

    def _remove(self, c: Client) -> None:
        if c in self.clients:
            self.clients.discard(c)
            self._gone_sent += c.sent
            if c.sub != Subscription():
                c.sub = Subscription()
                self._reindex()

    def subscribe(self, c: Client, sub: Subscription) -> None:
        self._set(c, c.sub.plus(sub))

    def unsubscribe(self, c: Client, sub: Subscription) -> None:
        self._set(c, c.sub.minus(sub))

    def _set(self, c: Client, sub: Subscription) -> None:
        sub = sub.normalized()
        if sub != c.sub and c in self.clients:
            c.sub = sub
            self._reindex()

    def _reindex(self) -> None:
        """Rebuild the routing tables from every client's subscription (rare: on changes)."""
        by_sub: dict[Subscription, Audience] = {}
        for c in self.clients:
            if c.sub != Subscription():
                by_sub.setdefault(c.sub, Audience(c.sub)).clients.add(c)
        self._tick_all: list[Audience] = []
        self._tick_by_token: dict[int, list[Audience]] = {}
        self._candle_all: dict[int, list[Audience]] = {}
        self._candle_by_key: dict[tuple[int, int], list[Audience]] = {}
        self._candle_ivs_by_token: dict[int, set[int]] = {}
        self._status: list[Audience] = []
        for aud in by_sub.values():
            s = aud.sub
            if s.ticks_all:
                self._tick_all.append(aud)
            for tok in s.ticks:
                self._tick_by_token.setdefault(tok, []).append(aud)
            for iv in s.candles_all:
                self._candle_all.setdefault(iv, []).append(aud)
            for key in s.candles:
                self._candle_by_key.setdefault(key, []).append(aud)
                self._candle_ivs_by_token.setdefault(key[1], set()).add(key[0])
            if s.status:
                self._status.append(aud)
        self._ticks_wanted = bool(self._tick_all or self._tick_by_token)
        self._candles_wanted = bool(self._candle_all or self._candle_by_key)
        self._forming_sent = {k: v for k, v in self._forming_sent.items()
                              if k[0] in self._candle_all or k in self._candle_by_key}

    # --- the batches ---------------------------------------------------------------------------
    def _on_ready(self) -> None:
        loop = self._loop
        if loop is None:
            return
        wait = self._last_drain + self.flush_every_s - loop.time()
        if wait > 0:
            loop.call_later(wait, self._drain)
        else:
            self._drain()

    def _drain(self, forming: Iterable[tuple[int, int, dict[str, Any]]] = ()) -> None:
        if self._loop is None:
            return
        items = self.inbox.take()
        self._last_drain = self._loop.time()
        if self.inbox.overflowed:
            self.inbox.overflowed = False
            self._drop_tick_clients()
        segs: dict[Audience, list[tuple[str, list[str]]]] = {}
        for item in items:
            kind = item[0]
            try:
                if kind == FRAME:
                    self._route_frame(item[1], item[2], segs)
                elif kind == CANDLE:
                    if self._candles_wanted:  # (no audience, nothing to route)
                        for c in item[1].candles():
                            self._route_candle(c.interval_min, c.instrument_token,
                                               shapes.encode_candle(c), segs)
                else:
                    self._route_status(item[1], segs)
            except Exception as exc:  # one bad item must not stop the fan-out
                log.warning("fan-out: %s: %s", type(exc).__name__, exc)
        for iv, tok, candle in forming:
            self._route_candle(iv, tok, shapes.dumps(shapes.candle_obj(candle)), segs)
        for aud, parts in segs.items():
            msgs = []
            for kind, texts in parts:
                if kind:
                    body = ",".join(texts)
                    msgs.append((shapes.batch_of(kind, body), kind, body))
                else:
                    msgs += [(t, "", "") for t in texts]
            for c in list(aud.clients):
                for text, kind, body in msgs:
                    if not c.offer(text, kind, body):
                        break

    @staticmethod
    def _add(segs: dict[Audience, list[tuple[str, list[str]]]], aud: Audience, kind: str,
             texts: list[str]) -> None:
        parts = segs.get(aud)
        if parts is None:
            segs[aud] = [(kind, list(texts))]
        elif parts[-1][0] == kind and kind:
            parts[-1][1].extend(texts)
        else:
            parts.append((kind, list(texts)))

    def _route_frame(self, frame: Any, received_at: float,
                     segs: dict[Audience, list[tuple[str, list[str]]]]) -> None:
        if self._ticks_wanted:
            cols = frame_columns(frame)
            toks = cols.token
        else:
            cols, toks = None, frame_tokens(frame)
        latest = self.latest
        for i, tok in enumerate(toks):
            latest[tok] = (frame, i, received_at)
        if self._candles_wanted:
            self._dirty.update(toks)
        if cols is None:
            return
        by_token = self._tick_by_token
        enc = self.encoder.encode(cols, received_at)
        if not self._tick_all:
            enc = [e for e in enc if e[0] in by_token]
        if self._tick_all:
            texts = [text for _, text in enc]
            for aud in self._tick_all:
                self._add(segs, aud, TICKS, texts)
        if by_token:
            for tok, text in enc:
                for aud in by_token.get(tok, ()):
                    self._add(segs, aud, TICKS, [text])

    def _route_candle(self, iv: int, tok: int, text: str,
                      segs: dict[Audience, list[tuple[str, list[str]]]]) -> None:
        for aud in self._candle_all.get(iv, ()):
            self._add(segs, aud, CANDLES, [text])
        for aud in self._candle_by_key.get((iv, tok), ()):
            self._add(segs, aud, CANDLES, [text])

    def _route_status(self, raw: Any, segs: dict[Audience, list[tuple[str, list[str]]]]) -> None:
        self.last_status, self.last_status_at = raw, time.monotonic()
        if not self._status:
            return
        text = shapes.message("status", **{**status_json(raw), "server": self.stats()})
        for aud in self._status:
            self._add(segs, aud, RAW, [text])

    def _drop_tick_clients(self) -> None:
        for c in list(self.clients):
            if c.sub.ticks_all or c.sub.ticks:
                self.drop(c, 1013, "server overloaded: ticks could not be fanned out in time; "
                                   "reconnect, or subscribe to fewer instruments")

    # --- forming candles -------------------------------------------------------------------------
    async def _forming_loop(self) -> None:
        while True:
            await asyncio.sleep(self.forming_every_s)
            try:
                updates = self._poll_forming()
            except Exception as exc:
                log.warning("forming candles: %s: %s", type(exc).__name__, exc)
                updates = []
            # The reads above took the session's lock, so every close that happened before
            # them is already in the inbox: drained first, each client sees it before the
            # next candle's update.
            self._drain(updates)

    def _poll_forming(self) -> list[tuple[int, int, dict[str, Any]]]:
        dirty, self._dirty = self._dirty, set()
        if not self._candles_wanted or not dirty:
            return []
        all_ivs = list(self._candle_all)
        by_tok = self._candle_ivs_by_token
        out = []
        for tok in dirty:
            ivs = set(all_ivs)
            ivs.update(by_tok.get(tok, ()))
            for iv in ivs:
                candle = self.current_candle(tok, iv)
                key = (iv, tok)
                if candle is None or self._forming_sent.get(key) == candle:
                    continue
                self._forming_sent[key] = candle
                out.append((iv, tok, candle))
        return out

    def current_candle(self, tok: int, iv: int) -> dict[str, Any] | None:
        key = self.names.key(tok)
        if key is None:
            return None
        try:
            return self.session.get_current_candle(key, f"{iv}min")
        except LivecliError:
            return None

    def snapshot(self, c: Client, pairs: Iterable[tuple[int, int]]) -> None:
        """Send `c` the forming candles of `pairs` now (a new subscriber's starting point)."""
        texts = []
        for iv, tok in pairs:
            candle = self.current_candle(tok, iv)
            if candle is not None:
                texts.append(shapes.dumps(shapes.candle_obj(candle)))
        if texts:
            c.offer(shapes.batch(CANDLES, texts))

    # --- reading -----------------------------------------------------------------------------------
    def latest_tick(self, tok: int) -> dict[str, Any] | None:
        """The newest tick of `tok` as the API sends it, or None before the first."""
        hit = self.latest.get(tok)
        if hit is None:
            return None
        frame, i, at = hit
        enc = shapes.encode_ticks([frame_ticks(frame)[i]], self.names, at)
        return json.loads(enc[0][1])

    def stats(self) -> dict[str, Any]:
        return {
            "clients": len(self.clients),
            "clients_total": self.clients_total,
            "clients_dropped": self.clients_dropped,
            "messages_sent": self._gone_sent + sum(c.sent for c in self.clients),
            "frames_shed": self.inbox.shed,
            "client_queue": self.queue_size,
        }


def interval_minutes(text: str, built: Iterable[Any]) -> int:
    """The minutes of a streamed interval; IntervalError (bad) or LookupError (not built)."""
    iv = parse_interval(text)
    names = [getattr(b, "name", str(b)) for b in built]
    if iv.name not in names:
        raise LookupError(f"{iv.name} candles are not built by this server (built: "
                          f"{', '.join(names)}); start it with --interval {iv.name}")
    return iv.minutes
