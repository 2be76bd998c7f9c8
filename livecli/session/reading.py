"""The session's read API, made from a run's receiving-path state on the reader's thread.

Each call takes the run's lock once, copies references (a frame and a row per instrument, the
engine's forming candles), lets go, and builds the typed views (livecli/session/view.py) after,
so a dashboard frame never holds the ticks up for longer than the copies take.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from livecli.core.timeutil import day_start, ist_day
from livecli.session.view import Depth, DepthLevel, FormingCandle, LatestTick, RecentTick

if TYPE_CHECKING:
    from livecli.core.candles import Candle
    from livecli.core.intervals import Interval
    from livecli.session.run import Run


def latest_ticks(run: Run, tokens: Iterable[int] | None = None) -> dict[int, LatestTick]:
    rx = run.receiver
    with rx.lock:
        latest = rx.latest
        wanted = latest.tokens() if tokens is None else list(tokens)
        hits = [(tok, latest.get(tok), latest.count(tok), latest.seen_at(tok))
                for tok in wanted]
    out: dict[int, LatestTick] = {}
    for tok, hit, count, seen in hits:
        if hit is None or seen is None:
            continue
        frame, row = hit
        out[tok] = _latest(tok, frame, row, count, seen)
    return out


def _latest(tok: int, frame: Any, row: int, count: int, seen: float) -> LatestTick:
    from livecli.kite.codec import KIND_FULL, KIND_LTP

    # One packet read from its bytes: the rows a dashboard shows point into as many frames,
    # and decoding each whole frame's columns for one row cost a fifth of the dashboard's CPU.
    p = frame.packet(row, levels=1)
    if p.kind == KIND_LTP:
        return LatestTick(tok, p.last_price, None, count, seen)
    bid = ask = None
    bid_q = ask_q = None
    if p.kind == KIND_FULL:
        if p.buy[0][0] > 0:
            bid, bid_q = p.buy[0][0], p.buy[0][1]
        if p.sell[0][0] > 0:
            ask, ask_q = p.sell[0][0], p.sell[0][1]
    return LatestTick(tok, p.last_price, _positive(p.close), count, seen,
                      volume_traded=p.volume_traded, day_open=_positive(p.open),
                      day_high=_positive(p.high), day_low=_positive(p.low),
                      oi=_open_interest(p.oi) if p.kind == KIND_FULL else None,
                      bid=bid, bid_qty=bid_q, ask=ask, ask_qty=ask_q)


def _positive(v: float | None) -> float | None:
    """A price Kite sends as 0 when it has none (no trade yet, no previous close)."""
    return v if v is not None and v > 0 else None


def _open_interest(oi: int | None) -> int | None:
    """Full packets carry an OI field for every instrument; only F&O contracts have one, and
    theirs is never 0 once traded: 0 means none."""
    return oi if oi else None


def depth(run: Run, token: int) -> Depth | None:
    """The 5-level depth of `token`'s newest tick, when that was a full packet."""
    from livecli.kite.codec import KIND_FULL

    rx = run.receiver
    with rx.lock:
        hit = rx.latest.get(token)
    if hit is None:
        return None
    frame, row = hit
    p = frame.packet(row)
    if p.kind != KIND_FULL:
        return None

    def side(levels: tuple[tuple[float, int, int], ...]) -> tuple[DepthLevel, ...]:
        return tuple(DepthLevel(price, qty, orders) for price, qty, orders in levels if price > 0)

    return Depth(token, side(p.buy), side(p.sell))


def candles(run: Run, token: int, interval: Interval, count: int) -> list[Candle]:
    """The newest `count` candles of `token` in `interval`, oldest first: the closed ones the
    engine holds, those waiting out the grace, then the forming one."""
    engine = run.engine
    with run.lock:
        ring = engine.history_ring(token, interval)
        past = ring.last(count) if ring is not None else []
        waiting = engine.awaiting_close(token, interval)
        forming = engine.forming(token, interval)
    after = past[-1].start if past else float("-inf")
    waiting = [c for c in waiting if c.start > after and (forming is None
                                                          or c.start < forming.start)]
    out = [*past, *waiting, *([forming] if forming is not None else [])]
    return out[-count:] if count > 0 else []


def _prev_close(frame: Any, row: int) -> float | None:
    """The previous session's close, which quote and full packets carry and ltp ones do not."""
    return _positive(frame.packet(row, levels=0).close)


def recent_ticks(run: Run, n: int) -> list[RecentTick]:
    rx = run.receiver
    with rx.lock:
        recent = list(rx.recent)[-n:] if n > 0 else []
        names = {tok: run.instruments.get(tok) for _, tok, _, _ in recent}
        closes = {tok: _prev_close(*hit) for tok in names
                  if (hit := rx.latest.get(tok)) is not None}
    out = []
    for t, tok, price, vol in recent:
        inst = names.get(tok)
        c = closes.get(tok)
        out.append(RecentTick(t, tok, inst.tradingsymbol if inst else str(tok), price, vol,
                              (price - c) * 100.0 / c if c else None))
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
