"""Text that came from a server, made safe to show: one line, bounded, no terminal controls.

Kite's error messages, a close reason, an exception from kiteconnect or `requests`: livecli puts
them into status lines, logs and one-line errors. A server may send megabytes, newlines or
escape sequences; every such text goes through `shorten` before anyone sees it.
"""

from __future__ import annotations

import re

TEXT_LIMIT = 200  # characters of server text shown; a real Kite message fits in far fewer

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shorten(text: object, limit: int = TEXT_LIMIT) -> str:
    """`text` on one line (whitespace runs become one space, other control characters are
    escaped as `\\xNN`), cut to at most `limit` characters with a trailing `…` when cut."""
    s = text if isinstance(text, str) else str(text)
    # Only the head can be shown: never scan (or copy) megabytes to show 200 characters.
    head = s[: 4 * limit + 8]
    line = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(head.split()))
    if len(line) <= limit and len(head) == len(s):
        return line
    return line[: limit - 1] + "…"
