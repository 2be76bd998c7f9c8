"""What an attached session keeps of the pushed stream, so its read API never asks the server.

`RemoteSession`'s socket thread writes the API's tick, candle and status objects here as they
come (a dict assignment each, under a lock held for microseconds); the readers (the dashboard's
thread, at its refresh rate) copy what they need and build the same typed views a local
session gives (livecli/session/view.py), decoding only the few objects they read.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from livecli.core.intervals import Interval
from livecli.core.sessions import session_for
from livecli.core.timeutil import day_start, ist_day, parse_instant
from livecli.core.wire import WireTick, candle_from_obj
from livecli.session.view import FormingCandle, LatestTick, RecentTick

RECENT_KEPT = 64
CLOSES_KEPT = 64


@dataclass(frozen=True, slots=True)
class RemoteInstrument:
    """An instrument the served session streams, as its status names it."""

    instrument_token: int
    tradingsymbol: str
    exchange: str


def instruments_of(status: Mapping[str, Any]) -> dict[int, RemoteInstrument]:
    """The instruments a status JSON names, in the session's order."""
    syms = status.get("symbols") or {}
    out: dict[int, RemoteInstrument] = {}
    if isinstance(syms, dict):
        for name, info in syms.items():
            if isinstance(info, dict) and info.get("instrument_token") is not None:
                tok = int(info["instrument_token"])
                out[tok] = RemoteInstrument(tok, str(name), str(info.get("exchange") or ""))
    return out


class Mirror:
    """The newest ticks, forming candles, recent closes and status of a served session."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latest: dict[int, dict[str, Any]] = {}
        self.counts: dict[int, int] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_KEPT)
        self.forming: dict[tuple[int, int], dict[str, Any]] = {}  # (minutes, token) -> candle
        self.closes: dict[tuple[int, int], dict[int, float]] = {}  # -> {start: close}
        self.instruments: Mapping[int, RemoteInstrument] = MappingProxyType({})
        self.feed_clock: float | None = None
        self.newest_tick_at: float = 0.0  # the newest tick's exchange time seen (epoch s)

    # --- the socket thread ---------------------------------------------------------------------
    def ticks(self, data: list[dict[str, Any]]) -> None:
        with self.lock:
            latest, counts = self.latest, self.counts
            for t in data:
                tok = t.get("instrument_token")
                if not isinstance(tok, int):
                    continue
                latest[tok] = t
                counts[tok] = counts.get(tok, 0) + 1
            self.recent.extend(data[-RECENT_KEPT:])
            ets = data[-1].get("exchange_timestamp") if data else None
        if ets:
            try:
                self.newest_tick_at = max(self.newest_tick_at, parse_instant(str(ets)))
            except ValueError:
                pass

    def candles(self, data: list[dict[str, Any]]) -> None:
        with self.lock:
            for c in data:
                try:
                    key = (int(str(c["interval"]).removesuffix("min")), int(c["instrument_token"]))
                except (KeyError, TypeError, ValueError):
                    continue
                if c.get("closed"):
                    self._close(key, c)
                    held = self.forming.get(key)
                    if held is not None and held.get("start") == c.get("start"):
                        del self.forming[key]
                else:
                    self.forming[key] = c

    def _close(self, key: tuple[int, int], c: dict[str, Any]) -> None:
        ring = self.closes.setdefault(key, {})
        try:
            ring[int(parse_instant(str(c["start"])))] = float(c["close"])
        except (KeyError, TypeError, ValueError):
            return
        if len(ring) > CLOSES_KEPT:
            for start in sorted(ring)[: len(ring) - CLOSES_KEPT]:
                del ring[start]

    def backfill(self, key: tuple[int, int], closes: Iterable[tuple[int, float]]) -> None:
        """Closes read over REST (before the mirror started): the pushed ones win."""
        with self.lock:
            ring = self.closes.setdefault(key, {})
            for start, close in closes:
                ring.setdefault(start, close)
            if len(ring) > CLOSES_KEPT:
                for start in sorted(ring)[: len(ring) - CLOSES_KEPT]:
                    del ring[start]

    def status(self, st: Mapping[str, Any]) -> None:
        insts = instruments_of(st)
        clock = st.get("feed_clock")
        with self.lock:
            if insts or st.get("state") in ("idle", "stopped"):
                self.instruments = MappingProxyType(insts)
            if clock:
                try:
                    self.feed_clock = parse_instant(str(clock))
                except ValueError:
                    pass

    # --- readers -------------------------------------------------------------------------------
    def latest_ticks(self, tokens: Iterable[int] | None) -> dict[int, LatestTick]:
        with self.lock:
            wanted = list(self.latest) if tokens is None else list(tokens)
            hits = [(tok, self.latest.get(tok), self.counts.get(tok, 0)) for tok in wanted]
        out: dict[int, LatestTick] = {}
        for tok, obj, count in hits:
            if obj is None:
                continue
            w = WireTick.of(obj)
            out[tok] = LatestTick(tok, w.last_price, w.prev_close, count, w.received_at)
        return out

    def recent_ticks(self, n: int) -> list[RecentTick]:
        with self.lock:
            recent = list(self.recent)[-n:] if n > 0 else []
        out = []
        for obj in recent:
            w = WireTick.of(obj)
            out.append(RecentTick(w.time, w.instrument_token, w.symbol, w.last_price,
                                  w.volume_traded))
        return out

    def forming_candles(self, tokens: Iterable[int], interval: Interval, closes: int,
                        sessions: Mapping[str, Any] | None = None) -> dict[int, FormingCandle]:
        iv = interval.minutes
        with self.lock:
            got = [(tok, self.forming.get((iv, tok)), dict(self.closes.get((iv, tok), {})))
                   for tok in tokens]
            insts = self.instruments
        clock = self.now()
        out: dict[int, FormingCandle] = {}
        for tok, obj, ring in got:
            candle = candle_from_obj(obj) if obj is not None else None
            starts = sorted(s for s in ring if candle is None or s < candle.start)
            past = tuple(ring[s] for s in starts[-closes:]) if closes > 0 else ()
            left = None
            if candle is not None and clock > 0:
                inst = insts.get(tok)
                ses = session_for(inst.exchange if inst else candle.exchange or "NSE",
                                  sessions or None)
                close = day_start(ist_day(candle.start)) + ses.close_s
                left = max(0.0, min(candle.end, close) - clock)
            out[tok] = FormingCandle(tok, candle, past, left)
        return out

    def now(self) -> float:
        """The served session's clock as last seen: its feed clock, or the newest tick's time
        (the wall clock before either came)."""
        seen = max(self.feed_clock or 0.0, self.newest_tick_at)
        return seen if seen > 0 else time.time()

    def wants_backfill(self, key: tuple[int, int]) -> bool:
        with self.lock:
            return key not in self.closes
