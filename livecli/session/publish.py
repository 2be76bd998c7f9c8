"""Publishing a running session to NATS JetStream (`--publish`, `[publish]`).

The session side of livecli/bus: it registers O(1) listeners on the session (a frame, a batch of
closed candles, the status: each only a reference handed to the bus publisher's bounded queue) and gives
the publisher its encoder (`MessageEncoder`), which runs in the publisher's own process
(livecli/bus/process.py), never on the receiving path. The messages are the JSON lines' objects
(livecli/session/jsonl.py, the same encoders) with the schema version:

* every tick on `livecli.ticks.<EXCHANGE>.<SYMBOL>`;
* every closed candle on `livecli.candles.<INTERVAL>.<EXCHANGE>.<SYMBOL>`, with a
  `Nats-Msg-Id` (instrument, interval, start), so JetStream stores each closed candle once;
* the forming candle of each instrument that ticked since (`"closed": false`, same subject):
  1-minute ones about once a second, longer intervals every LONG_EVERY seconds; and the status on `livecli.status` (with its `publish` part; per-symbol
  status only up to `STATUS_SYMBOLS_MAX` instruments: beyond, it would outgrow a NATS message,
  and the ticks carry it anyway).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from livecli.bus.publisher import CANDLE, TICKS, Encoder, NatsPublisher, Outgoing, TextBatch
from livecli.bus.subjects import STATUS_SUBJECT, candle_msg_id, candle_subject, tick_subject
from livecli.core.candles import Candle
from livecli.session.jsonl import TickLines, candle_line, status_line

if TYPE_CHECKING:
    from livecli.bus.options import PublishOptions
    from livecli.core.closed import ClosedCandles
    from livecli.core.status import LiveStatus, PublishStatus
    from livecli.session.live import LiveSession

STATUS_SYMBOLS_MAX = 1000
LONG_EVERY = 5  # status rounds (~seconds) between forming updates of the longer intervals
FORMING_CHUNK = 500  # instruments per look at the forming candles (one lock hold each)
CANDLE_CHUNK = 500  # closed candles per item on the publisher's queue
NAMES, FORMING = "names", "forming"  # markers of the other items on the publisher's queue


class Publication:
    """Publish `session` to NATS. `start()` before the session starts; `close()` after stop.

    The publishing itself runs in a child process (livecli/bus/process.py); here only O(1)
    listeners queue references. `in_process=True` keeps it on a thread of this process
    (livecli/bus/publisher.py), for hosts where a child process cannot be started.
    """

    def __init__(self, session: LiveSession, opts: PublishOptions, *,
                 in_process: bool = False) -> None:
        self.session = session
        self.opts = opts
        self.publisher: Any
        if in_process:
            self.publisher = NatsPublisher(opts, make_encoder())
        else:
            from livecli.bus.process import ProcessPublisher

            self.publisher = ProcessPublisher(opts, make_encoder)
        self._names_len = -1
        self._touched: set[int] = set()  # tokens that ticked since the last forming round
        self._touched_long: set[int] = set()  # ... since the last round of longer intervals
        self._rounds = 0
        self._closed = threading.Event()

    def start(self) -> Publication:
        """Connect and make the stream if absent (ConnectionFailedError if NATS is not there),
        then listen to the session."""
        self.publisher.start()
        s = self.session
        s.add_frame_listener(self._on_frame)
        s.add_candle_batch_listener(self._on_candles)
        s.add_status_listener(self._on_status)
        s.set_publish_status(self.stats)
        return self

    def stats(self) -> PublishStatus:
        return self.publisher.stats()

    def close(self, final_status: LiveStatus | None = None, timeout: float = 10.0) -> bool:
        """Publish the final status, send what waits, wait for closed candles' acks."""
        if self._closed.is_set():
            return True
        if final_status is not None:
            self.publisher.put_other(_slim(final_status))
        self._closed.set()
        self.session.set_publish_status(None)
        return self.publisher.close(timeout)

    # --- listeners: the receiving path and the clock thread, O(1) ----------------------------
    def _names_first(self) -> None:
        names = self.session.instruments
        if len(names) != self._names_len:  # new instruments: their names go first
            self._names_len = len(names)
            self.publisher.put_other(
                (NAMES, {t: (i.tradingsymbol, i.exchange) for t, i in names.items()}))

    def _on_frame(self, frame: Any, received_at: float) -> None:
        if self._closed.is_set():
            return
        self._names_first()
        if self.opts.forming_updates:
            self._touched.update(frame.token.tolist())
        self.publisher.put_ticks(frame, len(frame), received_at)

    def _on_candles(self, batch: ClosedCandles) -> None:
        # A minute's end closes thousands at once: the batch goes in parts of CANDLE_CHUNK rows
        # (each admitted on its own, so a full queue sheds only what does not fit), each with
        # its own rows' names rather than the engine's list of all of them (its arrays pickle
        # as a few memcpys); the Candle objects and lines are made in the publisher's process.
        # On the receiving, clock or history thread: nothing here reads the session's maps.
        n = len(batch)
        if self._closed.is_set() or not n:
            return
        for lo in range(0, n, CANDLE_CHUNK):
            part = batch.take(np.arange(lo, min(n, lo + CANDLE_CHUNK)))
            part.symbols, part.exchanges = own_names(batch, part)
            part.slot = np.arange(len(part))
            self.publisher.put_candles(part, len(part))

    def _on_status(self, status: LiveStatus) -> None:
        if self._closed.is_set():
            return
        if self.opts.forming_updates:
            # 1-minute candles every second, longer ones every LONG_EVERY seconds: reading a
            # longer forming candle merges its minutes (~4 us each, 9000 instruments...).
            self._rounds += 1
            intervals = self.session.intervals
            if self._rounds % LONG_EVERY:
                intervals = intervals[:1]  # 1min (always built, first)
                touched = list(self._touched)
                self._touched_long |= self._touched
            else:
                touched = list(self._touched | self._touched_long)
                self._touched_long = set()
            self._touched = set()
            forming = []
            # In chunks: each call holds the session's lock, which the receiving path needs.
            for i in range(0, len(touched), FORMING_CHUNK):
                chunk = touched[i:i + FORMING_CHUNK]
                for iv in intervals:
                    forming.extend(self.session.forming_list(chunk, iv))
            if forming:
                # As plain tuples: they cross to the publisher's process several times faster
                # than Candle objects pickle (thousands a second).
                rows = [(c.instrument_token, c.interval_min, c.start, c.open, c.high, c.low,
                         c.close, c.volume, c.oi, c.ticks, c.partial, c.synthetic, c.closed,
                         c.symbol, c.exchange) for c in forming]
                self.publisher.put_other((FORMING, rows), len(rows))
        self.publisher.put_other(_slim(status))


def own_names(batch: ClosedCandles, part: ClosedCandles) -> tuple[list[str], list[str]]:
    """The symbol and exchange of each of `part`'s rows, from `batch`'s lists (as
    `ClosedCandles.candles()` names a row: its token when the list has no entry)."""
    syms, exs = batch.symbols, batch.exchanges
    ns, ne = len(syms), len(exs)
    slots, toks = part.slot.tolist(), part.token.tolist()
    return ([syms[s] if s < ns else str(t) for s, t in zip(slots, toks, strict=True)],
            [exs[s] if s < ne else "" for s in slots])


def _slim(st: LiveStatus) -> LiveStatus:
    """The status as published: per-symbol status only up to STATUS_SYMBOLS_MAX instruments."""
    return dataclasses.replace(st, symbols=()) if len(st.symbols) > STATUS_SYMBOLS_MAX else st


class _Names:
    """An instrument as the encoder needs it: its symbol and exchange."""

    __slots__ = ("exchange", "tradingsymbol")

    def __init__(self, tradingsymbol: str, exchange: str) -> None:
        self.tradingsymbol = tradingsymbol
        self.exchange = exchange


def make_encoder() -> Encoder:
    """The publisher's encoder (called in the publisher's process: picklable by name)."""
    return MessageEncoder()


class MessageEncoder:
    """The publisher's items as NATS messages: the JSON lines' encoders, with the schema."""

    def __init__(self) -> None:
        self.names: dict[int, _Names] = {}
        self._ticks = TickLines(lambda: self.names, schema=True)
        self._tick_subjects: dict[int, str] = {}  # emptied when the names change
        self._candle_subjects: dict[tuple[int, str], str] = {}

    def __call__(self, kind: int, item: Any, received_at: float) -> list[Outgoing] | TextBatch:
        if kind == TICKS:
            return self._tick_messages(item, received_at)
        if kind == CANDLE:
            return [self._candle_message(c) for c in item.candles()]
        if isinstance(item, tuple) and item[0] == NAMES:
            self.names = {t: _Names(sym, ex) for t, (sym, ex) in item[1].items()}
            self._tick_subjects = {}
            return []
        if isinstance(item, tuple) and item[0] == FORMING:
            candles = [Candle(*row) for row in item[1]]
            return [(self._subject_of(c), candle_line(c, schema=True).encode(), None)
                    for c in candles]
        return [(STATUS_SUBJECT, status_line(item).encode(), None)]

    def _tick_messages(self, frame: Any, received_at: float) -> TextBatch:
        subjects = self._tick_subjects
        get = subjects.get
        toks = frame.token.tolist()
        return TextBatch([get(tok) or self._tick_subject(tok) for tok in toks],
                         self._ticks.lines(frame, received_at))

    def _tick_subject(self, tok: int) -> str:
        inst = self.names.get(tok)
        subject = self._tick_subjects[tok] = (
            tick_subject(inst.exchange, inst.tradingsymbol) if inst else tick_subject("_", str(tok)))
        return subject

    def _subject_of(self, c: Candle) -> str:
        key = (c.instrument_token, c.interval)
        subject = self._candle_subjects.get(key)
        if subject is None:
            subject = self._candle_subjects[key] = candle_subject(
                c.interval, c.exchange or "_", c.symbol or str(c.instrument_token))
        return subject

    def _candle_message(self, c: Candle) -> Outgoing:
        return (self._subject_of(c), candle_line(c, schema=True).encode(),
                candle_msg_id(c.instrument_token, c.interval, c.start, c.origin))


def publish_options(session: LiveSession, url: str | None = None) -> PublishOptions | None:
    """The `[publish]` settings, with `url` (`--publish`) over the configured one; None when
    neither names a server. Bad values are usage errors naming the fix."""
    from pathlib import Path

    from livecli.bus.options import PublishOptions, check_stream, check_url
    from livecli.errors import UsageError

    pub = session.settings.publish
    target = url or pub.url
    if not target:
        return None
    creds = Path(pub.credentials).expanduser() if pub.credentials else None
    if creds is not None and not creds.is_file():
        raise UsageError(f"[publish] credentials {creds} is not a file: give the path of the "
                         "NATS .creds file, or remove the setting")
    return PublishOptions(
        url=check_url(target, "--publish" if url else "[publish] url"), credentials=creds,
        stream=check_stream(pub.stream or "LIVECLI"), max_age_s=pub.max_age_s,
        max_bytes=pub.max_bytes, duplicate_window_s=pub.duplicate_window_s, buffer=pub.buffer,
        forming_updates=pub.forming_updates,
    )
