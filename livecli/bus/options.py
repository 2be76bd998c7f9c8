"""Where and how to publish: the `[publish]` settings (or `--publish`) as one typed value.

Checked here, before anything connects, so a bad URL or stream name is one clear usage error
naming the fix, never a traceback from the NATS client half-way through a stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from livecli.config.schema import shown_url
from livecli.errors import UsageError

SCHEMES = ("nats", "tls")
DEFAULT_STREAM = "LIVECLI"
DEFAULT_PORT = 4222
# JetStream stream names: no whitespace, `.`, `*`, `>`, path separators.
_STREAM_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class PublishOptions:
    """A checked NATS target. `max_age_s`/`max_bytes` 0: unlimited. `buffer`: messages that
    may wait for the NATS connection before ticks are shed (closed candles keep the rest)."""

    url: str
    credentials: Path | None = None
    stream: str = DEFAULT_STREAM
    max_age_s: float = 86_400.0
    max_bytes: int = 0
    duplicate_window_s: float = 120.0
    buffer: int = 100_000
    forming_updates: bool = True

    @property
    def shown_url(self) -> str:
        return shown_url(self.url)


def check_url(url: str, flag: str = "--publish") -> str:
    """`url` if it is a NATS URL (nats://HOST[:PORT], tls://...), else a usage error."""
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        raise UsageError(
            f"{flag} {shown_url(text)!r} is not a NATS URL: use nats://HOST:4222 "
            "(or tls://HOST:4222)"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise UsageError(f"{flag} {shown_url(text)!r} has a bad port: use nats://HOST:4222"
                         ) from None
    return text


def check_stream(name: str) -> str:
    if not _STREAM_RE.match(name or ""):
        raise UsageError(
            f"[publish] stream {name!r} is not a JetStream stream name: use letters, digits, "
            "`_` and `-` only, e.g. LIVECLI"
        )
    return name
