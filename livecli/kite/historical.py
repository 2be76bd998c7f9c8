"""Kite's historical API, within Kite's limits: minute candles for warm start, repair, reconcile.

Kite allows about 3 historical requests a second per api_key and at most 60 days of minute
candles per request (kite/protocol.py); beyond the rate it answers HTTP 429. Every request
livecli makes goes through one `HistoricalClient`, whose `RateLimiter` keeps a sliding window
(never 3 requests inside any 1.1 s: a margin for the network's jitter, since Kite counts
arrivals, not sends), and a 429 that comes anyway (another program on the same key) is retried
with a doubling backoff, a bounded number of times. Waits are on a `stop` event, so a session
that stops never waits out a backoff.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from livecli.core.candles import HISTORY, Candle
from livecli.core.timeutil import DAY_S, to_ist
from livecli.errors import KiteApiError
from livecli.kite.protocol import HISTORICAL_MINUTE_DAYS_PER_REQUEST, HISTORICAL_REQUESTS_PER_S

WINDOW_S = 1.1  # the limiter's window: Kite's second, plus a margin for jitter
RETRIES_429 = 6  # attempts after the first on HTTP 429, backing off 0.5, 1, 2, 4, 8, 8 s
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 8.0
_KITE_TIME = "%Y-%m-%d %H:%M:%S"
_EPOCHS: dict[str, int] = {}  # Kite's row times ("2025-12-05T09:15:00+0530"): every instrument's
# rows carry the same minutes, so each is parsed once


def _epoch(text: str) -> int:
    """Epoch seconds of one of Kite's ISO 8601 row times (with its +0530)."""
    t = _EPOCHS.get(text)
    if t is None:
        if len(_EPOCHS) >= 200_000:  # about 500 days of minutes: then start again
            _EPOCHS.clear()
        t = _EPOCHS[text] = int(datetime.fromisoformat(text).timestamp())
    return t


class RateLimiter:
    """At most `per_window` requests in any `window_s` (monotonic seconds), for many threads."""

    def __init__(self, per_window: int = HISTORICAL_REQUESTS_PER_S, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a slot; False when `stop` was set first."""
        while not stop.is_set():
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window_s:
                    self._sent.popleft()
                if len(self._sent) < self.per_window:
                    self._sent.append(now)
                    return True
                wait = self._sent[0] + self.window_s - now
            stop.wait(max(wait, 0.01))
        return False


@dataclass(slots=True)
class FetchCounters:
    """What the client did: requests sent, 429s met, requests that failed for good."""

    requests: int = 0
    throttled: int = 0
    failed: int = 0


class Stopped(Exception):
    """The session stopped while a request waited (for its slot or its backoff)."""


class HistoricalClient:
    """Minute candles of one api_key's instruments, fetched within Kite's limits."""

    def __init__(self, api_key: str, access_token: str, api_url: str, *,
                 stop: threading.Event | None = None, limiter: RateLimiter | None = None,
                 retries_429: int = RETRIES_429) -> None:
        from livecli.kite.rest import client

        self.api_url = api_url
        self._kite = client(api_key, access_token, api_url)
        self.stop = stop or threading.Event()
        self.limiter = limiter or RateLimiter()
        self.retries_429 = retries_429
        self.counters = FetchCounters()
        self._lock = threading.Lock()

    def minutes(self, token: int, t_from: float, t_to: float, *, origin: str = HISTORY,
                symbol: str = "", exchange: str = "") -> list[Candle]:
        """Closed 1-minute candles starting in [t_from, t_to) (epoch s), oldest first, in as many
        requests as Kite's 60-day limit needs. Raises Stopped, or KiteApiError/AuthError."""
        out: list[Candle] = []
        span = HISTORICAL_MINUTE_DAYS_PER_REQUEST * DAY_S
        a = t_from
        while a < t_to:
            b = min(a + span, t_to)
            # Kite's `to` is inclusive, to the second: ask up to the last second before `b`.
            rows = self._get(token, a, b - 1)
            for r in rows:
                start = _epoch(r[0])
                if a <= start < b:
                    oi = r[6] if len(r) > 6 else None
                    out.append(Candle(token, 1, start, float(r[1]), float(r[2]),
                                      float(r[3]), float(r[4]), int(r[5]),
                                      None if oi is None else int(oi), 0, False, False, True,
                                      symbol, exchange, origin))
            a = b
        out.sort(key=lambda c: c.start)
        return out

    def _get(self, token: int, t_from: float, t_to: float) -> list[list[Any]]:
        """Kite's candle rows as it sends them: [time, open, high, low, close, volume(, oi)].

        Through the client's own request (its session, headers and errors), but not its
        `historical_data`, which parses every row's time with dateutil: a warm start of 9000
        instruments spent a fifth of a core on that while the ticks streamed."""
        from kiteconnect import exceptions as kex

        from livecli.kite.rest import translate

        delay = BACKOFF_FIRST_S
        doing = f"fetching minute candles of {token} from Kite's history"
        for attempt in range(self.retries_429 + 1):
            if not self.limiter.acquire(self.stop):
                raise Stopped()
            with self._lock:
                self.counters.requests += 1
            try:
                data = self._kite._get(
                    "market.historical",
                    url_args={"instrument_token": token, "interval": "minute"},
                    params={"from": to_ist(t_from).strftime(_KITE_TIME),
                            "to": to_ist(t_to).strftime(_KITE_TIME),
                            "interval": "minute", "continuous": 0, "oi": 1})
            except kex.KiteException as exc:
                if getattr(exc, "code", None) != 429 or attempt == self.retries_429:
                    with self._lock:
                        self.counters.failed += 1
                    raise translate(exc, doing=doing, api_url=self.api_url) from exc
                with self._lock:
                    self.counters.throttled += 1
            except Exception as exc:
                with self._lock:
                    self.counters.failed += 1
                raise translate(exc, doing=doing, api_url=self.api_url) from exc
            else:
                rows = data.get("candles") if isinstance(data, dict) else None
                if not isinstance(rows, list):
                    raise KiteApiError(f"{doing}: Kite's answer holds no candles")
                return rows
            if self.stop.wait(delay):
                raise Stopped()
            delay = min(delay * 2, BACKOFF_MAX_S)
        raise KiteApiError(f"{doing}: still throttled (HTTP 429) after {self.retries_429} retries")
