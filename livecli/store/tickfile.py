"""Tick files: the CSV or Parquet recordings that `livecli candles --ticks` rebuilds from.

One format for both directions: `livecli stream --record` writes these columns and the rebuild
reads them, so a recording always rebuilds into the candles the live session made.

Columns: `instrument_token`, `exchange_timestamp` (ISO 8601 with offset, or epoch seconds; a
time without offset is taken as IST, never as the host's zone) and `last_price` are required;
`volume_traded` (empty for indices), `tradingsymbol`, `exchange` (default NSE), `oi`, `high`
and `low` (the day's, as the tick reported them) are optional. Rows whose values cannot be used
are skipped and counted, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from livecli.errors import InputFileError

if TYPE_CHECKING:
    import pandas as pd

    from livecli.core.ticks import TickColumns

REQUIRED = ("instrument_token", "exchange_timestamp", "last_price")
OPTIONAL = ("volume_traded", "tradingsymbol", "exchange", "oi", "high", "low")
TICK_COLUMNS = (*REQUIRED, *OPTIONAL)


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
            return pd.read_parquet(path)
        return pd.read_csv(
            path,
            dtype={"exchange_timestamp": str, "tradingsymbol": str, "exchange": str},
            keep_default_na=True,
            skipinitialspace=True,
        )
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
    except Exception as exc:  # a corrupt file: say so in one line
        raise InputFileError(f"{path}: cannot read it as {fmt}: {exc}") from None


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
    price = pd.to_numeric(df["last_price"], errors="coerce")
    bad_token = token.isna() | (token <= 0) | (token != token.round())
    bad_time = ts.isna()
    bad_price = price.isna() | (price <= 0) | ~np.isfinite(price)
    volume = (
        pd.to_numeric(df["volume_traded"], errors="coerce")
        if "volume_traded" in df.columns else pd.Series(np.nan, index=df.index)
    )
    bad_volume = volume.notna() & ((volume < 0) | (volume != volume.round()))
    for name, mask in (("instrument_token", bad_token), ("exchange_timestamp", bad_time),
                       ("last_price", bad_price), ("volume_traded", bad_volume)):
        if mask.any():
            reasons[name] = int(mask.sum())
    usable = ~(bad_token | bad_time | bad_price | bad_volume)
    skipped = int((~usable).sum())

    def opt_float(col: str) -> np.ndarray:
        if col not in df.columns:
            return np.full(int(usable.sum()), np.nan)
        return pd.to_numeric(df[col], errors="coerce")[usable].to_numpy(np.float64)

    oi = (
        pd.to_numeric(df["oi"], errors="coerce")[usable]
        if "oi" in df.columns else pd.Series(np.nan, index=df.index)[usable]
    )
    tokens = token[usable].to_numpy(np.int64)
    cols = TickColumns(
        tokens,
        ts[usable].to_numpy(np.float64),
        price[usable].to_numpy(np.float64),
        volume[usable].fillna(-1).to_numpy(np.int64),
        opt_float("high"),
        opt_float("low"),
        oi.fillna(-1).to_numpy(np.int64),
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
