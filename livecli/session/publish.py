"""Publishing a running session to NATS JetStream (`--publish`, `[publish]`).

The session side of livecli/bus: it registers O(1) listeners on the session (a frame, a batch of
closed candles, the status: each only a reference handed to the bus publisher's bounded queue) and gives
the publisher its encoder (`MessageEncoder`), which runs in the publisher's own process
(livecli/bus/process.py), never on the receiving path. The messages are the JSON lines' objects
(livecli/session/jsonl.py, the same encoders) with the schema version:

* every tick on `livecli.ticks.<EXCHANGE>.<SYMBOL>`;
* every closed candle on `livecli.candles.<INTERVAL>.<EXCHANGE>.<SYMBOL>`, with a
  `Nats-Msg-Id` (instrument, interval, start), so JetStream stores each closed candle once;
* the forming candles whose values changed since they were last sent (`"closed": false`, same
  subject): 1-minute ones about once a second, longer intervals every LONG_EVERY seconds, read
  from the engine as one batch per interval (`CandleEngine.forming_batch`);
* the status on `livecli.status` (with its `publish` part; per-symbol status only up to
  `STATUS_SYMBOLS_MAX` instruments: beyond, it would outgrow a NATS message, and the ticks
  carry it anyway).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from livecli.bus.publisher import CANDLE, TICKS, Encoder, NatsPublisher, Outgoing, TextBatch
from livecli.bus.subjects import STATUS_SUBJECT, candle_msg_id, candle_subject, tick_subject
from livecli.core.candles import ORIGINS
from livecli.core.slots import grow
from livecli.session.jsonl import TickLines, candle_lines, status_line

if TYPE_CHECKING:
    from livecli.bus.options import PublishOptions
    from livecli.core.closed import ClosedCandles
    from livecli.core.intervals import Interval
    from livecli.core.status import LiveStatus, PublishStatus
    from livecli.session.live import LiveSession

STATUS_SYMBOLS_MAX = 1000
LONG_EVERY = 5  # status rounds (~seconds) between forming updates of the longer intervals
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
        # Per interval, per engine slot: the values of the forming candle last sent.
        self._sent: dict[int, dict[str, np.ndarray]] = {}
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
        self.publisher.put_ticks(frame, len(frame), received_at)

    def _on_candles(self, batch: ClosedCandles) -> None:
        # A minute's end closes thousands at once: the batch goes in parts of CANDLE_CHUNK rows
        # (each admitted on its own, so a full queue sheds only what does not fit), each with
        # its own rows' names rather than the engine's list of all of them (its arrays pickle
        # as a few memcpys); the lines are made from the arrays in the publisher's process.
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
            # 1-minute candles every second, longer ones every LONG_EVERY seconds (each is a
            # line to format and a message to store per instrument in the publisher's process).
            self._rounds += 1
            intervals = self.session.intervals
            for iv in intervals if self._rounds % LONG_EVERY == 0 else intervals[:1]:
                self._forming_round(iv)
        self.publisher.put_other(_slim(status))

    def _forming_round(self, iv: Interval) -> None:
        """The forming candles of `iv` that changed since their last update, as one batch
        (arrays: they cross to the publisher's process as a few memcpys)."""
        batch = self.session.forming_batch(iv)
        if batch is None or not len(batch):
            return
        sent = self._sent.setdefault(iv.minutes, {})
        need = int(batch.slot.max()) + 1
        slot = batch.slot
        news = [getattr(batch, k) if k != "origin" else batch.origins for k in _COMPARED]
        if len(sent.get("start", ())) < need:
            for k, col in zip(_COMPARED, news, strict=True):
                sent[k] = grow(sent.get(k, np.empty(0, col.dtype)), need, _UNSENT[k])
        # A candle is news when any of its values differ from those last sent: a trade, or
        # history's minutes folded into it (warm start, gap repair: ticks need not change).
        changed = np.zeros(len(batch), np.bool_)
        for k, col in zip(_COMPARED, news, strict=True):
            changed |= sent[k][slot] != col
        idx = np.flatnonzero(changed)
        if not len(idx):
            return
        part = batch.take(idx)
        part.symbols, part.exchanges = own_names(batch, part)
        part.slot = np.arange(len(part))
        if self.publisher.put_other((FORMING, part), len(part)):
            where = slot[idx]
            for k, col in zip(_COMPARED, news, strict=True):
                sent[k][where] = col[idx]


# What a forming update is compared on, and the "never sent" value of each.
_COMPARED = ("start", "open", "high", "low", "close", "volume", "oi", "ticks", "partial",
             "origin")
_UNSENT: dict[str, object] = {"start": -1, "open": np.nan, "high": np.nan, "low": np.nan,
                              "close": np.nan, "volume": -1, "oi": -2, "ticks": -1,
                              "partial": False, "origin": -1}


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
        self._candle_subjects: dict[tuple[int, int], str] = {}

    def __call__(self, kind: int, item: Any, received_at: float) -> list[Outgoing] | TextBatch:
        if kind == TICKS:
            return self._tick_messages(item, received_at)
        if kind == CANDLE:
            return self._closed_messages(item)
        if isinstance(item, tuple) and item[0] == NAMES:
            self.names = {t: _Names(sym, ex) for t, (sym, ex) in item[1].items()}
            self._tick_subjects = {}
            return []
        if isinstance(item, tuple) and item[0] == FORMING:
            batch = item[1]
            return TextBatch(self._candle_subjects_of(batch),
                             candle_lines(batch, closed=False, schema=True))
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

    def _candle_subjects_of(self, batch: ClosedCandles) -> list[str]:
        """Each row's subject, as `candle_subject` names it (made once per instrument and
        interval)."""
        minutes = batch.interval_min
        interval = f"{minutes}min"
        syms, exs = batch.symbols, batch.exchanges
        ns, ne = len(syms), len(exs)
        known = self._candle_subjects
        out = []
        for s, tok in zip(batch.slot.tolist(), batch.token.tolist(), strict=True):
            subject = known.get((tok, minutes))
            if subject is None:
                sym = syms[s] if s < ns else ""
                ex = exs[s] if s < ne else ""
                subject = known[(tok, minutes)] = candle_subject(interval, ex or "_",
                                                                 sym or str(tok))
            out.append(subject)
        return out

    def _closed_messages(self, batch: ClosedCandles) -> list[Outgoing]:
        """Closed candles, each with its `Nats-Msg-Id`."""
        interval = f"{batch.interval_min}min"
        return [(subject, line.encode(), candle_msg_id(tok, interval, start, ORIGINS[g]))
                for subject, line, tok, start, g in zip(
                    self._candle_subjects_of(batch), candle_lines(batch, closed=True,
                                                                  schema=True),
                    batch.token.tolist(), batch.start.tolist(), batch.origins.tolist(),
                    strict=True)]


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
