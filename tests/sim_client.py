"""A minimal ticker client for the stand-in's tests: websockets' sync client + livecli's codec.

It collects raw messages with their receive times, so tests can check bytes (heartbeats,
malformed frames, silence) as well as decoded ticks. Every wait is bounded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from livecli.kite import codec


@dataclass
class Received:
    binary: list[tuple[float, bytes]] = field(default_factory=list)
    text: list[tuple[float, str]] = field(default_factory=list)

    def frames(self) -> list[bytes]:
        return [b for _, b in self.binary if len(b) > 1]

    def heartbeats(self) -> int:
        return sum(1 for _, b in self.binary if len(b) == 1)

    def ticks(self) -> list[Any]:
        out = []
        for t, b in self.binary:
            out.extend(codec.decode_frame(b, t).ticks())
        return out

    def columns(self) -> Any:
        from livecli.core.ticks import TickColumns

        ticks = self.ticks()
        return TickColumns.from_ticks(ticks)


class SimClient:
    def __init__(self, ws_url: str, api_key: str, access_token: str) -> None:
        from websockets.sync.client import connect

        self._cm = connect(f"{ws_url}?api_key={api_key}&access_token={access_token}",
                           open_timeout=5, close_timeout=1, compression=None, max_size=None)
        self.ws = self._cm.__enter__()
        self.got = Received()

    def send(self, action: str, value: Any) -> None:
        self.ws.send(json.dumps({"a": action, "v": value}))

    def subscribe(self, tokens: list[int], mode: str | None = None) -> None:
        self.send("subscribe", tokens)
        if mode:
            self.send("mode", [mode, tokens])

    def recv_one(self, timeout: float) -> bytes | str | None:
        try:
            m = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        now = time.time()
        if isinstance(m, str):
            self.got.text.append((now, m))
        else:
            self.got.binary.append((now, m))
        return m

    def collect(self, seconds: float) -> Received:
        """Everything received in the next `seconds`."""
        start = len(self.got.binary), len(self.got.text)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.recv_one(left)
        return Received(self.got.binary[start[0]:], self.got.text[start[1]:])

    def until(self, predicate: Any, timeout: float) -> bool:
        """Receive until `predicate(self.got)` holds or `timeout` passes."""
        end = time.monotonic() + timeout
        while not predicate(self.got):
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.recv_one(min(left, 0.5))
        return True

    def close(self) -> None:
        try:
            self._cm.__exit__(None, None, None)
        except Exception:
            pass

    def __enter__(self) -> SimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
