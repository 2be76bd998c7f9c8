"""The live Kite ticker feed: kiteconnect's KiteTicker, supervised so it never fails silently.

kiteconnect's KiteTicker carries the bytes, but left alone it has faults livecli cannot live with
(see KITE.md): its liveness check is a no-op, a 403 on the upgrade is retried forever, its
reconnect factory re-arms itself after `close()`, `stop()` kills the process's only reactor,
sends happen on the caller's thread, and an exception in a callback kills the connection.
`KiteFeed` keeps the transport and takes over everything around it:

- one shared reactor thread (`livecli.kite.reactor`), never stopped, so feeds can stop and
  start again in one process; a link ends with `close()`, never `stop()`;
- its own reconnect loop (short exponential backoff with jitter) instead of Twisted's, with
  every instrument re-subscribed in its own mode after each reconnect;
- a link is "connected" only once a message (a heartbeat will do) came after the upgrade; a
  server that takes the upgrade and then says nothing is still "connecting";
- a watchdog: no message at all (heartbeats included) for `watchdog_s` -> "stale" -> drop ->
  "reconnecting";
- HTTP 401/403 on the upgrade is fatal at once (`AuthError`), never retried;
- more than 3000 instruments are spread over up to 3 links; more than 9000 are refused;
- raw frames go to livecli's decoder (`livecli.kite.codec`), not kiteconnect's parser, and an
  exception in livecli's own handler is counted and reported, never fatal to the link;
- a frame cut short costs only its broken packet (the complete ones are handed on, the frame
  is counted as malformed); ticks of tokens the link never subscribed (or has unsubscribed)
  are dropped and counted, never handed on;
- no message larger than `MAX_MESSAGE_BYTES` is accepted: autobahn refuses it at its frame
  header, before buffering, and the link reconnects;
- server text (error messages, close reasons) is cut to one short line before it reaches a
  status or a log, and `last_error` clears once the link is back and delivering;
- the local stand-in names itself and its market clock in upgrade response headers (real Kite
  never does): `server_clock` exposes them.

Threads: every KiteTicker callback and every send runs on the reactor thread; the public
methods may be called from any thread. `on_frame`, `on_text` and `on_state` run on the reactor
thread: keep them quick (hand heavy work to another thread).
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from livecli.config import mask
from livecli.errors import (
    AuthError,
    ConnectionFailedError,
    LivecliError,
    TooManyInstrumentsError,
    UsageError,
)
from livecli.kite import reactor as _reactor
from livecli.kite.protocol import MAX_CONNECTIONS as KITE_MAX_CONNECTIONS
from livecli.kite.protocol import (
    MAX_MESSAGE_BYTES,
    MODES,
    STANDIN_CLOCK_HEADER,
    STANDIN_HEADER,
    STANDIN_SPEED_HEADER,
    TOKEN_ADVICE,
)
from livecli.kite.protocol import MAX_PER_CONNECTION as KITE_MAX_PER_CONNECTION
from livecli.kite.text import shorten

log = logging.getLogger(__name__)

# Feed and link states, in the order a dashboard cares about them.
IDLE = "idle"
CONNECTING = "connecting"
CONNECTED = "connected"
STALE = "stale"
RECONNECTING = "reconnecting"
AUTH_FAILED = "auth_failed"
FAILED = "failed"
CLOSED = "closed"

AUTH_MESSAGE = TOKEN_ADVICE
_UPGRADE_STATUS = re.compile(r"upgrade failed \((\d{3})")
_AUTH_STATUSES = frozenset({401, 403})
_RATE_WINDOW_S = 5.0


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """One WebSocket connection of a feed."""

    index: int
    state: str
    instruments: int
    attempt: int  # consecutive failed attempts; 0 once a reconnected link proved alive
    retry_in_s: float | None  # seconds to the next attempt while reconnecting
    reconnects: int
    last_message_age_s: float | None
    # Why the link is not (or was just not) working, one line of at most ~200 characters;
    # None once it is back and delivering.
    last_error: str | None


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """A snapshot of the whole feed, safe to read from any thread."""

    state: str
    connections: int
    connected: int
    instruments: int
    attempt: int
    retry_in_s: float | None
    reconnects: int
    last_message_age_s: float | None
    ticks_per_s: float
    frames: int
    ticks: int  # handed on to on_frame
    heartbeats: int
    malformed: int  # binary messages cut short (their complete packets still handed on)
    text_messages: int
    handler_errors: int
    last_error: str | None  # the feed's latest problem, bounded like LinkStatus.last_error
    last_handler_error: str | None
    links: tuple[LinkStatus, ...]
    # Ticks dropped because their token is not subscribed on the link that carried them.
    unsubscribed_ticks: int = 0

    @property
    def ok(self) -> bool:
        return self.state == CONNECTED


# --------------------------------------------------------------------------- kiteconnect glue
_classes: tuple[type, type] | None = None


def _ticker_classes() -> tuple[type, type]:
    """KiteTicker and its factory, adapted; built on first use so kiteconnect loads lazily."""
    global _classes
    if _classes is not None:
        return _classes
    from kiteconnect import KiteTicker
    from kiteconnect.ticker import KiteTickerClientFactory

    class SupervisedFactory(KiteTickerClientFactory):
        """Reports every connection end to its link and never reconnects by itself.

        Twisted's `resetDelay()` (called by kiteconnect on every upgrade) re-enables retrying
        even after `stopTrying()`; livecli's link decides about reconnects instead.
        """

        link: Any = None
        noisy = False

        def startedConnecting(self, connector: Any) -> None:
            if self.link is not None:
                self.link.connector = connector

        def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
            if self.link is not None:
                self.link.ended(self, reason)

        def clientConnectionLost(self, connector: Any, reason: Any) -> None:
            if self.link is not None:
                self.link.ended(self, reason)

        def resetDelay(self) -> None:
            self.continueTrying = 0

        def retry(self, connector: Any = None) -> None:
            return None

    class SupervisedTicker(KiteTicker):
        """KiteTicker whose callbacks go straight to a livecli link.

        kiteconnect's own `_on_message` would parse text (and report `{"type":"error"}` as a
        connection error), `_on_open` would resubscribe from its own bookkeeping, and
        `_on_close`/`_on_error` log at ERROR level: the link does all of that itself.
        """

        link: Any = None

        def _create_connection(self, url: str, **kwargs: Any) -> None:
            factory = SupervisedFactory(url, **kwargs)
            factory.link = self.link
            self.link.factory = factory
            factory.debug = False
            factory.on_open = self._on_open
            factory.on_error = self._on_error
            factory.on_close = self._on_close
            factory.on_message = self.link.on_message  # hot path: no extra hop
            factory.on_connect = self._on_connect
            factory.on_reconnect = None
            factory.on_noreconnect = None
            factory.maxRetries = 0
            factory.continueTrying = 0
            # A stalled handshake must not hold a link for autobahn's default 5 s plus TCP's.
            # No message (nor frame) beyond Kite's largest: autobahn checks the length in the
            # frame header and fails the connection before buffering the payload.
            factory.setProtocolOptions(
                openHandshakeTimeout=self.connect_timeout,
                maxMessagePayloadSize=MAX_MESSAGE_BYTES,
                maxFramePayloadSize=MAX_MESSAGE_BYTES,
            )
            self.factory = factory
            self.ws = None

        def _on_connect(self, ws: Any, response: Any) -> None:
            self.ws = ws  # as kiteconnect's own: its subscribe() sends through it
            self.link.upgraded(response)

        def _on_open(self, ws: Any) -> None:
            self.link.opened(ws)

        def _on_close(self, ws: Any, code: Any, reason: Any) -> None:
            self.link.closed(code, reason)

        def _on_error(self, ws: Any, code: Any, reason: Any) -> None:
            self.link.errored(code, reason)

    _classes = (SupervisedTicker, SupervisedFactory)
    return _classes


# --------------------------------------------------------------------------------- one link
class _Link:
    """One KiteTicker connection and its supervision. Runs on the reactor thread only,
    except `tokens`, which the feed mutates under its lock (and the receiving path reads)."""

    def __init__(self, feed: KiteFeed, index: int) -> None:
        self.feed = feed
        self.index = index
        self.tokens: dict[int, str] = {}
        # The tokens' keys as a sorted array, for the receiving path's filter; replaced whole
        # (under the feed's lock) whenever the set of tokens changes.
        self.wanted: Any = ()
        self.state = IDLE
        self.attempt = 0
        self.reconnects = 0
        self.retry_at: float | None = None
        self.retry_call: Any = None
        self.connector: Any = None
        self.factory: Any = None
        self.ws: Any = None  # the autobahn protocol while the link is open
        self.live = False  # a message arrived since this connection's upgrade
        self.ws_close: tuple[Any, Any] | None = None  # autobahn's (code, reason) at the close
        self.last_rx = 0.0  # monotonic time of the last message of any kind
        self.opened_at = 0.0
        self.began_at = 0.0
        self.last_error: str | None = None
        self.fatal: LivecliError | None = None
        self.stopping = False
        self.close_call: Any = None
        self.kt: Any = None

    def error(self, text: str) -> None:
        """Record why this link is (or was just) not working: token masked, one short line."""
        self.last_error = shorten(self.feed.scrub(text))

    # -- lifecycle ---------------------------------------------------------------------
    def begin(self) -> None:
        """Open (or re-open) the connection. Reactor thread."""
        self.retry_call = None
        self.retry_at = None
        if self.stopping or self.fatal is not None:
            return
        ticker_cls, _ = _ticker_classes()
        feed = self.feed
        kt = ticker_cls(
            feed._api_key,
            feed._access_token,
            root=feed._ws_url,
            reconnect=False,
            connect_timeout=max(1, round(feed._connect_timeout_s)),
        )
        kt.link = self
        kt.on_ticks = None  # livecli decodes the raw frames itself
        kt.on_message = None
        self.kt = kt
        self.ws = None
        self.live = False
        self.ws_close = None
        self.connector = None
        self.factory = None
        self.began_at = time.monotonic()
        self._set_state(CONNECTING)
        try:
            # The reactor is running, so connect() only builds the factory and calls connectWS;
            # it never runs (or later stops) the reactor.
            kt.connect(threaded=True)
        except Exception as exc:  # a URL autobahn refuses: no retry can fix it
            self.feed._fail(
                ConnectionFailedError(
                    f"cannot open the ticker connection: {shorten(feed.scrub(str(exc)))}"
                )
            )
            return

    def upgraded(self, response: Any) -> None:
        """The server answered the upgrade: read what its headers say about its clock."""
        headers = getattr(response, "headers", None) or {}
        self.feed._server_clock = _standin_clock(headers, time.time(), self.index)

    def opened(self, ws: Any) -> None:
        """WebSocket handshake done: resubscribe everything in its own mode.

        The link stays "connecting" until its first message: a server that completes the
        upgrade and then sends nothing (not even a heartbeat) has not given a working link.
        """
        if self.stopping:
            ws.sendClose()
            return
        self.ws = ws
        now = time.monotonic()
        self.opened_at = now
        self.last_rx = now
        with self.feed._lock:
            by_mode: dict[str, list[int]] = {}
            for tok, mode in self.tokens.items():
                by_mode.setdefault(mode, []).append(tok)
        for mode, toks in by_mode.items():
            self.send_subscribe(toks, mode)

    def _first_message(self) -> None:
        """The (re)opened link delivered: it works. Back to short delays, errors cleared."""
        self.live = True
        if self.stopping or self.ws is None:
            return
        self.attempt = 0
        self.last_error = None
        self.feed.last_error = None
        self._set_state(CONNECTED)

    def errored(self, code: Any, reason: Any) -> None:
        self._check_auth(reason)

    def closed(self, code: Any, reason: Any) -> None:
        self.ws = None
        self.ws_close = (code, reason)
        self._check_auth(reason)

    def _check_auth(self, reason: Any) -> None:
        m = _UPGRADE_STATUS.search(str(reason or ""))
        if m and int(m.group(1)) in _AUTH_STATUSES and self.fatal is None:
            self.fatal = AuthError(AUTH_MESSAGE)
            self.error(f"upgrade refused: {reason}")
            self.feed._fail(self.fatal)

    def ended(self, factory: Any, reason: Any) -> None:
        """The TCP connection (or the attempt to make one) is over. Reactor thread."""
        if factory is not self.factory and self.factory is not None:
            return  # a stale report from an attempt already superseded
        self.ws = None
        self.connector = None
        if self.close_call is not None and self.close_call.active():
            self.close_call.cancel()
        self.close_call = None
        if self.stopping or self.fatal is not None or self.feed.failed is not None:
            self._set_state(CLOSED)
            self.feed._link_closed()
            return
        if self.state != STALE:  # the watchdog's reason stands: the drop was ours
            text = self._end_text(reason)
            if text:
                self.error(text)
        self.attempt += 1
        self.reconnects += 1
        feed = self.feed
        if feed._max_attempts is not None and self.attempt > feed._max_attempts:
            feed._fail(
                ConnectionFailedError(
                    f"ticker connection lost and {feed._max_attempts} reconnect attempts failed"
                    f" (last error: {self.last_error}); check the network and retry"
                )
            )
            return
        delay = feed._backoff(self.attempt)
        self.retry_at = time.monotonic() + delay
        self.retry_call = feed._reactor.callLater(delay, self.begin)
        self._set_state(RECONNECTING)
        log.info(
            "ticker link %d reconnecting: attempt %d in %.2fs (%s)",
            self.index, self.attempt, delay, self.last_error,
        )

    def _end_text(self, reason: Any) -> str:
        """Why the connection ended, in words: the WebSocket layer's reason when it has a
        specific one (a handshake time-out, a message over the limit, a failed upgrade, the
        server's close frame), else the TCP-level one."""
        code, why = self.ws_close or (None, None)
        why = str(why or "")
        unclean = _UNCLEAN.match(why)
        detail = unclean.group(1) if unclean else ""
        if "opening handshake timeout" in detail:
            return (f"WebSocket handshake timed out after {self.kt.connect_timeout:g}s: the "
                    "server took the connection but never answered the upgrade")
        too_big = _TOO_BIG.search(detail)
        if too_big:
            return (f"the server sent a message of {int(too_big.group(1)):,} bytes, more than "
                    f"the {int(too_big.group(2)):,} bytes any Kite message has; reconnecting")
        if detail and not detail.startswith(("peer dropped", "I dropped")):
            return detail
        if not unclean and isinstance(code, int) and code != 1006:
            return f"connection closed by the server (code {code}{': ' + why if why else ''})"
        return _reason_text(reason)

    def close(self) -> None:
        """End this link for good: close() + no retry, never KiteTicker.stop(). Reactor thread."""
        self.stopping = True
        if self.retry_call is not None and self.retry_call.active():
            self.retry_call.cancel()
        self.retry_call = None
        self.retry_at = None
        if self.ws is not None and self.kt is not None:
            try:
                self.kt.close(1000, "livecli closing")
            except Exception:
                pass
            # A peer that never answers the close must not hold stop() hostage.
            self.close_call = self.feed._reactor.callLater(1.0, self._abort)
        elif self.connector is not None:
            self._abort()
        else:
            self._set_state(CLOSED)
            self.feed._link_closed()

    def _abort(self) -> None:
        self.close_call = None
        if self.ws is not None:
            self.ws.dropConnection(abort=True)
        elif self.connector is not None:
            try:
                self.connector.disconnect()
            except Exception:
                pass

    # -- the hot path ------------------------------------------------------------------
    def on_message(self, ws: Any, payload: bytes, is_binary: bool) -> None:
        self.last_rx = time.monotonic()
        if not self.live:
            self._first_message()
        if not self.stopping:
            self.feed._on_message(self, payload, is_binary)

    # -- watchdog (every few hundred ms) -----------------------------------------------
    def check(self, now: float) -> None:
        feed = self.feed
        if self.ws is not None and self.state in (CONNECTED, CONNECTING):
            silent = now - self.last_rx
            if silent > feed._watchdog_s:
                since = "" if self.live else " since the upgrade"
                self.last_error = (f"no message{since} for {silent:.1f}s "
                                   f"(watchdog {feed._watchdog_s:g}s)")
                log.info("ticker link %d stale: %s; reconnecting", self.index, self.last_error)
                self._set_state(STALE)
                self.ws.dropConnection(abort=True)
        elif self.state == CONNECTING and now - self.began_at > feed._connect_timeout_s + 2.0:
            # A backstop: autobahn's handshake time-out (or TCP's) should have ended it first.
            self.last_error = f"connect timed out after {feed._connect_timeout_s:g}s"
            self._abort()

    # -- sends (reactor thread; skipped while not open: opened() resubscribes) ----------
    def send_subscribe(self, tokens: list[int], mode: str) -> None:
        if self.ws is None or not tokens:
            return
        try:
            self.kt.subscribe(tokens)
            self.kt.set_mode(mode, tokens)
        except Exception as exc:
            self._send_failed(exc)

    def send_mode(self, tokens: list[int], mode: str) -> None:
        if self.ws is None or not tokens:
            return
        try:
            self.kt.set_mode(mode, tokens)
        except Exception as exc:
            self._send_failed(exc)

    def send_unsubscribe(self, tokens: list[int]) -> None:
        if self.ws is None or not tokens:
            return
        try:
            self.kt.unsubscribe(tokens)
        except Exception as exc:
            self._send_failed(exc)

    def _send_failed(self, exc: Exception) -> None:
        # The server's view of our subscriptions is now unknown: reconnect re-sends them all.
        self.error(f"send failed: {exc}")
        if self.ws is not None:
            self.ws.dropConnection(abort=True)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.feed._changed()

    def snapshot(self, now: float) -> LinkStatus:
        retry_in = None if self.retry_at is None else max(0.0, self.retry_at - now)
        age = None if not self.last_rx else max(0.0, now - self.last_rx)
        return LinkStatus(
            self.index, self.state, len(self.tokens), self.attempt, retry_in,
            self.reconnects, age, self.last_error,
        )


_UNCLEAN = re.compile(r"connection was closed uncleanly \((.*)\)$", re.DOTALL)
_TOO_BIG = re.compile(r"size (\d+) exceeds payload limit of (\d+)")


def _reason_text(reason: Any) -> str:
    """One line from a Twisted Failure (or anything else) describing why a connection ended."""
    value = getattr(reason, "value", reason)
    if value is None:
        return ""
    name = type(value).__name__
    text = str(value).strip()
    if name in ("ConnectionDone",):
        return "connection closed by the server"
    return f"{name}: {text}" if text else name


def _standin_clock(headers: Mapping[str, Any], wall: float,
                   link: int) -> tuple[float, float, float] | None:
    """(market epoch s at the upgrade, wall epoch s at the upgrade, market s per real s) from
    the stand-in's upgrade headers; None from a server that does not name itself (real Kite)
    or names a clock that cannot be (not a finite positive time, or speed)."""
    h = {str(k).lower(): v for k, v in headers.items()}
    if STANDIN_HEADER.lower() not in h:
        return None
    try:
        market = float(h[STANDIN_CLOCK_HEADER.lower()])
        speed = float(h[STANDIN_SPEED_HEADER.lower()])
    except (KeyError, TypeError, ValueError):
        market = speed = math.nan
    if not (math.isfinite(market) and market > 0 and math.isfinite(speed) and speed > 0):
        log.info("ticker link %d: the stand-in's clock headers are unusable (%s); ignored",
                 link, shorten({k: v for k, v in h.items() if k.startswith("x-livecli")}))
        return None
    return (market, wall, speed)


# --------------------------------------------------------------------------------- the feed
class KiteFeed:
    """Live Kite ticks over 1-3 supervised KiteTicker connections on the shared reactor.

    `on_frame(frame, received_at)` gets every decoded binary frame (`received_at` = epoch s);
    `on_text(message)` every text message (order postbacks, errors, broker alerts);
    `on_state(status)` every state change. All three run on the reactor thread.

    States (`ConnectionStatus.state`, worst link wins): idle (not started), connecting,
    connected, stale (watchdog fired; the link is being dropped), reconnecting (`attempt`,
    `retry_in_s`), auth_failed (HTTP 401/403: fatal, `failed` is an AuthError), failed (gave
    up after `max_attempts`, `failed` is a ConnectionFailedError), closed (after `stop()`).
    `reconnects` counts every reconnect attempt since start. A fatal end sets `failed`, wakes
    `wait_done()` and closes every link; `raise_if_failed()` re-raises it.

    A link is connected once a message came after its upgrade. `last_error` says why a link is
    not (or was not) working, on one short line; it clears once the link is back and
    delivering (a fatal error stays). `malformed` counts frames cut short (their complete
    packets are still handed on), `unsubscribed_ticks` the ticks dropped because their token
    is not subscribed on that link.
    """

    def __init__(
        self,
        api_key: str,
        access_token: str,
        ws_url: str,
        on_frame: Callable[[Any, float], None],
        on_text: Callable[[Any], None] | None = None,
        on_state: Callable[[ConnectionStatus], None] | None = None,
        *,
        watchdog_s: float = 5.0,
        reconnect_initial_s: float = 0.5,
        reconnect_max_delay_s: float = 10.0,
        max_attempts: int | None = None,
        connect_timeout_s: float = 10.0,
        max_per_connection: int = KITE_MAX_PER_CONNECTION,
        max_connections: int = KITE_MAX_CONNECTIONS,
    ) -> None:
        if not api_key:
            raise AuthError("no Kite api_key configured; run `livecli login`")
        if not access_token:
            raise AuthError("no access token; run `livecli login`")
        if not ws_url.startswith(("ws://", "wss://")):
            raise UsageError(f"ticker URL must start with ws:// or wss://, got {ws_url!r}")
        if watchdog_s <= 0 or reconnect_initial_s <= 0 or reconnect_max_delay_s <= 0:
            raise UsageError("watchdog and reconnect delays must be positive numbers of seconds")
        if max_per_connection < 1 or max_connections < 1:
            raise UsageError("max_per_connection and max_connections must be at least 1")
        self._api_key = api_key
        self._access_token = access_token
        self._masked = mask(access_token)
        self._ws_url = ws_url.rstrip("?")
        self._on_frame = on_frame
        self._on_text = on_text
        self._on_state = on_state
        self._watchdog_s = float(watchdog_s)
        self._initial_s = float(reconnect_initial_s)
        self._max_delay_s = max(float(reconnect_max_delay_s), self._initial_s)
        self._max_attempts = max_attempts
        self._connect_timeout_s = float(connect_timeout_s)
        self._per_conn = max_per_connection
        self._max_conns = max_connections

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._links: list[_Link] = []
        self._owner: dict[int, _Link] = {}
        self._started = False
        self._stopping = False
        self._state = IDLE
        self._last_reported: tuple[Any, ...] | None = None
        self._done = threading.Event()
        self._reactor: Any = None
        self._watchdog: Any = None
        self._server_clock: tuple[float, float, float] | None = None
        self.failed: LivecliError | None = None
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.frames = 0
        self.ticks = 0
        self.heartbeats = 0
        self.malformed = 0
        self.text_messages = 0
        self.handler_errors = 0
        self.unsubscribed_ticks = 0
        self.last_handler_error: str | None = None
        self.last_error: str | None = None
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)

    def __repr__(self) -> str:
        return f"KiteFeed(url={self._ws_url!r}, access_token={self._masked!r}, state={self._state!r})"

    # -- public API ------------------------------------------------------------------------
    @property
    def max_instruments(self) -> int:
        return self._per_conn * self._max_conns

    @property
    def server_clock(self) -> tuple[float, float, float] | None:
        """The stand-in's clock as its latest upgrade response gave it: (market epoch s at the
        upgrade, wall-clock epoch s at the upgrade, market seconds per real second).

        None until a link is upgraded, and from real Kite, which sends no such headers (a
        market time then is the wall clock). A simulated market may run at any hour and speed:
        market now = market + (time.time() - wall) * speed.
        """
        return self._server_clock

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the receiving (reactor) thread, after the frames the links already read.

        How the session tells a quiet feed from a busy receiver: a check queued here runs only
        once the reactor has handled what its sockets had ready, so "no frame for a second"
        measured there means the links delivered none, not that livecli fell behind.
        """
        _reactor.call(fn)

    def start(self, subscriptions: Mapping[int, str] | None = None) -> None:
        """Connect and subscribe `{token: mode}`; returns at once (see `wait_connected`).

        Without `subscriptions`, the current ones are used (those of the previous run, or
        given to `subscribe()` before start). Raises TooManyInstrumentsError (before
        connecting) beyond 3 x 3000 instruments.
        """
        subs = _validated(self.subscriptions() if subscriptions is None else subscriptions)
        if len(subs) > self.max_instruments:
            raise self._too_many(len(subs))
        from livecli.kite.codec import MalformedFrame, decode_frame, decode_text

        self._decode_frame = decode_frame
        self._decode_text = decode_text
        self._malformed_exc = MalformedFrame
        with self._lock:
            if self._started and not self._stopping:
                raise UsageError("this feed is already running; stop() it before start()")
            self._started = True
            self._stopping = False
            self._state = CONNECTING
            self._done.clear()
            self.failed = None
            self._server_clock = None
            self._reset_counters()
            self._links = []
            self._owner = {}
            n_links = max(1, -(-len(subs) // self._per_conn))
            self._links = [_Link(self, i) for i in range(n_links)]
            # Balanced split, so each link keeps headroom for later subscribe() calls.
            for i, (tok, mode) in enumerate(sorted(subs.items())):
                link = self._links[i % n_links]
                link.tokens[tok] = mode
                self._owner[tok] = link
            links = list(self._links)
            self._refresh_wanted(links)
        self._reactor = _reactor.get_reactor()
        log.info(
            "ticker feed starting: %d instruments over %d connection(s) to %s (token %s)",
            len(subs), len(links), self.scrub(self._ws_url), self._masked,
        )
        for link in links:
            _reactor.call(link.begin)
        _reactor.call(self._start_watchdog)

    def subscribe(self, tokens: Iterable[int], mode: str = "quote") -> None:
        """Subscribe tokens in `mode`; tokens already subscribed switch to `mode`."""
        mode = _valid_mode(mode)
        toks = _token_list(tokens)
        sends: list[tuple[_Link, list[int], list[int]]] = []
        new_links: list[_Link] = []
        with self._lock:
            new = [t for t in dict.fromkeys(toks) if t not in self._owner]
            if len(self._owner) + len(new) > self.max_instruments:
                raise self._too_many(len(self._owner) + len(new))
            per: dict[_Link, tuple[list[int], list[int]]] = {}
            for tok in toks:
                link = self._owner.get(tok)
                if link is not None:
                    if link.tokens.get(tok) != mode:
                        link.tokens[tok] = mode
                        per.setdefault(link, ([], []))[1].append(tok)
                    continue
                link = self._link_with_room(new_links)
                link.tokens[tok] = mode
                self._owner[tok] = link
                per.setdefault(link, ([], []))[0].append(tok)
            sends = [(lk, fresh, changed) for lk, (fresh, changed) in per.items()]
            self._refresh_wanted([lk for lk, fresh, _ in sends if fresh])
            running = self._started and not self._stopping
        if not running:
            return
        for link in new_links:
            _reactor.call(link.begin)
        for link, fresh, changed in sends:
            if link in new_links:
                continue  # opened() subscribes everything it owns
            if fresh:
                _reactor.call(link.send_subscribe, fresh, mode)
            if changed:
                _reactor.call(link.send_mode, changed, mode)

    def set_mode(self, tokens: Iterable[int], mode: str) -> None:
        """Switch subscribed tokens to `mode` (tokens not yet subscribed are subscribed)."""
        self.subscribe(tokens, mode)

    def unsubscribe(self, tokens: Iterable[int]) -> None:
        """Stop receiving these tokens (unknown tokens are ignored)."""
        per: dict[_Link, list[int]] = {}
        with self._lock:
            for tok in _token_list(tokens):
                link = self._owner.pop(tok, None)
                if link is not None:
                    link.tokens.pop(tok, None)
                    per.setdefault(link, []).append(tok)
            self._refresh_wanted(list(per))
            running = self._started and not self._stopping
        if running:
            for link, toks in per.items():
                _reactor.call(link.send_unsubscribe, toks)

    def subscriptions(self) -> dict[int, str]:
        """The wanted subscriptions, `{token: mode}` (what every reconnect re-sends)."""
        with self._lock:
            return {tok: link.tokens[tok] for tok, link in self._owner.items()}

    def stop(self, timeout: float = 3.0) -> None:
        """Close every link (never the reactor). Idempotent; the feed may start() again."""
        with self._lock:
            if not self._started:
                return
            already = self._stopping
            self._stopping = True
            links = list(self._links)
        if not already:
            log.info("ticker feed stopping")
            _reactor.call(self._close_all, links)
        if _reactor.in_reactor_thread():
            return  # called from a callback: the links finish closing after it returns
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(lk.state == CLOSED for lk in links):
                left = deadline - time.monotonic()
                if left <= 0:
                    log.info("ticker feed: links did not close within %.1fs", timeout)
                    break
                self._cond.wait(left)
            if self.failed is None:
                self._state = CLOSED
            self._done.set()
            self._cond.notify_all()

    def status(self) -> ConnectionStatus:
        """A consistent-enough snapshot of state and counters, from any thread."""
        now = time.monotonic()
        links = tuple(lk.snapshot(now) for lk in list(self._links))
        ages = [s.last_message_age_s for s in links if s.last_message_age_s is not None]
        retry = [s.retry_in_s for s in links if s.retry_in_s is not None]
        errors = [s.last_error for s in links if s.last_error]
        last_error = self.last_error or (errors[-1] if errors else None)
        if self.failed is not None:
            last_error = str(self.failed)
        return ConnectionStatus(
            state=self._aggregate(),
            connections=len(links),
            connected=sum(1 for s in links if s.state == CONNECTED),
            instruments=len(self._owner),
            attempt=max((s.attempt for s in links), default=0),
            retry_in_s=min(retry) if retry else None,
            reconnects=sum(s.reconnects for s in links),
            last_message_age_s=min(ages) if ages else None,
            ticks_per_s=self._ticks_per_s(now),
            frames=self.frames,
            ticks=self.ticks,
            heartbeats=self.heartbeats,
            malformed=self.malformed,
            text_messages=self.text_messages,
            handler_errors=self.handler_errors,
            last_error=last_error,
            last_handler_error=self.last_handler_error,
            links=links,
            unsubscribed_ticks=self.unsubscribed_ticks,
        )

    def wait_connected(self, timeout: float) -> bool:
        """Block until every link is connected, i.e. upgraded and delivered a first message
        (True), or it failed/stopped/timed out (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.failed is not None or self._stopping or not self._started:
                    return False
                if self._links and all(lk.state == CONNECTED for lk in self._links):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))

    def wait_state(self, predicate: Callable[[ConnectionStatus], bool], timeout: float) -> bool:
        """Block until `predicate(status())` holds (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._cond.release()
                try:
                    ok = predicate(self.status())
                finally:
                    self._cond.acquire()
                if ok:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.25))

    def wait_done(self, timeout: float | None = None) -> bool:
        """Block until the feed ended (fatal failure or stop()); True if it did."""
        return self._done.wait(timeout)

    def raise_if_failed(self) -> None:
        """Re-raise the fatal error (AuthError, ConnectionFailedError) that ended the feed."""
        if self.failed is not None:
            raise self.failed

    def scrub(self, text: str) -> str:
        """`text` with the access token masked (kiteconnect puts it in the URL)."""
        if self._access_token and self._access_token in text:
            text = text.replace(self._access_token, self._masked)
        return text

    @staticmethod
    def _refresh_wanted(links: list[_Link]) -> None:
        """Rebuild these links' token filters (under the lock, before any send goes out)."""
        if not links:
            return
        from livecli.kite.codec import wanted_tokens

        for link in links:
            link.wanted = wanted_tokens(link.tokens)

    # -- reactor-thread internals ----------------------------------------------------------
    def _on_message(self, link: _Link, payload: bytes, is_binary: bool) -> None:
        received_at = time.time()
        if is_binary:
            if len(payload) == 1:
                self.heartbeats += 1
                return
            try:
                frame = self._decode_frame(payload, received_at)
            except self._malformed_exc as exc:
                # One packet cut short (or claimed, not sent) costs that packet, not the frame.
                self.malformed += 1
                frame = exc.frame
                self.last_error = f"malformed frame: {exc}; its {len(frame)} complete packets kept"
            except Exception as exc:  # a decoder bug must not cost the connection either
                self.malformed += 1
                self.last_error = shorten(f"frame decode failed: {type(exc).__name__}: {exc}")
                return
            self.frames += 1
            n = len(frame)
            if not n:
                return  # only unknown packet kinds: nothing for the handler
            # Ticks of tokens never subscribed on this link, or unsubscribed while in flight,
            # are not ours to record or candle.
            frame = frame.only(link.wanted)
            if len(frame) != n:
                self.unsubscribed_ticks += n - len(frame)
                n = len(frame)
                if not n:
                    return
            self.ticks += n
            try:
                self._on_frame(frame, received_at)
            except Exception as exc:
                self.handler_errors += 1
                self.last_handler_error = shorten(f"{type(exc).__name__}: {exc}")
            return
        self.text_messages += 1
        try:
            message = self._decode_text(payload)
        except Exception as exc:
            self.malformed += 1
            self.last_error = shorten(f"malformed text message skipped: {exc}")
            return
        if message.type == "error":
            self.last_error = shorten(self.scrub(f"Kite error message: {message.data}"))
        if self._on_text is not None:
            try:
                self._on_text(message)
            except Exception as exc:
                self.handler_errors += 1
                self.last_handler_error = shorten(f"{type(exc).__name__}: {exc}")

    def _start_watchdog(self) -> None:
        from twisted.internet.task import LoopingCall

        if self._stopping or self.failed is not None:
            return
        self._watchdog = LoopingCall(self._watch)
        self._watchdog.clock = self._reactor
        self._watchdog.start(min(0.25, self._watchdog_s / 4.0), now=False)

    def _watch(self) -> None:
        now = time.monotonic()
        self._rate.append((now, self.ticks))
        for link in list(self._links):
            try:
                link.check(now)
            except Exception as exc:  # an exception would end the LoopingCall for good
                link.error(f"watchdog: {type(exc).__name__}: {exc}")

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        self._watchdog = None

    def _close_all(self, links: list[_Link]) -> None:
        self._stop_watchdog()
        for link in links:
            if not link.stopping:
                link.close()

    def _fail(self, err: LivecliError) -> None:
        """A fatal error: no retry can help. Close everything, record it, wake the waiters."""
        with self._lock:
            if self.failed is not None:
                return
            self.failed = err
            self._stopping = True
            links = list(self._links)
        log.info("ticker feed failed: %s", err)
        self._close_all(links)
        with self._cond:
            self._done.set()
            self._cond.notify_all()
        self._changed()

    def _link_closed(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _backoff(self, attempt: int) -> float:
        base = min(self._max_delay_s, self._initial_s * (2 ** min(attempt - 1, 20)))
        return min(self._max_delay_s, base * random.uniform(0.8, 1.2))

    def _aggregate(self) -> str:
        if self.failed is not None:
            return AUTH_FAILED if isinstance(self.failed, AuthError) else FAILED
        if not self._started:
            return IDLE
        states = {lk.state for lk in list(self._links)}
        if self._stopping:
            return CLOSED if states <= {CLOSED, IDLE} else self._state
        for s in (STALE, RECONNECTING, CONNECTING):
            if s in states:
                return s
        return CONNECTED if states == {CONNECTED} else CONNECTING

    def _changed(self) -> None:
        """Called on the reactor thread after any link changed: report if anything visible did."""
        state = self._aggregate()
        if not (self._stopping and state not in (CLOSED, AUTH_FAILED, FAILED)):
            self._state = state
        key = (state, *((lk.state, lk.attempt) for lk in list(self._links)))
        with self._cond:
            self._cond.notify_all()
        if key == self._last_reported:
            return
        self._last_reported = key
        if self._on_state is not None:
            try:
                self._on_state(self.status())
            except Exception as exc:
                self.handler_errors += 1
                self.last_handler_error = shorten(f"on_state: {type(exc).__name__}: {exc}")

    def _ticks_per_s(self, now: float) -> float:
        samples = list(self._rate)
        if not samples:
            return 0.0
        newest_t, newest_n = samples[-1]
        oldest_t, oldest_n = samples[0]
        for t, n in samples:
            if newest_t - t <= _RATE_WINDOW_S:
                oldest_t, oldest_n = t, n
                break
        span = newest_t - oldest_t
        return (newest_n - oldest_n) / span if span > 0 else 0.0

    def _link_with_room(self, new_links: list[_Link]) -> _Link:
        """The least-loaded link with room; a new link (max 3) when all are full. Under lock."""
        candidates = [lk for lk in self._links if len(lk.tokens) < self._per_conn]
        if candidates:
            return min(candidates, key=lambda lk: len(lk.tokens))
        link = _Link(self, len(self._links))
        self._links.append(link)
        new_links.append(link)
        return link

    def _too_many(self, n: int) -> TooManyInstrumentsError:
        return TooManyInstrumentsError(
            f"{n} instruments requested but Kite allows at most {self.max_instruments} "
            f"({self._max_conns} connections x {self._per_conn}); subscribe to fewer instruments"
        )


def _valid_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"unknown tick mode {mode!r}; use one of: {', '.join(MODES)}")
    return mode


def _token_list(tokens: Iterable[int]) -> list[int]:
    if isinstance(tokens, int):
        tokens = [tokens]
    out = []
    for t in tokens:
        if isinstance(t, bool) or not isinstance(t, int) or t <= 0:
            raise UsageError(f"instrument token must be a positive integer, got {t!r}")
        out.append(int(t))
    return out


def _validated(subs: Mapping[int, str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for tok, mode in subs.items():
        out[_token_list([tok])[0]] = _valid_mode(mode)
    return out
