"""A session published elsewhere over NATS, with `LiveSession`'s read API and callbacks.

`livecli stream --attach nats://HOST:4222` and `LiveSession.attach("nats://...")` make one of
these: no Kite connection, no candle engine, no store (unless `db` is given): what it shows is
what the publisher built (livecli/session/publish.py). It reads the feed through
livecli/bus/subscriber.py and keeps what the dashboard and strategies read:

* `instruments`, `latest_ticks()`, `recent_ticks()`, `forming_candles()`, `live_status()`,
  `now()` (the dashboard's surface);
* `on_tick(symbol, fn)`, `on_candle_close(interval, fn)`, `get_candles()`,
  `get_latest_tick()`, `get_current_candle()` (a strategy's);
* `add_message_listener(fn)`: every message's JSON text, as the JSON lines write it.

Callbacks run on the subscriber's thread: a slow one slows only this consumer (the server then
sheds this consumer's live ticks), never the publisher. Closed candles come from the stream's
history first (all it keeps, or, with `durable=`, from where that named consumer stopped).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from livecli.core.candles import Candle
from livecli.core.intervals import Interval, parse_interval
from livecli.core.status import LiveStatus
from livecli.errors import SymbolError, UsageError
from livecli.session.view import FormingCandle, LatestTick, RecentTick

if TYPE_CHECKING:
    import pandas as pd

    from livecli.bus.subscriber import NatsSubscriber

RECENT_TICKS = 40
HISTORY = 2000  # closed candles kept per instrument and interval


class Instrument:
    """What a consumer knows of an instrument: what the messages say."""

    __slots__ = ("exchange", "instrument_token", "tradingsymbol")

    def __init__(self, instrument_token: int, tradingsymbol: str, exchange: str) -> None:
        self.instrument_token = instrument_token
        self.tradingsymbol = tradingsymbol
        self.exchange = exchange


def _epoch(text: str | None) -> float | None:
    return None if not text else datetime.fromisoformat(text).timestamp()


def candle_from_json(d: Mapping[str, Any]) -> Candle:
    """A candle message (or JSON line) back as the `Candle` the publisher built."""
    return Candle(
        instrument_token=int(d["instrument_token"]),
        interval_min=parse_interval(d["interval"]).minutes, start=int(_epoch(d["start"]) or 0),
        open=d["open"], high=d["high"], low=d["low"], close=d["close"], volume=d["volume"],
        oi=d.get("oi"), ticks=d.get("ticks", 0), partial=bool(d.get("partial")),
        synthetic=bool(d.get("synthetic")), closed=bool(d.get("closed")),
        symbol=d.get("symbol") or "", exchange=d.get("exchange") or "",
    )


class NatsSession:
    """A published feed, read. `start()` connects (ConnectionFailedError if it cannot)."""

    def __init__(self, url: str, symbols: Iterable[str] = (), *, stream: str = "LIVECLI",
                 durable: str | None = None, credentials: str | None = None,
                 history: bool = True, db: str | Path | None = None) -> None:
        from livecli.bus.options import check_stream, check_url

        self.url = check_url(url, "--attach")
        self.symbols = tuple(s for s in symbols if s.strip())
        self.stream = check_stream(stream)
        self.durable = durable
        self.credentials = credentials
        self.history = history
        self.db_path = Path(db) if db else None
        if self.db_path is not None:  # a store that cannot be written: said now, not later
            from livecli.store.schema import check_writable

            check_writable(self.db_path, create_folder=False)
        self.lock = threading.Lock()
        self._instruments: dict[int, Instrument] = {}
        self._by_symbol: dict[str, int] = {}
        self._latest: dict[int, dict[str, Any]] = {}
        self._counts: dict[int, int] = {}
        self._seen: dict[int, float] = {}
        self._recent: deque[RecentTick] = deque(maxlen=RECENT_TICKS)
        self._forming: dict[tuple[int, int], Candle] = {}
        self._closed: dict[tuple[int, int], deque[Candle]] = {}
        self._status: LiveStatus | None = None
        self._status_at = 0.0
        self._tick_fns: list[tuple[str | None, Callable[[dict[str, Any]], None]]] = []
        self._candle_fns: list[tuple[int, Callable[[int, Candle], None]]] = []
        self._message_fns: list[Callable[[str, str], None]] = []
        self._sub: NatsSubscriber | None = None
        self._store: Any = None
        self.started_at: float | None = None
        self.stopped_reason: str | None = None
        self.failure: BaseException | None = None
        self.ticks = 0
        self.candles = 0
        self.callback_errors = 0

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> NatsSession:
        from livecli.bus.subscriber import NatsSubscriber, SubscribeOptions

        if self.running:
            raise UsageError("this session is already attached: stop() it first")
        self._sub = NatsSubscriber(SubscribeOptions(
            url=self.url, symbols=self.symbols, stream=self.stream, durable=self.durable,
            credentials=self.credentials, history=self.history,
        ), self._on_message)
        self.started_at = time.time()
        self._sub.start()
        return self

    def stop(self, reason: str | None = None) -> None:
        sub = self._sub
        if sub is None:
            return
        self._sub = None
        sub.close()
        self.stopped_reason = reason or "stopped"
        if self._store is not None:
            self._store.stop()
            self._store = None

    def wait(self, timeout: float | None = None) -> bool:
        sub = self._sub
        return True if sub is None else sub.done.wait(timeout)

    @property
    def running(self) -> bool:
        return self._sub is not None and not self._sub.done.is_set()

    def __enter__(self) -> NatsSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the feed is ------------------------------------------------------------------
    @property
    def instruments(self) -> Mapping[int, Instrument]:
        return MappingProxyType(self._instruments)

    @property
    def intervals(self) -> tuple[Interval, ...]:
        st = self._status
        names = st.intervals if st is not None and st.intervals else ("1min",)
        return tuple(parse_interval(n) for n in names)

    @property
    def mode(self) -> str:
        return self._status.mode if self._status is not None else "full"

    def token_of(self, symbol: str) -> int:
        tok = self._by_symbol.get(symbol.strip().upper())
        if tok is None:
            raise SymbolError(f"{symbol} has not been seen on the feed {self.url} (yet)")
        return tok

    # --- callbacks -------------------------------------------------------------------------
    def on_tick(self, symbol: str | None, fn: Callable[[dict[str, Any]], None]) -> None:
        """`fn(tick)` for every tick of `symbol` (None: all): the tick message as a dict."""
        self._tick_fns.append((None if symbol is None else symbol.strip().upper(), fn))

    def on_candle_close(self, interval: str | int | Interval,
                        fn: Callable[[int, Candle], None]) -> None:
        """`fn(instrument_token, candle)` for every closed candle of `interval`, the stream's
        history first."""
        self._candle_fns.append((parse_interval(interval).minutes, fn))

    def add_message_listener(self, fn: Callable[[str, str], None]) -> None:
        """`fn(kind, line)`: every message as its JSON line (kind: tick, candle, status)."""
        self._message_fns.append(fn)

    # --- the subscriber's thread -------------------------------------------------------------
    def _on_message(self, kind: str, data: bytes) -> None:
        text = data.decode()
        for fn in self._message_fns:
            fn(kind, text)
        d = json.loads(text)
        if kind == "tick":
            self._on_tick(d)
        elif kind == "candle":
            self._on_candle(candle_from_json(d))
        else:
            with self.lock:
                self._status = LiveStatus.from_json_dict(d)
                self._status_at = time.time()

    def _know(self, tok: int, symbol: str, exchange: str | None) -> None:
        if tok not in self._instruments:
            with self.lock:
                self._instruments[tok] = Instrument(tok, symbol, exchange or "")
                self._by_symbol[symbol.upper()] = tok
                self._by_symbol[f"{exchange}:{symbol}".upper()] = tok

    def _on_tick(self, d: dict[str, Any]) -> None:
        tok = int(d["instrument_token"])
        self._know(tok, d["symbol"], d.get("exchange"))
        now = time.time()
        at = _epoch(d.get("exchange_timestamp")) or _epoch(d.get("received_at")) or now
        with self.lock:
            self.ticks += 1
            self._latest[tok] = d
            self._counts[tok] = self._counts.get(tok, 0) + 1
            self._seen[tok] = now
            self._recent.append(RecentTick(at, tok, d["symbol"], d["last_price"],
                                           d.get("volume_traded")))
        sym = d["symbol"].upper()
        for want, fn in self._tick_fns:
            if want is None or want == sym or want == f"{d.get('exchange')}:{sym}":
                self._call(fn, d)

    def _on_candle(self, c: Candle) -> None:
        self._know(c.instrument_token, c.symbol, c.exchange)
        key = (c.instrument_token, c.interval_min)
        with self.lock:
            if not c.closed:
                old = self._forming.get(key)
                if old is None or old.start <= c.start:
                    self._forming[key] = c
                return
            self.candles += 1
            ring = self._closed.get(key)
            if ring is None:
                ring = self._closed[key] = deque(maxlen=HISTORY)
            if ring and ring[-1].start >= c.start:
                return  # already had it (a resent message within a reconnect)
            ring.append(c)
            old = self._forming.get(key)
            if old is not None and old.start <= c.start:
                del self._forming[key]
        if self.db_path is not None:
            self._store_candle(c)
        for minutes, fn in self._candle_fns:
            if minutes == c.interval_min:
                self._call(fn, c.instrument_token, c)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a strategy's bug: counted, the feed goes on
            self.callback_errors += 1

    def _store_candle(self, c: Candle) -> None:
        """`--db`: keep the closed candles in a store of this machine's own."""
        if self._store is None:
            from livecli.store.writer import StoreWriter

            st = self._status
            source = st.source if st is not None and st.source else "KITE"
            assert self.db_path is not None
            self._store = StoreWriter(self.db_path, create_folder=False, source=source)
        self._store.register_instruments({c.instrument_token: (c.symbol, c.exchange)})
        self._store.put_candles([c])

    # --- reading ---------------------------------------------------------------------------
    def latest_ticks(self, tokens: Iterable[int] | None = None) -> dict[int, LatestTick]:
        with self.lock:
            wanted = list(self._latest) if tokens is None else list(tokens)
            hits = [(tok, self._latest.get(tok), self._counts.get(tok, 0), self._seen.get(tok))
                    for tok in wanted]
        out = {}
        for tok, d, count, seen in hits:
            if d is None or seen is None:
                continue
            price = d["last_price"]
            change = d.get("change_pct")
            prev = price / (1 + change / 100.0) if change is not None and change > -100 else None
            out[tok] = LatestTick(tok, price, prev, count, seen)
        return out

    def recent_ticks(self, n: int = 12) -> list[RecentTick]:
        with self.lock:
            return list(self._recent)[-n:] if n > 0 else []

    def forming_candles(self, tokens: Iterable[int], interval: Interval, closes: int = 24
                        ) -> dict[int, FormingCandle]:
        clock = self.now()
        out = {}
        with self.lock:
            for tok in tokens:
                key = (tok, interval.minutes)
                c = self._forming.get(key)
                ring = self._closed.get(key)
                past = tuple(x.close for x in list(ring)[-closes:]) if ring and closes > 0 else ()
                left = None if c is None else max(0.0, c.end - clock)
                out[tok] = FormingCandle(tok, c, past, left)
        return out

    def get_latest_tick(self, symbol: str) -> dict[str, Any] | None:
        tok = self.token_of(symbol)
        with self.lock:
            return self._latest.get(tok)

    def get_current_candle(self, symbol: str, interval: str | int = "1min") -> dict[str, Any] | None:
        tok = self.token_of(symbol)
        with self.lock:
            c = self._forming.get((tok, parse_interval(interval).minutes))
        return None if c is None else c.to_dict()

    def closed_candles(self, symbol: str, interval: str | int = "1min") -> list[Candle]:
        tok = self.token_of(symbol)
        with self.lock:
            return list(self._closed.get((tok, parse_interval(interval).minutes), ()))

    def get_candles(self, symbol: str, interval: str | int = "5min", count: int = 100,
                    include_current: bool = False) -> pd.DataFrame:
        """The newest `count` closed candles (plus the forming one if asked), as LiveSession's."""
        import pandas as pd

        from livecli.core.candles import CANDLE_COLUMNS

        rows = self.closed_candles(symbol, interval)
        if include_current:
            with self.lock:
                c = self._forming.get((self.token_of(symbol), parse_interval(interval).minutes))
            if c is not None:
                rows.append(c)
        rows = rows[-count:] if count > 0 else []
        df = pd.DataFrame([c.to_dict() for c in rows], columns=[*CANDLE_COLUMNS, "closed"])
        df["start"] = pd.to_datetime(df["start"], format="ISO8601")
        return df

    def now(self) -> float:
        """The publisher's session clock, as its last status gave it, moved on since."""
        with self.lock:
            st, at = self._status, self._status_at
        if st is None or st.feed_clock is None:
            return time.time()
        return st.feed_clock + (time.time() - at)

    def live_status(self, symbols: bool = True) -> LiveStatus:
        """The publisher's last status; its state is this consumer's link while that is down."""
        import dataclasses

        with self.lock:
            st = self._status
        sub = self._sub
        link = sub.state if sub is not None else "stopped"
        if st is None:
            return LiveStatus(state="connecting" if link == "connected" else link,
                              started_at=self.started_at)
        if link != "connected":
            st = dataclasses.replace(st, state=link, last_error=sub.last_error if sub else None)
        return st if symbols else dataclasses.replace(st, symbols=())

    def status(self) -> dict[str, Any]:
        return self.live_status().to_json_dict()
