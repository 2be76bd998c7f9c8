"""The flags of a live session (`stream` and `serve`) turned into one `LiveSession`.

Both commands take the same stream options; they must mean the same thing in both, so the
session is built here once. Only flags actually given override the config ([stream] exchange,
mode, intervals); a bad value is reported by the config loader as a usage error naming the flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livecli.core.intervals import Interval
    from livecli.session.live import LiveSession


def live_session(
    *, exchange: str | None, mode: str | None, interval: list[str] | None, sim: bool,
    speed: float | None, record: bool, db: Path | None, config: Path | None, seed: int,
    sim_date: str | None, extra: Mapping[str, Any] | None = None, no_history: bool = False,
) -> tuple[LiveSession, list[Interval]]:
    """The session the flags describe, and the intervals the flags named (in their order).

    `extra` adds the command's own overrides (e.g. `serve.port`), None meaning not given.
    """
    from livecli.core.intervals import parse_interval
    from livecli.session.live import LiveSession

    intervals = [parse_interval(i) for i in (interval or [])]
    overrides = {"stream.exchange": exchange, "stream.mode": mode,
                 "stream.intervals": [i.name for i in intervals] or None,
                 "stream.fetch_history": False if no_history else None, **(extra or {})}
    session = LiveSession(
        source="sim" if sim else "auto", intervals=None, db=db, config=config, record=record,
        speed=speed, seed=seed, sim_date=sim_date, overrides=overrides,
    )
    return session, intervals
