"""Text from users and files, made safe to echo in a one-line message.

A symbol, a config key or an option value that livecli repeats in an error may hold control
characters (a pasted escape sequence, a stray newline from a file); printed raw they would
recolour or clear the terminal, or break the one-line error into several. Every such echo goes
through `printable`.
"""

from __future__ import annotations


def printable(text: str, limit: int | None = None) -> str:
    """`text` with control characters escaped (`\\x1b`, `\\n`, `\\u200b`), optionally cut.

    Printable characters, non-ASCII letters included, are kept as they are; what Python does
    not call printable (controls, format characters, line and paragraph separators, spaces
    other than " ") is escaped the way `repr` writes it. With `limit`, the result is cut to
    that many characters, the last one `…`.
    """
    s = text if text.isprintable() else "".join(
        ch if ch.isprintable() else repr(ch)[1:-1] for ch in text
    )
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + "…"
    return s
