"""`livecli candles` from the store: derived intervals against a hand-written oracle, exports
read back with pandas, and every refusal through the real CLI.

The store is written by the real StoreWriter; the oracle groups the 1-minute candles by the
anchored bucket with plain datetime arithmetic (CANDLES.md rule 2), independent of derive(), and
judges `closed` by hand: every minute closed, and a closed minute of the same exchange and day
ending at or after the bucket's end (the recording got there).
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
from datetime import date, datetime, time
from pathlib import Path

import pytest

from livecli.core.candles import Candle
from livecli.core.intervals import parse_interval
from livecli.core.timeutil import IST, at_ist
from livecli.errors import IntervalError, SymbolError
from livecli.store.query import CandleQuery, TimeRange, candles_from_store
from livecli.store.writer import StoreWriter

INFY, NIFTY, CRUDE = 408065, 256265, 60000263  # NSE, index (segment 9), MCX (segment 7)
NAMES = {INFY: ("INFY", "NSE"), NIFTY: ("NIFTY 50", "NSE"), CRUDE: ("CRUDEOIL25JANFUT", "MCX")}
SESSIONS = {"NSE": (time(9, 15), time(15, 30)), "MCX": (time(9, 0), time(23, 30))}
DAYS = (date(2025, 1, 6), date(2025, 1, 7))


def make_candles(seed: int = 7) -> list[Candle]:
    rnd = random.Random(seed)
    out = []
    for tok, (_sym, ex) in NAMES.items():
        o_t, c_t = SESSIONS[ex]
        for d_i, d in enumerate(DAYS):
            t = int(at_ist(d, o_t))
            close_at = int(at_ist(d, c_t))
            price = rnd.uniform(100, 3000)
            first = True
            while t < close_at:
                if rnd.random() < 0.75:
                    o = round(price, 2)
                    c = round(price + rnd.uniform(-3, 3), 2)
                    hi = round(max(o, c) + rnd.uniform(0, 2), 2)
                    lo = round(min(o, c) - rnd.uniform(0, 2), 2)
                    oi = rnd.choice([None, rnd.randrange(10_000, 99_000)]) if tok == CRUDE else None
                    vol = 0 if tok == NIFTY else rnd.randrange(1, 5000)
                    out.append(Candle(tok, 1, t, o, hi, lo, c, vol, oi, rnd.randrange(1, 30),
                                      partial=first and d_i == 1 and tok == INFY, closed=True))
                    price = c
                    first = False
                t += 60
    # a synthetic (gap-filled) minute, left out of longer candles, and a still-forming minute
    # (stored at a stream's shutdown), which is in them but keeps them from being closed
    gap = int(at_ist(DAYS[0], time(9, 20)))
    forming = int(at_ist(DAYS[1], time(14, 2)))
    out = [c for c in out if not (c.instrument_token == INFY and c.start in (gap, forming))]
    out.append(Candle(INFY, 1, gap, 1.0, 1.0, 1.0, 1.0, 0, None, 0, synthetic=True, closed=True))
    out.append(Candle(INFY, 1, forming, 999.0, 999.5, 998.0, 999.25, 1, None, 1, closed=False))
    return out


def recording_clock(candles: list[Candle], exchange: str, day: date) -> float:
    """The end of the latest closed real minute of `exchange` on `day` (the recording's reach)."""
    ends = [c.start + 60 for c in candles
            if c.closed and not c.synthetic and NAMES[c.instrument_token][1] == exchange
            and datetime.fromtimestamp(c.start, IST).date() == day]
    return max(ends, default=float("-inf"))


def oracle(candles: list[Candle], minutes: int) -> dict[tuple[int, int], tuple]:
    """{(token, bucket start): (o, h, l, c, volume, oi, ticks, partial, closed)} by hand."""
    out: dict[tuple[int, int], list] = {}
    for c in sorted(candles, key=lambda c: (c.instrument_token, c.start)):
        if c.synthetic:
            continue
        local = datetime.fromtimestamp(c.start, IST)
        exchange = NAMES[c.instrument_token][1]
        open_t, close_t = SESSIONS[exchange]
        session_open = datetime.combine(local.date(), open_t, IST).timestamp()
        bucket = int(session_open + (c.start - session_open) // (minutes * 60) * minutes * 60)
        end = min(bucket + minutes * 60, datetime.combine(local.date(), close_t, IST).timestamp())
        over = c.closed if minutes == 1 else end <= recording_clock(candles, exchange, local.date())
        b = out.get((c.instrument_token, bucket))
        if b is None:
            out[(c.instrument_token, bucket)] = [c.open, c.high, c.low, c.close, c.volume, c.oi,
                                                 c.ticks, c.partial, c.closed and over]
        else:
            b[1] = max(b[1], c.high)
            b[2] = min(b[2], c.low)
            b[3] = c.close
            b[4] += c.volume
            b[5] = c.oi if c.oi is not None else b[5]
            b[6] += c.ticks
            b[7] = b[7] or c.partial
            b[8] = b[8] and c.closed
    return {k: tuple(v) for k, v in out.items()}


def as_dict(arrays) -> dict[tuple[int, int], tuple]:
    out = {}
    for i in range(len(arrays)):
        oi = int(arrays.oi[i])
        out[(int(arrays.token[i]), int(arrays.start[i]))] = (
            float(arrays.open[i]), float(arrays.high[i]), float(arrays.low[i]),
            float(arrays.close[i]), int(arrays.volume[i]), None if oi < 0 else oi,
            int(arrays.ticks[i]), bool(arrays.partial[i]), bool(arrays.closed[i]),
        )
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, list[Candle]]:
    db = tmp_path_factory.mktemp("store") / "candles.db"
    candles = make_candles()
    with StoreWriter(db, flush_interval_s=30) as w:
        w.register_instruments(NAMES)
        w.put_candles(candles[: len(candles) // 2])
        w.flush()
        w.put_candles(candles[len(candles) // 2:])
    return db, candles


def query(interval: str, symbols=(), start=None, end=None) -> CandleQuery:
    return CandleQuery(parse_interval(interval), list(symbols), TimeRange.parse(start, end))


def run_cli(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None,
            **kw) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(cwd),
        "LIVECLI_CONFIG_DIR": str(cwd / "cfg"), "LIVECLI_DATA_DIR": str(cwd / "data"),
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "livecli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, **kw)


# --- derivation ----------------------------------------------------------------------------
@pytest.mark.parametrize("minutes", [1, 3, 5, 10, 15, 30, 45, 60, 75, 375])
def test_derived_intervals_match_the_hand_oracle(store, minutes):
    db, candles = store
    res = candles_from_store(db, query(f"{minutes}min"))
    want = oracle(candles, minutes)
    assert as_dict(res.arrays) == want
    keys = list(zip(res.arrays.token.tolist(), res.arrays.start.tolist(), strict=True))
    assert keys == sorted(keys)
    assert not res.arrays.synthetic.any()
    assert res.arrays.closed.any() and (minutes == 375 or not res.arrays.closed.all())


def test_45min_anchors_at_each_exchange_open(store):
    db, _ = store
    res = candles_from_store(db, query("45min", ["INFY", "MCX:CRUDEOIL25JANFUT"]))
    by_tok: dict[int, list[str]] = {}
    for tok, st in zip(res.arrays.token.tolist(), res.arrays.start.tolist(), strict=True):
        by_tok.setdefault(tok, []).append(datetime.fromtimestamp(st, IST).strftime("%H:%M"))
    assert by_tok[INFY][:3] == ["09:15", "10:00", "10:45"] and by_tok[INFY][8] == "15:15"
    assert by_tok[CRUDE][:3] == ["09:00", "09:45", "10:30"]


def test_time_range_keeps_whole_candles(store):
    db, candles = store
    res = candles_from_store(db, query("45min", ["408065"], "2025-01-06T10:00", "2025-01-06T12:00"))
    lo, hi = at_ist(DAYS[0], time(10, 0)), at_ist(DAYS[0], time(12, 0))
    want = {k: v for k, v in oracle(candles, 45).items() if k[0] == INFY and lo <= k[1] <= hi}
    assert as_dict(res.arrays) == want and len(want) == 3  # 10:00, 10:45, 11:30 (to 12:14)


def test_partial_first_candle_carries_into_longer_intervals(store):
    db, _ = store
    res = candles_from_store(db, query("30min", ["INFY"], "2025-01-07", "2025-01-07"))
    assert res.arrays.partial[0] and not res.arrays.partial[1:].any()


def test_unknown_symbol_names_what_the_store_holds(store):
    db, _ = store
    with pytest.raises(SymbolError) as err:
        candles_from_store(db, query("5min", ["INFY", "TCS"]))
    msg = str(err.value)
    assert "TCS" in msg and "INFY" in msg and "NIFTY 50" in msg and "CRUDEOIL25JANFUT" in msg


def test_interval_must_fit_the_stored_exchanges(store):
    db, _ = store
    with pytest.raises(IntervalError, match="NSE session"):
        candles_from_store(db, query("400min"))
    res = candles_from_store(db, query("400min", ["CRUDEOIL25JANFUT"]))  # MCX runs 870 minutes
    assert len(res.arrays) == 2 * 3


def test_empty_result_says_what_the_store_has(store):
    db, _ = store
    res = candles_from_store(db, query("5min", ["INFY"], "2025-02-01", "2025-02-03"))
    assert len(res.arrays) == 0
    assert any(a.startswith("INFY (2025-01-06 09:15 to 2025-01-07 15:") for a in res.available)


# --- the real command -----------------------------------------------------------------------
def test_cli_table_45min(store, tmp_path):
    db, _ = store
    res = run_cli(["candles", "--db", str(db), "-i", "45min", "INFY"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "45min candles from" in res.stdout
    for hm in ("2025-01-07 09:15:00", "2025-01-07 10:00:00", "2025-01-07 15:15:00"):
        assert hm in res.stdout
    assert "partial" in res.stdout


def test_cli_export_csv_and_parquet_types(store, tmp_path):
    import numpy as np
    import pandas as pd

    db, candles = store
    want = oracle(candles, 5)
    for name in ("out.csv", "out.parquet"):
        res = run_cli(["candles", "--db", str(db), "-i", "5min", "-o", name], tmp_path)
        assert res.returncode == 0, res.stderr
        assert f"wrote {len(want):,} 5min candles" in res.stdout
    csv = pd.read_csv(tmp_path / "out.csv", dtype={"start": str})
    pq = pd.read_parquet(tmp_path / "out.parquet")
    assert len(csv) == len(pq) == len(want)
    assert csv["start"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+05:30$").all()
    assert isinstance(pq["start"].dtype, pd.DatetimeTZDtype)
    assert pq["start"].dt.tz is not None and pq["start"].iloc[0].utcoffset().total_seconds() == 19_800
    for frame in (csv, pq):
        for col in ("open", "high", "low", "close"):
            assert frame[col].dtype == np.float64
        assert frame["volume"].dtype == np.int64 and frame["ticks"].dtype == np.int64
        assert frame["partial"].dtype == bool and frame["synthetic"].dtype == bool
        assert set(frame["interval"]) == {"5min"}
        assert set(frame["symbol"]) == {"INFY", "NIFTY 50", "CRUDEOIL25JANFUT"}
    starts = pd.to_datetime(csv["start"], format="ISO8601")
    assert (starts.dt.tz_convert("UTC") == pq["start"].dt.tz_convert("UTC")).all()
    got = {
        (int(r.instrument_token), int(r.start.timestamp())): (
            r.open, r.high, r.low, r.close, int(r.volume), None if pd.isna(r.oi) else int(r.oi),
            int(r.ticks), bool(r.partial), bool(r.closed),
        )
        for r in pq.itertuples()
    }
    assert got == want
    for frame in (csv, pq):
        assert frame["closed"].dtype == bool
        assert frame["source"].isna().all()  # no stream session wrote this store


def test_cli_refusals(store, tmp_path):
    db, _ = store
    res = run_cli(["candles", "--db", str(db), "TCS"], tmp_path)
    assert res.returncode == 7 and "TCS not in the store" in res.stderr and "INFY" in res.stderr
    res = run_cli(["candles", "--db", str(db), "--from", "2025-01-07", "--to", "2025-01-06"],
                  tmp_path)
    assert res.returncode == 2 and "is after --to" in res.stderr
    res = run_cli(["candles", "--db", str(db), "-i", "400min"], tmp_path)
    assert res.returncode == 3 and "longer than the NSE session" in res.stderr
    # A request that matches nothing is exit 11 (it was 0), naming what the store holds.
    res = run_cli(["candles", "--db", str(db), "--from", "2025-03-01", "INFY"], tmp_path)
    assert res.returncode == 11, (res.stdout, res.stderr)
    assert res.stdout == "" and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith("livecli: error: no 1min candles in")
    assert "it holds INFY (2025-01-06 09:15 to 2025-01-07 15:" in res.stderr
    assert "NIFTY" not in res.stderr
    res = run_cli(["candles", "--db", str(db), "--from", "2030-01-01", "--export"], tmp_path)
    assert res.returncode == 11 and "NIFTY 50 (2025-01-06" in res.stderr, res.stderr
    assert not list(tmp_path.glob("candles_*")), "nothing to export: no empty file either"


def test_cli_export_never_leaves_a_partial_file(store, tmp_path):
    db, _ = store
    res = run_cli(["candles", "--db", str(db), "-o", "missing/out.csv"], tmp_path)
    assert res.returncode == 5 and "does not exist" in res.stderr
    target = tmp_path / "out.csv"
    target.write_text("keep me")
    res = run_cli(["candles", "--db", str(db), "-o", "out.csv"], tmp_path)
    assert res.returncode == 6 and "--force" in res.stderr and target.read_text() == "keep me"

    def small_files() -> None:  # a real EFBIG mid-write: files may not grow past 48 KB
        resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, resource.RLIM_INFINITY))

    res = run_cli(["candles", "--db", str(db), "-o", "out.csv", "--force"], tmp_path,
                  preexec_fn=small_files)
    assert res.returncode == 5, (res.stdout, res.stderr)
    assert len(res.stderr.strip().splitlines()) == 1 and "cannot write" in res.stderr
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["out.csv"]
    res = run_cli(["candles", "--db", str(db), "-o", "out.csv", "--force"], tmp_path)
    assert res.returncode == 0 and target.stat().st_size > 48 * 1024


def test_cli_default_store_and_config_store(store, tmp_path):
    db, _ = store
    (tmp_path / "data").mkdir()
    # With no Kite credentials a plain `stream` writes the simulated market's own store, so
    # that is what `candles` reads by default; with any Kite credential, Kite's store.
    (tmp_path / "data" / "livecli-sim.db").write_bytes(db.read_bytes())
    res = run_cli(["candles", "-i", "60min", "NIFTY 50", "-n", "3"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert str(tmp_path / "data" / "livecli-sim.db") in res.stdout.replace("\n", "")
    res = run_cli(["candles", "-i", "60min", "NIFTY 50", "-n", "3"], tmp_path,
                  extra_env={"KITE_API_KEY": "somekey"})
    assert res.returncode == 11 and str(tmp_path / "data" / "livecli.db") in res.stderr, res.stderr
    (tmp_path / "data" / "livecli.db").write_bytes(db.read_bytes())
    res = run_cli(["candles", "-i", "60min", "NIFTY 50", "-n", "3"], tmp_path,
                  extra_env={"KITE_API_KEY": "somekey"})
    assert res.returncode == 0, res.stderr
    assert str(tmp_path / "data" / "livecli.db") in res.stdout.replace("\n", "")
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text(f'[store]\npath = "{db}"\n')
    res = run_cli(["candles", "--config", str(cfg), "-i", "60min", "NIFTY 50", "-n", "3"], tmp_path)
    assert res.returncode == 0 and "NIFTY 50" in res.stdout, res.stderr
    res = run_cli(["candles", "--db", str(tmp_path / "nothing.db")], tmp_path)
    assert res.returncode == 11 and "no candle store" in res.stderr


def test_exports_and_the_table_tell_forming_candles_from_closed_ones(tmp_path):
    import pandas as pd

    tcs = 2953217
    db = tmp_path / "stopped.db"
    day = DAYS[0]

    def minute(tok: int, hm: str, closed: bool = True) -> Candle:
        t = int(at_ist(day, time.fromisoformat(hm)))
        return Candle(tok, 1, t, 10.0, 11.0, 9.0, 10.5, 100, None, 4, closed=closed)

    with StoreWriter(db) as w:
        w.register_instruments({INFY: ("INFY", "NSE"), tcs: ("TCS", "NSE")})
        w.begin_session({"source": "SIMULATED", "mode": "full"})
        # INFY recorded 09:15 to 09:20, then the stream stopped at 09:21:30 (that minute forming);
        # TCS, illiquid, traded once.
        w.put_candles([minute(INFY, f"09:{m}") for m in range(15, 21)])
        w.put_candles([minute(INFY, "09:21", closed=False), minute(tcs, "09:16")])
    def export(*args: str, fmt: str = "csv") -> pd.DataFrame:
        """`--export` with the default file name (in a folder of its own), read back."""
        cwd = tmp_path / f"export-{len(list(tmp_path.glob('export-*')))}"
        cwd.mkdir()
        res = run_cli(["candles", "--db", str(db), *args, "--format", fmt, "--export"], cwd)
        assert res.returncode == 0, res.stderr
        (out,) = cwd.glob(f"candles_*.{fmt}")
        return pd.read_csv(out, dtype={"start": str}) if fmt == "csv" else pd.read_parquet(out)

    df = export("-i", "5min")
    got = {(r.symbol, r.start[11:16]): (bool(r.closed), int(r.volume)) for r in df.itertuples()}
    # The 09:20 candle holds two minutes of data: before, nothing told it from a complete one.
    assert got == {("INFY", "09:15"): (True, 500), ("INFY", "09:20"): (False, 200),
                   ("TCS", "09:15"): (True, 100)}
    assert set(df["source"]) == {"SIMULATED"}
    res = run_cli(["candles", "--db", str(db), "-i", "5min"], tmp_path)
    assert res.returncode == 0, res.stderr
    rows = [ln for ln in res.stdout.splitlines() if "2025-01-06 09:" in ln]
    assert [("forming" in ln) for ln in rows] == [False, True, False], res.stdout
    assert "(SIMULATED)" in " ".join(res.stdout.split())
    # TCS alone: whether its interval is over is still for the whole store to say.
    assert export("-i", "5min", "TCS", fmt="parquet")["closed"].tolist() == [True]
    one = export()
    assert len(one) == 8 and one.loc[~one["closed"], "start"].str[11:16].tolist() == ["09:21"]
