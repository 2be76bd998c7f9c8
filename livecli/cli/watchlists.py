"""`@name` on the command line (and in the dashboard's `a` prompt): a [watchlists] entry.

`livecli stream @banks INFY` streams the symbols of `banks` and INFY; a symbol named twice is
streamed once. An unknown name is a usage error naming the lists the config has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from livecli.errors import UsageError

if TYPE_CHECKING:
    from livecli.config import Settings


def expand_symbols(symbols: Iterable[str], settings: Settings) -> list[str]:
    """`symbols` with each `@name` replaced by its watchlist's symbols, duplicates dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for sym in symbols:
        for s in expand_one(sym, settings):
            key = s.strip().upper()
            if key not in seen:
                seen.add(key)
                out.append(s)
    return out


def expand_one(symbol: str, settings: Settings) -> list[str]:
    s = symbol.strip()
    if not s.startswith("@"):
        return [symbol]
    name = s[1:]
    lists = settings.watchlists
    if name not in lists:
        known = ", ".join(f"@{n}" for n in sorted(lists)) or "none (add a [watchlists] section)"
        where = f" ({', '.join(str(f) for f in settings.files)})" if settings.files else ""
        raise UsageError(f"no watchlist named @{name} in the config{where}; known: {known}; "
                         'e.g. banks = ["HDFCBANK", "ICICIBANK"] under [watchlists]')
    return list(lists[name])


def expander(settings: Settings) -> Callable[[str], list[str]]:
    return lambda symbol: expand_one(symbol, settings)
