"""The SQLite candle store: one import for the writer, the reader and the schema helpers.

The store is split by job: `schema` (tables, opening safely), `writer` (the live session's
background writer), `reader` (read-only, fast column reads), `owner` (one writer per store)
and `meta` (whose market a store holds). This module gathers them so
callers need not know the split.
"""

from __future__ import annotations

from livecli.store.meta import store_source
from livecli.store.reader import CandleStoreReader, SymbolSpan
from livecli.store.schema import (
    SCHEMA_VERSION,
    TICK_ROW_COLUMNS,
    check_writable,
    open_for_read,
    open_for_write,
)
from livecli.store.writer import StoreWriter

__all__ = [
    "SCHEMA_VERSION",
    "TICK_ROW_COLUMNS",
    "CandleStoreReader",
    "StoreWriter",
    "SymbolSpan",
    "check_writable",
    "open_for_read",
    "open_for_write",
    "store_source",
]
