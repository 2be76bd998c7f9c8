"""Writing candles to CSV or Parquet, whole or not at all.

Columns and types follow CANDLES.md: `start` as ISO 8601 with +05:30 in CSV and as a timestamp
with time zone in Parquet, float64 prices, int64 volume, booleans for the flags, an empty `oi` for
instruments without open interest. After the CANDLES.md columns come `closed` (false for a
candle still forming, or whose interval the recording did not cover to its end) and `source`
(KITE or SIMULATED: whose market the candles come from; empty when not recorded), a column
rather than file metadata so that CSV carries it too and it survives any concatenation. Files are written through a temporary file in the same folder
and renamed into place, so a failed or interrupted export never leaves a partial file behind.
pyarrow writes both formats: it is several times faster than pandas' writers on a million rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from livecli.config.files import atomic_path
from livecli.core.candles import CANDLE_FIELDS
from livecli.errors import ExportError, OutputExistsError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from livecli.core.derive import CandleArrays

FORMATS = ("csv", "parquet")
IST_TZ = "+05:30"
CHUNK_ROWS = 131_072


@dataclass(slots=True)
class ExportResult:
    path: Path
    rows: int
    bytes: int
    format: str


def choose_format(path: Path | None, fmt: str | None) -> str:
    """The export format: `fmt` when given, else the file's extension."""
    if fmt:
        f = fmt.lower().strip(".")
        if f not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}: use --format csv or --format parquet")
        return f
    if path is not None:
        ext = path.suffix.lower().lstrip(".")
        if ext in ("parquet", "pq"):
            return "parquet"
        if ext == "csv":
            return "csv"
        raise UsageError(
            f"cannot tell the format of {path.name!r} from its extension: "
            "name it .csv or .parquet, or pass --format csv|parquet"
        )
    return "csv"


def check_target(path: Path, force: bool) -> None:
    """Refuse a path whose folder is missing or unwritable, or an existing file without force."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise ExportError(f"cannot write {path}: folder {folder} does not exist: create it first")
    if not folder.is_dir():
        raise ExportError(f"cannot write {path}: {folder} is not a folder")
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder: give a file name")
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists: pass --force to overwrite it")
    if not os.access(folder, os.W_OK):
        raise ExportError(f"cannot write {path}: folder {folder} is not writable")


EXPORT_COLUMNS = (*CANDLE_FIELDS, "source")


def candle_table(
    arrays: CandleArrays, interval_min: int, names: Mapping[int, tuple[str, str]] | None = None,
    source: str | None = None,
) -> pa.Table:
    """Candles as an Arrow table: the CANDLES.md columns and types, then closed, origin and source."""
    import numpy as np
    import pyarrow as pa

    from livecli.core.sessions import exchange_of_token

    names = names or {}
    uniq, inv = np.unique(arrays.token, return_inverse=True)
    syms, exs = [], []
    for tok in uniq.tolist():
        s, e = names.get(tok, (str(tok), exchange_of_token(tok)))
        syms.append(s)
        exs.append(e)
    sym_dict = pa.DictionaryArray.from_arrays(pa.array(inv.astype(np.int32)), pa.array(syms))
    ex_dict = pa.DictionaryArray.from_arrays(pa.array(inv.astype(np.int32)), pa.array(exs))
    n = len(arrays)
    oi = pa.array(arrays.oi, mask=arrays.oi < 0, type=pa.int64())
    return pa.table(
        {
            "symbol": sym_dict.cast(pa.string()),
            "instrument_token": pa.array(arrays.token, pa.int64()),
            "exchange": ex_dict.cast(pa.string()),
            "interval": pa.array(np.full(n, f"{interval_min}min", dtype=object), pa.string())
            if n else pa.array([], pa.string()),
            "start": pa.array(arrays.start.astype("datetime64[s]"), pa.timestamp("s", tz=IST_TZ)),
            "open": pa.array(arrays.open, pa.float64()),
            "high": pa.array(arrays.high, pa.float64()),
            "low": pa.array(arrays.low, pa.float64()),
            "close": pa.array(arrays.close, pa.float64()),
            "volume": pa.array(arrays.volume, pa.int64()),
            "oi": oi,
            "ticks": pa.array(arrays.ticks, pa.int64()),
            "partial": pa.array(arrays.partial, pa.bool_()),
            "synthetic": pa.array(arrays.synthetic, pa.bool_()),
            "origin": _origins(arrays.origin),
            "closed": pa.array(arrays.closed, pa.bool_()),
            "source": _constant(source, n),
        }
    ).select(list(EXPORT_COLUMNS))


def _origins(codes: np.ndarray) -> pa.Array:
    """The origin codes as their names (live, history, repaired), dictionary-encoded."""
    import numpy as np
    import pyarrow as pa

    from livecli.core.candles import ORIGINS

    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32)), pa.array(list(ORIGINS))
    ).cast(pa.string())


def _constant(text: str | None, n: int) -> pa.Array:
    """One string repeated `n` times (null when None), without `n` Python strings."""
    import numpy as np
    import pyarrow as pa

    if text is None:
        return pa.nulls(n, pa.string())
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, np.int32)), pa.array([text])
    ).cast(pa.string())


def _csv_ready(table: pa.Table) -> pa.Table:
    """`start` as ISO 8601 text with +05:30 (Arrow's own CSV form lacks the T and the colon)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    local = pc.add(table.column("start").cast(pa.timestamp("s")),
                   pa.scalar(19_800, pa.duration("s")))
    text = pc.strftime(local, format="%Y-%m-%dT%H:%M:%S+05:30")
    return table.set_column(table.schema.get_field_index("start"), "start", text)


def write_candles(
    table: pa.Table,
    path: Path,
    fmt: str,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write `table` to `path` atomically; `progress(rows_done, rows_total)` as it goes."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    check_target(path, force)
    total = table.num_rows
    with atomic_file(path) as tmp:
        if fmt == "parquet":
            with pq.ParquetWriter(tmp, table.schema, compression="zstd") as w:
                for off in range(0, max(total, 1), CHUNK_ROWS):
                    w.write_table(table.slice(off, CHUNK_ROWS))
                    if progress:
                        progress(min(off + CHUNK_ROWS, total), total)
        else:
            ready = _csv_ready(table)
            opts = pacsv.WriteOptions(include_header=True, quoting_style="needed")
            with pacsv.CSVWriter(tmp, ready.schema, write_options=opts) as w:
                for off in range(0, max(total, 1), CHUNK_ROWS):
                    w.write_table(ready.slice(off, CHUNK_ROWS))
                    if progress:
                        progress(min(off + CHUNK_ROWS, total), total)
    return ExportResult(path, total, path.stat().st_size, fmt)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` that replaces it only when the block completes.

    On any failure (or Ctrl-C) the temporary file is removed: no partial file is ever left.
    """
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
