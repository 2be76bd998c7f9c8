"""The one producer of `LiveStatus`: a run's state, the feed's links and every symbol, typed.

The lock is held only to copy what the receiving path owns (a vectorised gather of each
instrument's price, receipt time and count: well under a millisecond with 9000); the status itself, with its per-symbol values, is built after, so a status or a
dashboard frame never stalls the ticks.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from livecli.core.status import LinkStatus, LiveStatus, SymbolTable
from livecli.session.warmup import HistoryProgress

if TYPE_CHECKING:
    from livecli.session.run import Run


def build_status(run: Run, *, ended: bool = False, symbols: bool = True) -> LiveStatus:
    """`run`'s status now; `ended` once the run is over (stopped or failed). Without `symbols`
    the per-symbol part is left empty (the dashboard's connection panel needs none of it, and
    with 9000 instruments it is most of the cost)."""
    rx = run.receiver
    with rx.lock:
        instruments = list(run.instruments.items()) if symbols else []
        prices, seen, counts = rx.latest.columns([tok for tok, _ in instruments])
        ec = run.engine.counters
        late, bad, engine_errors = ec.late, ec.bad, ec.callback_errors
        # The engine guard counts ticks stamped too far ahead of the clock (issue 9); older
        # engines have no such counter.
        future = getattr(ec, "future", 0)
        clock = run.engine.clock
    now = time.time()
    feed = run.feed.status()
    # Columns, not 9000 objects a second: a SymbolStatus is made only for a row someone reads.
    per_symbol = SymbolTable.build(
        symbol=[inst.tradingsymbol for _, inst in instruments],
        exchange=[inst.exchange for _, inst in instruments],
        instrument_token=[tok for tok, _ in instruments],
        last_price=prices,
        last_tick_at=seen,
        last_tick_age_s=[None if at is None else round(now - at, 3) for at in seen],
        ticks=counts,
    )
    state = feed.state
    if ended:
        state = "stopped" if run.failure is None else feed.state
    store = run.store
    hist = run.history.progress() if run.history is not None else HistoryProgress()
    return LiveStatus(
        source=run.source.name,
        state=state,
        mode=run.mode,
        intervals=tuple(i.name for i in run.engine.intervals),
        pid=os.getpid(),
        started_at=run.started_at,
        uptime_s=round(now - run.started_at, 1),
        reconnects=feed.reconnects,
        retry_in_s=feed.retry_in_s,
        last_error=feed.last_error or (str(run.failure) if run.failure is not None else None),
        last_message_age_s=feed.last_message_age_s,
        ticks_per_s=round(feed.ticks_per_s, 1),
        ticks=feed.ticks,
        frames=feed.frames,
        malformed_frames=feed.malformed,
        handler_errors=feed.handler_errors,
        candles_stored=store.candles_stored,
        store_error=store.error,
        late_ticks=late,
        bad_ticks=bad,
        future_ticks=future,
        callback_errors=run.dispatcher.errors + engine_errors,
        tick_lines_dropped=run.listeners.dropped(),
        feed_clock=clock if clock > 0 else None,
        db=str(run.db_path) if run.db_path is not None else None,
        history_state=hist.state,
        history_done=hist.done,
        history_total=hist.total,
        history_minutes=hist.minutes,
        history_repaired=hist.repaired,
        history_requests=hist.requests,
        history_error=hist.error,
        links=tuple(
            LinkStatus(lk.index, lk.state, lk.instruments, lk.reconnects, lk.retry_in_s,
                       lk.last_message_age_s, lk.last_error)
            for lk in feed.links
        ),
        symbols=per_symbol,
        publish=run.listeners.publisher() if run.listeners.publisher is not None else None,
    )
