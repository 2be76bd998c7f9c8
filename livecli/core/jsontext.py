"""JSON text of a large value, encoded in pieces so that no single call holds the GIL for long.

`json.dumps` is one C call: while it encodes the once-a-second status of 9000 symbols (half a
megabyte, 20-50 ms) no other thread runs, the receiving thread included, and the ticks it
should be reading wait in the socket. Python lets a waiting thread in between bytecodes (every
5 ms by default), never inside a C call. `dumps_in_pieces` writes the same text as `json.dumps`
but encodes a big list or dict a slice at a time, so the longest call is a slice's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# Items encoded per call: a few hundred microseconds of work for the flat values of a status.
PIECE = 512


def dumps_in_pieces(value: Any, *, separators: tuple[str, str] = (", ", ": "),
                    default: Callable[[Any], Any] | None = None, piece: int = PIECE) -> str:
    """Exactly `json.dumps(value, separators=separators, default=default)`, with each list,
    tuple or dict longer than `piece` encoded `piece` items per call. Containers are looked into
    through dicts; what sits inside one slice of a big list or dict is encoded with it."""
    item_sep, key_sep = separators

    def plain(v: Any) -> str:
        return json.dumps(v, separators=separators, default=default)

    def big(v: Any) -> bool:
        return isinstance(v, (list, tuple, dict)) and len(v) > piece

    # A big list is cut into slices as it is: looking through 9000 items for containers would
    # cost more than encoding them.
    def enc(v: Any) -> str:
        if isinstance(v, dict):
            if not all(type(k) is str for k in v):
                return plain(v)  # json.dumps's own key coercion (ints, floats, None)
            if len(v) > piece:
                items = list(v.items())
                return "{" + item_sep.join(
                    plain(dict(items[i:i + piece]))[1:-1] for i in range(0, len(items), piece)
                ) + "}"
            if any(big(x) or isinstance(x, dict) for x in v.values()):
                return "{" + item_sep.join(
                    plain(k) + key_sep + enc(x) for k, x in v.items()) + "}"
            return plain(v)
        if isinstance(v, (list, tuple)):
            if len(v) > piece:
                return "[" + item_sep.join(
                    plain(list(v[i:i + piece]))[1:-1] for i in range(0, len(v), piece)) + "]"
            return plain(v)
        return plain(v)

    return enc(value)
