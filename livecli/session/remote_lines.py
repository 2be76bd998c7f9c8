"""The JSON lines of an attached session (`livecli stream --attach URL --jsonl`).

The same writer as a local session's (livecli/session/jsonl.py: its queue, bounds, drop count
and reader-gone handling), fed by the server's pushed batches instead of decoded frames. A tick
line is the API's tick object without `schema`, which is the local line field for field; candle
and status lines go through the same `Candle` and `LiveStatus` as a local session's, so an
attached stream writes what the served session itself would have written.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from livecli.core.wire import jsonl_tick
from livecli.session.jsonl import JsonLines

if TYPE_CHECKING:
    from typing import IO

    from livecli.session.remote import RemoteSession


class AttachedLines(JsonLines):
    """`JsonLines` over a `RemoteSession`; attach before `start()`/`attach()`."""

    def __init__(self, session: RemoteSession, out: IO[str] | None = None, **kw: Any) -> None:
        # The remote has the listener methods JsonLines registers (its frames are tick lists).
        super().__init__(cast(Any, session), out, **kw)

    def start(self) -> AttachedLines:
        super().start()
        return self

    def _ticks(self, frame: Any, received_at: float) -> list[str]:
        dumps = json.dumps
        return [dumps(jsonl_tick(t)) + "\n" for t in frame]
