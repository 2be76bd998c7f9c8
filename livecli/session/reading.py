"""The session's read API, made from a run's receiving-path state on the reader's thread.

Each call takes the run's lock once, copies references (a frame and a row per instrument, the
engine's forming candles), lets go, and builds the typed views (livecli/session/view.py) after,
so a dashboard frame never holds the ticks up for longer than the copies take.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from livecli.core.timeutil import day_start, ist_day
from livecli.session.view import FormingCandle, LatestTick, RecentTick

if TYPE_CHECKING:
    from livecli.core.intervals import Interval
    from livecli.session.run import Run


def latest_ticks(run: Run, tokens: Iterable[int] | None = None) -> dict[int, LatestTick]:
    rx = run.receiver
    with rx.lock:
        wanted = list(rx.latest) if tokens is None else list(tokens)
        hits = [(tok, rx.latest.get(tok), rx.counts.get(tok, 0), rx.seen.get(tok))
                for tok in wanted]
    out: dict[int, LatestTick] = {}
    for tok, hit, count, seen in hits:
        if hit is None or seen is None:
            continue
        frame, row = hit
        out[tok] = LatestTick(tok, float(frame.last_price[row]), _prev_close(frame, row), count,
                              seen)
    return out


def _prev_close(frame: Any, row: int) -> float | None:
    """The previous session's close, which quote and full packets carry and ltp ones do not."""
    from livecli.kite.codec import KIND_LTP

    if frame.kind[row] == KIND_LTP:
        return None
    close = float(frame.column("close")[row])
    return close if close == close and close > 0 else None


def recent_ticks(run: Run, n: int) -> list[RecentTick]:
    rx = run.receiver
    with rx.lock:
        recent = list(rx.recent)[-n:] if n > 0 else []
        names = {tok: run.instruments.get(tok) for _, tok, _, _ in recent}
    out = []
    for t, tok, price, vol in recent:
        inst = names.get(tok)
        out.append(RecentTick(t, tok, inst.tradingsymbol if inst else str(tok), price, vol))
    return out


def forming_candles(run: Run, tokens: Iterable[int], interval: Interval, closes: int
                    ) -> dict[int, FormingCandle]:
    engine = run.engine
    got = []
    with run.lock:
        clock = engine.clock
        for tok in tokens:
            ring = engine.history_ring(tok, interval)
            got.append((tok, engine.forming(tok, interval),
                        ring.closes(closes) if ring is not None else []))
    out: dict[int, FormingCandle] = {}
    for tok, candle, past in got:
        left = None
        if candle is not None and clock > 0:
            # The day's last candle is cut at the session close (CANDLES.md rule 2).
            close = day_start(ist_day(candle.start)) + engine.session_of(tok).close_s
            left = max(0.0, min(candle.end, close) - clock)
        out[tok] = FormingCandle(tok, candle, tuple(past), left)
    return out


def session_now(run: Run) -> float:
    stopped = run.clock_at_stop
    return stopped if stopped is not None else run.clock.now()
