"""Text that came from a server, made safe to show: one line, bounded, no terminal controls.

Kite's error messages, a close reason, an exception from kiteconnect or `requests`: livecli puts
them into status lines, logs and one-line errors. A server may send megabytes, newlines or
escape sequences; every such text goes through `shorten` before anyone sees it.
"""

from __future__ import annotations

from livecli.core.text import printable

TEXT_LIMIT = 200  # characters of server text shown; a real Kite message fits in far fewer


def shorten(text: object, limit: int = TEXT_LIMIT) -> str:
    """`text` on one line (whitespace runs become one space, other control characters escaped
    as `printable` does), cut to at most `limit` characters with a trailing `…` when cut."""
    s = text if isinstance(text, str) else str(text)
    # Only the head can be shown: never scan (or copy) megabytes to show 200 characters.
    head = s[: 4 * limit + 8]
    line = printable(" ".join(head.split()))
    if len(line) <= limit and len(head) == len(s):
        return line
    return line[: limit - 1] + "…"
