"""Publishing a running session to NATS JetStream (`--publish`, `[publish]`).

The session side of livecli/bus: it registers O(1) listeners on the session (a frame, a closed
candle, the status: each only a reference handed to the bus publisher's bounded inbox) and gives
the publisher the encoder it calls on its own thread. The messages are the JSON lines' objects
(livecli/session/jsonl.py, the same encoders) with the schema version:

* every tick on `livecli.ticks.<EXCHANGE>.<SYMBOL>`;
* every closed candle on `livecli.candles.<INTERVAL>.<EXCHANGE>.<SYMBOL>`, with a
  `Nats-Msg-Id` (instrument, interval, start), so JetStream stores each closed candle once;
* about once a second, the forming candle of each instrument that ticked since (`"closed":
  false`, same subject), and the status on `livecli.status` (with its `publish` part; per-symbol
  status only up to `STATUS_SYMBOLS_MAX` instruments: beyond, it would outgrow a NATS message,
  and the ticks carry it anyway).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from livecli.bus.publisher import CANDLE, TICKS, NatsPublisher, Outgoing
from livecli.bus.subjects import STATUS_SUBJECT, candle_msg_id, candle_subject, tick_subject
from livecli.session.jsonl import TickLines, candle_line, status_line

if TYPE_CHECKING:
    from livecli.bus.options import PublishOptions
    from livecli.core.candles import Candle
    from livecli.core.status import LiveStatus, PublishStatus
    from livecli.session.live import LiveSession

STATUS_SYMBOLS_MAX = 1000
FORMING = "forming"  # the marker of a forming-candle round on the publisher's queue


class Publication:
    """Publish `session` to NATS. `start()` before the session starts; `close()` after stop."""

    def __init__(self, session: LiveSession, opts: PublishOptions) -> None:
        self.session = session
        self.opts = opts
        self.publisher = NatsPublisher(opts, self._encode)
        self._ticks = TickLines(lambda: session.instruments, schema=True)
        self._tick_subjects: dict[int, tuple[Any, str]] = {}
        self._candle_subjects: dict[tuple[int, str], str] = {}
        self._touched: set[int] = set()  # tokens that ticked since the last forming round
        self._closed = threading.Event()

    def start(self) -> Publication:
        """Connect and make the stream if absent (ConnectionFailedError if NATS is not there),
        then listen to the session."""
        self.publisher.start()
        s = self.session
        s.add_frame_listener(self._on_frame)
        s.add_candle_listener(self._on_candle)
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
            self.publisher.put_other(final_status)
        self._closed.set()
        self.session.set_publish_status(None)
        return self.publisher.close(timeout)

    # --- listeners: the receiving path and the clock thread, O(1) ----------------------------
    def _on_frame(self, frame: Any, received_at: float) -> None:
        if not self._closed.is_set():
            self.publisher.put_ticks(frame, len(frame), received_at)

    def _on_candle(self, candle: Candle) -> None:
        if not self._closed.is_set():
            self.publisher.put_candle(candle)

    def _on_status(self, status: LiveStatus) -> None:
        if self._closed.is_set():
            return
        if self.opts.forming_updates:
            self.publisher.put_other(FORMING)
        self.publisher.put_other(status)

    # --- the publisher's thread ----------------------------------------------------------------
    def _encode(self, kind: int, item: Any, received_at: float) -> list[Outgoing]:
        if kind == TICKS:
            return self._tick_messages(item, received_at)
        if kind == CANDLE:
            return [self._candle_message(item)]
        if item == FORMING:
            return self._forming_messages()
        return [self._status_message(item)]

    def _tick_messages(self, frame: Any, received_at: float) -> list[Outgoing]:
        lines = self._ticks.lines(frame, received_at)
        names = self.session.instruments
        subjects = self._tick_subjects
        touched = self._touched
        out: list[Outgoing] = []
        for tok, line in zip(frame.token.tolist(), lines, strict=True):
            inst = names.get(tok)
            cached = subjects.get(tok)
            if cached is None or cached[0] is not inst:
                subject = tick_subject(inst.exchange, inst.tradingsymbol) if inst else \
                    tick_subject("_", str(tok))
                cached = subjects[tok] = (inst, subject)
            touched.add(tok)
            out.append((cached[1], line.encode(), None))
        return out

    def _subject_of(self, c: Candle) -> str:
        key = (c.instrument_token, c.interval)
        subject = self._candle_subjects.get(key)
        if subject is None:
            subject = self._candle_subjects[key] = candle_subject(
                c.interval, c.exchange or "_", c.symbol or str(c.instrument_token))
        return subject

    def _candle_message(self, c: Candle) -> Outgoing:
        return (self._subject_of(c), candle_line(c, schema=True).encode(),
                candle_msg_id(c.instrument_token, c.interval, c.start))

    def _forming_messages(self) -> list[Outgoing]:
        touched, self._touched = self._touched, set()
        if not touched:
            return []
        out: list[Outgoing] = []
        for iv in self.session.intervals:
            for fc in self.session.forming_candles(touched, iv, closes=0).values():
                c = fc.candle
                if c is not None:
                    out.append((self._subject_of(c), candle_line(c, schema=True).encode(), None))
        return out

    def _status_message(self, st: LiveStatus) -> Outgoing:
        if len(st.symbols) > STATUS_SYMBOLS_MAX:
            st = dataclasses.replace(st, symbols=())
        return (STATUS_SUBJECT, status_line(st).encode(), None)


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
