"""JSON lines output of a session: ticks, closed candles and status, one object per line.

For scripts and pipes (`livecli stream --jsonl`, or whenever stdout is not a terminal). Events
are queued on the receiving path and serialised on a thread of their own, so a slow consumer of
stdout never stalls decoding. Times are ISO 8601 with +05:30.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

from livecli.core.timeutil import iso

if TYPE_CHECKING:
    from livecli.core.candles import Candle
    from livecli.session.live import LiveSession


class JsonLines:
    """Attach to a session before `start()`; `close()` after `stop()` drains everything."""

    def __init__(self, session: LiveSession, out: IO[str] | None = None) -> None:
        self.session = session
        self.out = out or sys.stdout
        self._q: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="livecli-jsonl", daemon=True)
        self.broken = False
        session.add_frame_listener(lambda frame, at: self._put("frame", (frame, at)))
        session.add_candle_listener(lambda c: self._put("candle", c))
        session.add_status_listener(lambda st: self._put("status", st))

    def _put(self, kind: str, payload: Any) -> None:
        if not self.broken:  # nobody reads any more: queueing would only grow memory
            self._q.put((kind, payload))

    def start(self) -> JsonLines:
        self._thread.start()
        return self

    def close(self, final_status: dict[str, Any] | None = None) -> None:
        if final_status is not None:
            self._q.put(("status", final_status))
        self._q.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        write = self.out.write
        while True:
            item = self._q.get()
            if item is None:
                break
            if self.broken:
                continue
            kind, payload = item
            try:
                if kind == "frame":
                    for line in self._ticks(*payload):
                        write(line)
                elif kind == "candle":
                    write(self._candle(payload))
                else:
                    write(json.dumps({"type": "status", **payload}) + "\n")
                if self._q.empty():
                    self.out.flush()
            except (OSError, ValueError):
                # The reader went away (`| head`), the terminal closed, the disk filled:
                # stop writing, keep the session going, and stop queueing output.
                self.broken = True
        try:
            self.out.flush()
        except (OSError, ValueError):
            self.broken = True

    def _ticks(self, frame: Any, received_at: float) -> list[str]:
        names = self.session.instruments
        out = []
        for t in frame.ticks():
            inst = names.get(t.instrument_token)
            obj = {
                "type": "tick",
                "symbol": inst.tradingsymbol if inst else str(t.instrument_token),
                "exchange": inst.exchange if inst else None,
                "instrument_token": t.instrument_token,
                "last_price": t.last_price,
                "volume_traded": t.volume_traded,
                "exchange_timestamp": iso(t.exchange_timestamp) if t.exchange_timestamp else None,
                "received_at": iso(received_at),
                "oi": t.oi,
                "day_high": t.day_high,
                "day_low": t.day_low,
                "change_pct": None if t.change_pct is None else round(t.change_pct, 4),
                "mode": t.mode,
            }
            out.append(json.dumps(obj) + "\n")
        return out

    @staticmethod
    def _candle(c: Candle) -> str:
        return json.dumps({"type": "candle", **c.to_dict()}) + "\n"
