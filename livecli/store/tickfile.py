"""Tick files: the CSV or Parquet recordings that `livecli candles --ticks` rebuilds from.

One format for both directions: `livecli stream --record` writes these columns and the rebuild
reads them, so a recording always rebuilds into the candles the live session made.

Columns: `instrument_token`, `exchange_timestamp` (ISO 8601 with offset, or epoch seconds; a
time without offset is taken as IST, never as the host's zone) and `last_price` are required;
`volume_traded` (empty for indices), `tradingsymbol`, `exchange` (default NSE), `oi`, `high`
and `low` (the day's, as the tick reported them) are optional. Rows whose values cannot be used
(an instrument token that is not a whole number from 1 to 2^32 - 1, a price that is not a
positive number, a negative or fractional volume, ...) are skipped and counted, never fatal.

What says the file itself is wrong is an InputFileError naming the fix: a missing or repeated
column, and times outside 1970-2100, which are a unit mistake (epoch milliseconds for seconds)
or a damaged file rather than a bad row, since every candle rule counts in IST days of real
time. A file with no usable row at all is NoDataError: there is nothing to rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livecli.core.text import printable
from livecli.errors import InputFileError, NoDataError

if TYPE_CHECKING:
    import pandas as pd

    from livecli.core.ticks import TickColumns

REQUIRED = ("instrument_token", "exchange_timestamp", "last_price")
OPTIONAL = ("volume_traded", "tradingsymbol", "exchange", "oi", "high", "low")
TICK_COLUMNS = (*REQUIRED, *OPTIONAL)
# Kite's instrument tokens are unsigned 32-bit numbers (the ticker packs them in 4 bytes).
MAX_TOKEN = 2**32 - 1
# Tick times accepted: 1970-01-01 00:00 UTC up to the end of 2100 (IST). Beyond that a time is
# a unit mistake (milliseconds for seconds) or a damaged file, never a real tick.
MIN_EPOCH_S = 0.0
MAX_EPOCH_S = 4_133_961_000.0  # 2101-01-01T00:00:00+05:30
# The rebuild (core/batch.py) holds minute starts as 32-bit offsets from the file's first one,
# so one file may span at most 2^31 seconds (68 years): more is refused, not wrapped around.
MAX_SPAN_S = 2**31 - 1
# Counts (volume, oi) above this cannot be held exactly in the float columns they pass through.
MAX_COUNT = 2**53


@dataclass(slots=True)
class TickFile:
    """Ticks read from a file, in file order, with what had to be skipped."""

    path: Path
    columns: TickColumns
    names: dict[int, tuple[str, str]] = field(default_factory=dict)
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.columns)


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt") or suffix.endswith("gz"):
        return "csv"
    raise InputFileError(f"{path}: unknown tick file type {suffix!r}: use a .csv or .parquet file")


def _read_frame(path: Path) -> pd.DataFrame:
    import pandas as pd

    fmt = _format_of(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            # pyarrow cannot select from a file with a repeated name: check before reading.
            _refuse_repeated(path, [n.strip() for n in pq.read_schema(path).names])
            return pd.read_parquet(path)
        return pd.read_csv(
            path,
            dtype={"exchange_timestamp": str, "tradingsymbol": str, "exchange": str},
            keep_default_na=True,
            skipinitialspace=True,
        )
    except InputFileError:
        raise
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such tick file: check the path") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a folder, not a tick file") from None
    except PermissionError:
        raise InputFileError(f"{path}: not readable: check its permissions") from None
    except pd.errors.EmptyDataError:
        raise InputFileError(
            f"{path}: the file is empty: it needs a header with {', '.join(REQUIRED)}"
        ) from None
    except Exception as exc:  # a corrupt file: say so in one line (readers' messages are not)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(f"{path}: cannot read it as {fmt}: {printable(first, 200)}") from None


def _check_csv_columns(path: Path, df: pd.DataFrame) -> None:
    """Refuse repeated column names: which of two `last_price` columns is meant is a guess.

    pandas renames a repeated CSV header (`last_price.1`), so the header line is read as data.
    """
    import pandas as pd

    names = [str(c).strip() for c in df.columns]
    try:
        head = pd.read_csv(path, header=None, nrows=1, dtype=str, skipinitialspace=True)
        names = [str(c).strip() for c in head.iloc[0].tolist()]
    except Exception:  # the frame was read; a header we cannot re-read is not repeated
        pass
    _refuse_repeated(path, names)


def _refuse_repeated(path: Path, names: list[str]) -> None:
    from collections import Counter

    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        shown = ", ".join(f"'{printable(n, 40)}'" for n in repeated)
        raise InputFileError(
            f"{path}: column {shown} appears more than once: keep one column of each name"
        )


def _unit_hint(value: float) -> str:
    """`: it looks like epoch milliseconds (divide by 1000)` for a time in a smaller unit."""
    for unit, factor in (("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9)):
        if MIN_EPOCH_S <= value / factor < MAX_EPOCH_S:
            return f": it looks like epoch {unit}; write epoch seconds (divide by {factor:,.0f})"
    return ""


def _is_number_text(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _check_times(path: Path, raw: pd.Series, ts: pd.Series) -> None:
    """Refuse times outside 1970-2100 (see MAX_EPOCH_S), naming the first one and its row."""
    import pandas as pd

    out = ts.notna() & ((ts < MIN_EPOCH_S) | (ts >= MAX_EPOCH_S))
    if not out.any():
        if ts.notna().any() and float(ts.max() - ts.min()) > MAX_SPAN_S:
            first, last = raw[ts.idxmin()], raw[ts.idxmax()]
            raise InputFileError(
                f"{path}: its times span more than 68 years ({printable(str(first), 40)} to "
                f"{printable(str(last), 40)}); split it into one file per recording"
            )
        return
    first = out.idxmax()
    value, n = float(ts[first]), int(out.sum())
    text = printable(str(raw[first]), 40)
    also = f" (and {n - 1} more row(s))" if n > 1 else ""
    numeric = pd.api.types.is_number(raw[first]) or _is_number_text(raw[first])
    hint = (_unit_hint(value) if numeric else "") or (
        "; fix that time or remove the row (times are ISO 8601 such as "
        "2025-01-06T09:15:00+05:30, or epoch seconds)"
    )
    raise InputFileError(
        f"{path}: exchange_timestamp {text} in data row {int(first) + 1}{also} is outside the "
        f"years 1970-2100{hint}"
    )


def _epoch_seconds(values: pd.Series) -> pd.Series:
    """Epoch seconds from numbers or ISO 8601 text; NaN where neither."""
    import pandas as pd

    epoch0 = pd.Timestamp(0, tz="UTC")
    second = pd.Timedelta(seconds=1)
    if pd.api.types.is_datetime64_any_dtype(values):
        s = values if values.dt.tz is not None else values.dt.tz_localize("Asia/Kolkata")
        return (s.dt.tz_convert("UTC") - epoch0) / second
    num = pd.to_numeric(values, errors="coerce").astype("float64")
    text_rows = num.isna() & values.notna()
    if text_rows.any():
        text = values[text_rows].astype(str).str.strip()
        has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
        aware = pd.to_datetime(text[has_offset], format="ISO8601", errors="coerce", utc=True)
        naive = pd.to_datetime(text[~has_offset], format="ISO8601", errors="coerce")
        if len(naive):
            naive = naive.dt.tz_localize("Asia/Kolkata").dt.tz_convert("UTC")
        num[aware.index] = (aware - epoch0) / second
        if len(naive):
            num[naive.index] = (naive - epoch0) / second
    return num


def default_exchange(token: int) -> str:
    """The exchange a tick without one belongs to: the one that lists its token."""
    from livecli.core.sessions import exchange_of_token

    return exchange_of_token(token)


def read_tick_file(path: str | Path) -> TickFile:
    """Read a CSV or Parquet tick file; raise InputFileError for a missing file or column."""
    import numpy as np
    import pandas as pd

    from livecli.core.ticks import TickColumns

    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such tick file: check the path")
    df = _read_frame(p)
    if _format_of(p) == "csv":
        _check_csv_columns(p, df)
    df.columns = [str(c).strip() for c in df.columns]
    for col in REQUIRED:
        if col not in df.columns:
            raise InputFileError(
                f"{p}: missing required column {col!r}: a tick file needs "
                f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)})"
            )
    reasons: dict[str, int] = {}
    token = pd.to_numeric(df["instrument_token"], errors="coerce")
    ts = _epoch_seconds(df["exchange_timestamp"])
    _check_times(p, df["exchange_timestamp"], ts)
    price = pd.to_numeric(df["last_price"], errors="coerce")
    bad_token = token.isna() | (token <= 0) | (token > MAX_TOKEN) | (token != token.round())
    bad_time = ts.isna()
    bad_price = price.isna() | (price <= 0) | ~np.isfinite(price)

    def count(col: str) -> pd.Series:
        return (
            pd.to_numeric(df[col], errors="coerce")
            if col in df.columns else pd.Series(np.nan, index=df.index)
        )

    def bad_count(values: pd.Series) -> pd.Series:  # given, but not a whole number >= 0
        return values.notna() & ((values < 0) | (values > MAX_COUNT) | (values != values.round()))

    volume, oi = count("volume_traded"), count("oi")
    bad_volume, bad_oi = bad_count(volume), bad_count(oi)
    for name, mask in (("instrument_token", bad_token), ("exchange_timestamp", bad_time),
                       ("last_price", bad_price), ("volume_traded", bad_volume),
                       ("oi", bad_oi)):
        if mask.any():
            reasons[name] = int(mask.sum())
    usable = ~(bad_token | bad_time | bad_price | bad_volume | bad_oi)
    skipped = int((~usable).sum())
    if not usable.any():
        why = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items()))
        raise NoDataError(
            f"{p}: no usable tick rows"
            + (f" ({skipped} row(s) with unusable values: {why})" if skipped else " (no rows)")
            + f"; a tick file needs {', '.join(REQUIRED)} in every row"
        )

    def opt_price(col: str) -> Any:  # a float64 array (TickColumns takes any float sequence)
        # The day's high/low are optional hints: an infinite one is unknown, not a bad row.
        # (Finite values are kept as recorded, so a rebuild sees what the live session saw.)
        values = count(col)[usable].to_numpy(np.float64, copy=True)
        values[~np.isfinite(values)] = np.nan
        return values

    tokens = token[usable].to_numpy(np.int64)
    cols = TickColumns(
        tokens,
        ts[usable].to_numpy(np.float64),
        price[usable].to_numpy(np.float64),
        volume[usable].fillna(-1).to_numpy(np.int64),
        opt_price("high"),
        opt_price("low"),
        oi[usable].fillna(-1).to_numpy(np.int64),
    )
    names: dict[int, tuple[str, str]] = {}
    if "tradingsymbol" in df.columns or "exchange" in df.columns:
        sym = df["tradingsymbol"] if "tradingsymbol" in df.columns else pd.Series("", index=df.index)
        exch = df["exchange"] if "exchange" in df.columns else pd.Series("NSE", index=df.index)
        pairs = pd.DataFrame({"t": token[usable], "s": sym[usable], "e": exch[usable]})
        for tok, s, e in pairs.drop_duplicates("t", keep="last").itertuples(index=False):
            s = "" if pd.isna(s) else str(s).strip()
            e = default_exchange(int(tok)) if pd.isna(e) or not str(e).strip() else str(e).strip().upper()
            names[int(tok)] = (s or str(int(tok)), e)
    else:
        for tok in np.unique(tokens).tolist():
            names[tok] = (str(tok), default_exchange(tok))
    return TickFile(p, cols, names, skipped, reasons)


def tick_frame(rows: list[dict]) -> pd.DataFrame:
    """Recorded ticks (dicts with the tick-file columns) as a frame in the file's column order."""
    import pandas as pd

    return pd.DataFrame(rows, columns=list(TICK_COLUMNS))
