"""Kite's history for a live session: the warm start, then gap repair, on one background thread.

A trader who starts at 11:00 wants the day from 09:15, and a strategy asking for the last 100
candles wants 100 at once; a link that drops for two minutes must not leave a hole. Kite's
historical API has those minutes. This thread, started with the run (never before the live
stream: the feed is already receiving when it begins), does three things:

* Warm start: per instrument, one request (Kite's 60-day chunks if more) for the minutes the
  in-memory history of the longest interval needs (`stream.history` candles, so earlier
  trading days too) up to the minute in progress at start, put into the engine as `history`
  candles (`CandleEngine.insert_history`, which rebuilds the longer intervals).
* The minute in progress at start, the join: the live side saw only its end (its first tick's
  cumulative volume is the day's, so the engine counts no volume from it and marks the minute
  partial; even in the day's first minute, where volume counts from zero, the trades before
  the first tick are missing from its open, high and low); history saw all of it. History
  wins, once Kite has the minute: it is asked again after the minute closes and replaces the
  live candle whole, so no volume is counted twice. The last minute or two before the start,
  which Kite may not serve yet, are asked again too.
* Gap repair: when the feed reconnects, or goes quiet beyond Kite's heartbeat (QUIET_S with no
  message at all: the link is silent, ticks are being lost), the minutes from the last message
  to the recovery are fetched once Kite has them, retried with a doubling backoff for a bounded
  time, and put in as `repaired` candles, replacing the live ones of those minutes (the first
  minute after a recovery carries the volume of the whole gap in its cumulative volume).

Every request goes through `kite.historical.HistoricalClient` (Kite's 3 requests a second, 429
backoff). The progress is in `progress()` for the status (LiveStatus.history_*) and the
dashboard. History candles reach the store, JSON lines and serve clients (the candle
listeners), never `on_candle_close` callbacks: a strategy must not act at 11:00 on 09:15.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from livecli.core.candles import HISTORY, REPAIRED, Candle
from livecli.core.timeutil import DAY_S, day_start, ist_day
from livecli.errors import AuthError, LivecliError

if TYPE_CHECKING:
    from livecli.core.closed import ClosedCandles
    from livecli.kite.historical import HistoricalClient
    from livecli.session.run import Run

log = logging.getLogger("livecli.history")

FIRST_CONNECT_WAIT_S = 30.0  # the warm start waits this long for the feed's first connection
POLL_S = 0.1  # how often the thread looks at the feed and the pending gaps (real seconds)
QUIET_S = 2.5  # no message at all (Kite sends a heartbeat every second): the link is silent
JOIN_BACK_MIN = 2  # minutes before the join asked again with it (Kite's lag)
SETTLE_S = 3.0  # session seconds after a gap's last minute ends before the first ask
RETRY_FIRST_S = 0.5  # real seconds between asks, doubling up to RETRY_MAX_S
RETRY_MAX_S = 15.0
RETRY_ATTEMPTS = 12  # asks per gap before it is given up (about two real minutes)
GIVE_UP_AFTER = 3  # failed requests in a row (not 429s, which are retried) that end history
EXTRA_CALENDAR_DAYS = 1  # beyond the trading days needed and their weekends: a holiday


@dataclass(slots=True)
class HistoryProgress:
    """What the thread has done, for LiveStatus.history_* and the dashboard."""

    state: str = "off"  # off, fetching, repairing, done, failed
    done: int = 0  # instruments warmed
    total: int = 0
    minutes: int = 0  # 1-minute candles put in from history (warm start and join)
    repaired: int = 0  # 1-minute candles put in by gap repair
    requests: int = 0
    error: str | None = None


@dataclass(slots=True)
class Gap:
    """Minutes [first, last] (starts, epoch s) to take from history for `tokens`."""

    first: int
    last: int
    origin: str
    tokens: set[int]
    attempts: int = 0
    next_at: float = 0.0  # monotonic time of the next ask
    delay: float = RETRY_FIRST_S
    done: set[int] = field(default_factory=set)


class _GiveUp(Exception):
    """History cannot be had in this run (no historical API on the account, Kite unreachable)."""


def minute_of(t: float, day_open: int) -> int:
    """The start of the minute holding `t`, anchored at the session open (CANDLES.md rule 2)."""
    return day_open + int((t - day_open) // 60) * 60


class HistoryFiller:
    """The warm start and gap repair of one run (see the module docstring)."""

    def __init__(self, run: Run, client: HistoricalClient, *, warm: bool = True) -> None:
        self.run = run
        self.client = client
        self.warm = warm
        self.started_clock = run.clock.now()
        self._stop = client.stop
        self._lock = threading.Lock()
        self._progress = HistoryProgress(state="fetching" if warm else "done")
        self._gaps: list[Gap] = []
        self._warmed = threading.Event()
        self._thread = threading.Thread(target=self._main, name="livecli-history", daemon=True)
        # The feed's health as last seen: a recovery after `down_at` (session time) is a gap.
        self._reconnects = 0
        self._down_at: float | None = None
        self._connected_once = False
        self._fails = 0  # failed requests in a row
        # Instruments whose warm start was asked for (at start, or subscribed mid-session), and
        # those of them still to fetch.
        self._asked: set[int] = set()
        self._pending: list[int] = []

    # --- control --------------------------------------------------------------------------------
    def start(self) -> HistoryFiller:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def want(self, tokens: list[int]) -> None:
        """Warm these instruments too (subscribed mid-session: a symbol added at 13:00 wants
        its day from 09:15 as much as one given at start). Any thread; fetched in turn."""
        if not self.warm or self._stop.is_set() or self._progress.state in ("failed", "off"):
            return  # history is over for this run: the status must not wait for these
        with self._lock:
            new = [t for t in tokens if t not in self._asked]
            if not new:
                return
            self._asked.update(new)
            self._pending.extend(new)
            p = self._progress
            p.total += len(new)
            if p.state in ("done", "repairing"):
                p.state = "fetching"

    def forget(self, token: int) -> None:
        """`token` was unsubscribed: subscribed again, it is warmed again (its minutes since
        were not streamed)."""
        with self._lock:
            self._asked.discard(token)

    def wait_warm(self, timeout: float | None = None) -> bool:
        """Wait until the warm start (and the join minute) is in; False on timeout."""
        return self._warmed.wait(timeout)

    def progress(self) -> HistoryProgress:
        with self._lock:
            p = self._progress
            return HistoryProgress(p.state, p.done, p.total, p.minutes, p.repaired,
                                   self.client.counters.requests, p.error)

    # --- the thread -----------------------------------------------------------------------------
    def _main(self) -> None:
        from livecli.kite.historical import Stopped

        try:
            if self.warm:
                # "Now" once the feed is up: a standalone stand-in's clock is known only from
                # its upgrade response (session/clock.py, AdvertisedClock); Kite's is the wall's.
                deadline = time.monotonic() + FIRST_CONNECT_WAIT_S
                while (self.run.feed.status().state != "connected"
                       and time.monotonic() < deadline):
                    if self._stop.wait(POLL_S):
                        raise Stopped()
                self.started_clock = self.run.clock.now()
                self._warm_start()
            else:
                self._warmed.set()
            while not self._stop.is_set():
                self._watch_feed()
                if self._pending:
                    self._warm_tokens(self.run.clock.now())
                self._work_gaps()
                with self._lock:  # (a want() from another thread may come between)
                    if not self._gaps and not self._pending and self._warmed.is_set():
                        self._progress.state = "done"
                self._stop.wait(POLL_S)
        except Stopped:
            pass
        except _GiveUp as exc:
            log.warning("history: %s; the stream goes on without it", exc)
            self._set(state="failed", error=str(exc))
        except Exception as exc:  # history is a help: its failure never stops the live stream
            log.warning("history: %s", exc)
            self._set(state="failed", error=str(exc))
        finally:
            self._warmed.set()

    def _set(self, **kw: object) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self._progress, k, v)

    def _tokens(self) -> list[int]:
        with self.run.lock:
            return list(self.run.instruments)

    # --- warm start -----------------------------------------------------------------------------
    def _warm_start(self) -> None:
        self.want(self._tokens())
        if not self._warm_tokens(self.started_clock):
            self._warmed.set()

    def _warm_tokens(self, now: float) -> bool:
        """Fetch the pending instruments' warm start as of `now`; True if a join minute waits
        (asked again once Kite has it, as a gap of `history` origin)."""
        from livecli.kite.historical import Stopped

        with self._lock:
            tokens, self._pending = self._pending, []
        joins: dict[int, int] = {}
        for tok in tokens:
            t_from, t_to, join = self._warm_range(tok, now)
            if t_to > t_from:
                try:
                    got = self.client.minutes(tok, t_from, t_to)
                except Stopped:
                    raise
                except LivecliError as exc:
                    self._failed(exc)
                else:
                    self._put(tok, got, counter="minutes")
            if join is not None:
                joins[tok] = join
            with self._lock:
                self._progress.done += 1
        # The join minute (and the minutes before it Kite may not have served yet): again, once
        # Kite has them. Grouped by join minute (instruments of one exchange share it).
        by_join: dict[int, set[int]] = {}
        for tok, join in joins.items():
            by_join.setdefault(join, set()).add(tok)
        with self._lock:
            for join, toks in sorted(by_join.items()):
                self._gaps.append(Gap(join - JOIN_BACK_MIN * 60, join, HISTORY, toks))
            if not self._pending:
                self._progress.state = "repairing" if self._gaps else "done"
        return bool(by_join)

    def _warm_range(self, tok: int, now: float) -> tuple[int, int, int | None]:
        """[from, to) of the minutes to fetch at start, and the join minute (None if the
        session is not open now)."""
        engine = self.run.engine
        ses = engine.session_of(tok)
        day = ist_day(now)
        today_open = day_start(day) + ses.open_s
        today_close = day_start(day) + ses.close_s
        longest = max(iv.minutes for iv in engine.intervals)
        per_day = max(1, math.ceil((ses.close_s - ses.open_s) / 60 / longest))
        today_n = max(0, min(now, today_close) - today_open) // 60 // longest
        # Whole earlier trading days for the rest; calendar days: their weekends, and a holiday.
        days = math.ceil(max(0, engine.history_size - today_n) / per_day)
        t_from = day_start(day - days - 2 * math.ceil(days / 5) - EXTRA_CALENDAR_DAYS)
        if now < today_open:
            return t_from, today_open, None
        if now >= today_close:
            return t_from, today_close, None
        join = minute_of(now, today_open)
        return t_from, join + 60, join

    # --- gaps -------------------------------------------------------------------------------------
    def _watch_feed(self) -> None:
        """A reconnect, or silence beyond QUIET_S, opens a gap; the recovery closes it."""
        st = self.run.feed.status()
        now = self.run.clock.now()
        rate = self.run.clock.rate or 1.0
        age = st.last_message_age_s
        quiet = age is not None and age > QUIET_S
        if not self._connected_once:  # the first connection is no recovery
            self._connected_once = st.state == "connected"
            self._reconnects = st.reconnects
            return
        if (st.reconnects != self._reconnects or quiet or st.state != "connected") \
                and self._down_at is None:
            self._down_at = now - (age or 0.0) * rate
            with self.run.lock:  # fill_gaps never bridges what history will give
                self.run.engine.mark_disconnect(self._down_at)
        self._reconnects = st.reconnects
        if self._down_at is not None and st.state == "connected" and not quiet:
            down, self._down_at = self._down_at, None
            tokens = self._tokens()
            # Minutes are anchored at the open of the instruments' session (one exchange's, as
            # a stream's instruments usually are; an hour-anchored session, MCX, repairs the
            # same whole minutes either way).
            ses = self.run.engine.session_of(tokens[0] if tokens else 0)
            day_open = day_start(ist_day(down)) + ses.open_s
            first, last = minute_of(down, day_open), minute_of(now, day_open)
            with self._lock:
                self._gaps.append(Gap(first, last, REPAIRED, set(tokens)))
                self._progress.state = "repairing"
            log.info("history: repairing %d minute(s) from %s", (last - first) // 60 + 1, first)

    def _work_gaps(self) -> None:
        from livecli.kite.historical import Stopped

        with self._lock:
            gaps = list(self._gaps)
        mono = time.monotonic()
        clock = self.run.clock.now()
        for g in gaps:
            if clock < g.last + 60 + SETTLE_S or mono < g.next_at:
                continue
            for tok in sorted(g.tokens - g.done):
                try:
                    got = self.client.minutes(tok, g.first, g.last + 60, origin=g.origin)
                except Stopped:
                    raise
                except LivecliError as exc:
                    self._failed(exc)
                    continue
                put = self._put(tok, got, counter="repaired" if g.origin == REPAIRED else "minutes")
                if any(c.start == g.last and c.interval_min == 1 for c in put):
                    g.done.add(tok)
            g.attempts += 1
            g.next_at = time.monotonic() + g.delay
            g.delay = min(g.delay * 2, RETRY_MAX_S)
            if g.done >= g.tokens or g.attempts >= RETRY_ATTEMPTS:
                with self._lock:
                    self._gaps.remove(g)
                if g.origin == HISTORY:
                    self._warmed.set()

    def _failed(self, exc: LivecliError) -> None:
        """A request failed for good: noted; an auth failure, or GIVE_UP_AFTER in a row (an
        account without the historical API, Kite unreachable), ends history for the run."""
        self._fails += 1
        self._set(error=str(exc))
        log.debug("history: %s", exc)
        if isinstance(exc, AuthError) or self._fails >= GIVE_UP_AFTER:
            raise _GiveUp(str(exc)) from exc

    # --- putting candles in -----------------------------------------------------------------------
    def _put(self, tok: int, minutes: list[Candle], *, counter: str) -> list[Candle]:
        self._fails = 0  # (called only after a request that succeeded)
        if not minutes:
            return []
        run = self.run
        with run.lock:
            out = run.engine.insert_history(tok, minutes)
        closed = [c for c in out if c.closed]
        if closed:
            run.store.put_candles(closed)
            for fn in run.listeners.candles:
                for c in closed:
                    fn(c)
            if run.listeners.candle_batches:  # (the JSON lines take closes as batches)
                for batch in _batches(closed):
                    for bfn in run.listeners.candle_batches:
                        bfn(batch)
        n = sum(1 for c in out if c.interval_min == 1)
        with self._lock:
            setattr(self._progress, counter, getattr(self._progress, counter) + n)
        return out


def _batches(candles: list[Candle]) -> list[ClosedCandles]:
    """`candles` as one `ClosedCandles` per interval, each row naming its own instrument."""
    import numpy as np

    from livecli.core.closed import ClosedCandles

    by: dict[int, list[Candle]] = {}
    for c in candles:
        by.setdefault(c.interval_min, []).append(c)
    out = []
    for minutes, group in by.items():
        batch = ClosedCandles.from_candles(group, np.arange(len(group)), minutes)
        batch.symbols = [c.symbol for c in group]
        batch.exchanges = [c.exchange for c in group]
        out.append(batch)
    return out


def start_filler(run: Run) -> HistoryFiller | None:
    """The run's history thread when the source has a historical API and it is wanted."""
    st = run.settings.stream
    if not getattr(st, "fetch_history", True):
        return None
    from livecli.kite.historical import HistoricalClient

    src = run.source
    client = HistoricalClient(src.api_key, src.access_token, src.api_url)
    return HistoryFiller(run, client).start()


__all__ = ["DAY_S", "Gap", "HistoryFiller", "HistoryProgress", "minute_of", "start_filler"]
