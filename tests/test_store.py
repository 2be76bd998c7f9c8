"""The SQLite candle store: batched background writes, upserts, crash safety, refusing strangers,
one writer per store, one source per store, and giving up on a store that cannot be written.

Everything here runs against real SQLite files in tmp_path; the crash test SIGKILLs a real
writer process, and the error cases run the real CLI in a subprocess. A store that cannot be
written is made so with SQLite's own `max_page_count` on the writer's connection: the real
"database or disk is full" path, which works as root (the real CLI under a file-size limit is
in test_store_ownership.py).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from livecli.core.candles import Candle
from livecli.errors import NoDataError, StoreError
from livecli.store import writer as writer_module
from livecli.store.meta import MIXED, store_source
from livecli.store.owner import lock_path
from livecli.store.reader import CandleStoreReader
from livecli.store.schema import check_writable
from livecli.store.writer import GIVE_UP_S, StoreWriter

T0 = 1_736_135_100  # 2025-01-06 09:15 IST
INFY, TCS = 408065, 2953217


def candle(tok: int, i: int, *, closed: bool = True, price: float = 100.0, **kw) -> Candle:
    p = price + i
    return Candle(tok, 1, T0 + 60 * i, p, p + 1, p - 1, p + 0.5, 10 + i, kw.pop("oi", None), 3,
                  closed=closed, **kw)


def count(path: Path, sql: str = "SELECT COUNT(*) FROM candles") -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchone()[0]


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(cwd),
        "LIVECLI_CONFIG_DIR": str(cwd / "cfg"), "LIVECLI_DATA_DIR": str(cwd / "data"),
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([sys.executable, "-m", "livecli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_puts_are_batched_into_one_transaction_per_flush(tmp_path):
    db = tmp_path / "s.db"
    w = StoreWriter(db, flush_interval_s=30)  # only explicit flushes write
    try:
        for i in range(50):
            w.put_candles([candle(INFY, i * 10 + k) for k in range(10)])
        assert count(db) == 0, "puts must not touch the disk themselves"
        assert w.pending == 500
        assert w.flush(timeout=10)
        assert w.flushes == 1 and count(db) == 500 and w.candles_stored == 500
        with CandleStoreReader(db) as r:
            assert r.symbols() == {INFY: (str(INFY), "NSE")}  # registered from the token
    finally:
        w.stop()


def test_reader_reads_while_writer_writes(tmp_path):
    db = tmp_path / "s.db"
    w = StoreWriter(db, flush_interval_s=0.02)
    w.register_instruments({INFY: ("INFY", "NSE"), TCS: ("TCS", "NSE")})
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read_loop() -> None:
        try:
            with CandleStoreReader(db) as r:
                deadline = time.monotonic() + 20
                while not done.is_set() and time.monotonic() < deadline:
                    arrays = r.one_minute()
                    seen.append(len(arrays))
                    # A reader only ever sees whole flushes: both symbols advance together.
                    assert len(arrays) % 2 == 0
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for i in range(300):
            w.put_candles([candle(INFY, i), candle(TCS, i)])
            if i % 30 == 0:
                time.sleep(0.01)  # let several flushes happen while the reader reads
        assert w.flush(timeout=10)
        deadline = time.monotonic() + 10
        while (not seen or seen[-1] < 600) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        done.set()
        reader.join(10)
        w.stop()
    assert not errors, errors
    assert seen == sorted(seen), "a reader never sees rows disappear"
    assert seen[-1] == 600 and len(set(seen)) > 2, "the reader saw the writes land in batches"


def test_forming_candle_is_replaced_when_closed_and_never_the_reverse(tmp_path):
    db = tmp_path / "s.db"
    with StoreWriter(db, flush_interval_s=30) as w:
        w.put_candles([candle(INFY, 0, closed=False, price=50.0)])
        assert w.flush()
        with CandleStoreReader(db) as r:
            assert len(r.one_minute()) == 0  # forming candles are not served as candles
            forming = r.candles(1, closed_only=False)
            assert len(forming) == 1 and forming.open[0] == 50.0
        assert w.candles_stored == 0
        w.put_candles([candle(INFY, 0, price=60.0, oi=1200)])
        assert w.flush()
        w.put_candles([candle(INFY, 0, closed=False, price=70.0)])  # a stale shutdown write
        assert w.flush()
    with CandleStoreReader(db) as r:
        got = r.one_minute()
    assert len(got) == 1 and got.open[0] == 60.0 and got.oi[0] == 1200
    assert count(db) == 1
    assert count(db, "SELECT closed FROM candles") == 1


def test_a_partial_candle_never_replaces_a_complete_one(tmp_path):
    db = tmp_path / "s.db"
    with StoreWriter(db, flush_interval_s=30) as w:
        w.put_candles([candle(INFY, 0, price=60.0), candle(INFY, 1, price=70.0, partial=True)])
        assert w.flush()
        # A second session that began mid-minute: its candles of those minutes are partial.
        w.put_candles([candle(INFY, 0, price=10.0, partial=True)])
        w.put_candles([candle(INFY, 0, price=11.0, partial=True, closed=False)])
        assert w.flush()
        with CandleStoreReader(db) as r:
            got = r.one_minute()
        assert got.open.tolist() == [60.0, 71.0] and not got.partial[0] and got.partial[1]
        # A complete candle does replace a partial one.
        w.put_candles([candle(INFY, 1, price=80.0)])
        assert w.flush()
    with CandleStoreReader(db) as r:
        got = r.one_minute()
    assert got.open.tolist() == [60.0, 81.0] and not got.partial.any()


def test_stop_flushes_everything_and_ends_the_session_cleanly(tmp_path):
    db = tmp_path / "s.db"
    w = StoreWriter(db, flush_interval_s=60)
    w.register_instruments({INFY: ("INFY", "NSE")})
    sid = w.begin_session({"source": "SIMULATED", "mode": "full", "intervals": ["1min", "5min"]})
    w.put_candles([candle(INFY, i, symbol="INFY", exchange="NSE") for i in range(20)])
    w.put_ticks([(INFY, T0 + 1.5, 100.0, 10, None, None, None, T0 + 1.6),
                 {"instrument_token": INFY, "exchange_timestamp": T0 + 2.0, "last_price": 100.5}])
    w.put_status({"state": "connected", "reconnects": 2, "ticks_per_s": 3.5, "frames": 9})
    started = time.monotonic()
    assert w.stop(timeout=10)
    assert time.monotonic() - started < 5, "stop must not wait for the flush interval"
    assert count(db) == 20
    with sqlite3.connect(db) as conn:
        ticks = conn.execute("SELECT instrument_token, exchange_timestamp, last_price, "
                             "volume_traded, received_at FROM ticks ORDER BY exchange_timestamp").fetchall()
    assert ticks == [(INFY, T0 + 1.5, 100.0, 10, T0 + 1.6), (INFY, T0 + 2.0, 100.5, None, None)]
    with CandleStoreReader(db) as r:
        s = r.latest_session()
        assert r.symbols() == {INFY: ("INFY", "NSE")}
        assert r.intervals() == [1]
    assert s["id"] == sid and s["ended_at"] is not None and s["clean_stop"] == 1
    assert s["state"] == "stopped" and s["reconnects"] == 2 and s["candles_stored"] == 20
    assert s["source"] == "SIMULATED" and s["intervals"] == ["1min", "5min"]
    assert s["status"] == {"frames": 9}
    assert w.stop() is True  # idempotent


def test_write_error_is_recorded_not_raised_and_the_batch_retried(tmp_path):
    db = tmp_path / "s.db"
    w = StoreWriter(db, flush_interval_s=30)
    try:
        w.put_candles([candle(INFY, 0)])
        assert w.flush()
        with w._db_lock:  # a real "database or disk is full": cap the file at its current size
            pages = w._conn.execute("PRAGMA page_count").fetchone()[0]
            w._conn.execute(f"PRAGMA max_page_count={pages}")
        w.put_candles([candle(INFY + 256 * k, i) for k in range(1, 40) for i in range(100)])
        assert not w.flush(timeout=10)
        assert w.error and "full" in w.error and w.failures == 1
        t = time.perf_counter()
        w.put_candles([candle(INFY, 1)])  # the tick path is unaffected
        assert time.perf_counter() - t < 0.5
        with w._db_lock:
            w._conn.execute("PRAGMA max_page_count=1073741823")
        assert w.flush(timeout=10), w.error
        assert w.error is None
    finally:
        w.stop()
    assert count(db) == 1 + 39 * 100 + 1



def test_a_status_table_whose_write_failed_is_written_when_the_store_recovers(tmp_path):
    """The per-symbol table of a failed write stays the newest to be written, even when the
    status after it comes without one (a large session between its table refreshes)."""
    from livecli.core.status import LiveStatus, SymbolStatus

    db = tmp_path / "s.db"
    w = StoreWriter(db, flush_interval_s=30)
    try:
        w.begin_session({"source": "SIMULATED", "mode": "full", "intervals": ["1min"]})
        assert w.flush()
        with w._db_lock:  # a real "database or disk is full", as above
            pages = w._conn.execute("PRAGMA page_count").fetchone()[0]
            w._conn.execute(f"PRAGMA max_page_count={pages}")
        w.put_candles([candle(INFY + 256 * k, i) for k in range(1, 40) for i in range(100)])
        table = tuple(SymbolStatus(f"S{i}", "NSE", i, 100.0 + i, None, None, i)
                      for i in range(200))
        w.put_status(LiveStatus(state="connected", ticks=10, symbols=table))
        assert not w.flush(timeout=10)
        w.put_status(LiveStatus(state="connected", ticks=20), symbols=False)
        with w._db_lock:
            w._conn.execute("PRAGMA max_page_count=1073741823")
        assert w.flush(timeout=10), w.error
    finally:
        w.stop()
    con = sqlite3.connect(db)
    ticks, per_symbol = con.execute("SELECT ticks, per_symbol FROM sessions").fetchone()
    con.close()
    assert ticks == 20 and json.loads(per_symbol)["ticks"] == list(range(200))

WRITER_SCRIPT = textwrap.dedent("""
    import sys, time
    from livecli.core.candles import Candle
    from livecli.store.writer import StoreWriter
    w = StoreWriter(sys.argv[1], flush_interval_s=0.02)
    w.register_instruments({408065: ("INFY", "NSE")})
    w.begin_session({"source": "SIMULATED", "mode": "full", "intervals": ["1min"]})
    w.put_status({"state": "connected"})
    i = 0
    while True:
        w.put_candles([Candle(408065, 1, 1736135100 + 60 * i, 1.0, 2.0, 0.5, 1.5, 5, None, 1,
                              closed=True)])
        w.put_ticks([(408065, 1736135100 + i, 1.0, i, None, None, None, time.time())])
        i += 1
        if i == 50:
            w.flush()
            print("ready", flush=True)
        time.sleep(0.0005)
""")


def test_killed_writer_leaves_a_store_that_opens_cleanly(tmp_path):
    db = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(db)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        while count(db) < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(StoreError, match=rf"being written by .*pid {proc.pid}\b"):
            StoreWriter(db)  # the store is owned while its writer lives
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    assert (tmp_path / "s.db-wal").exists()  # killed with the log still there
    with CandleStoreReader(db) as r:
        rows = r.one_minute()
        session = r.latest_session()
    assert len(rows) >= 200
    assert session["ended_at"] is None and session["pid"] == proc.pid
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    res = run_cli(["status", "--json", "--db", str(db)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert '"state": "stopped-unexpectedly"' in res.stdout
    # The killed writer's lock died with it (its file stays, unlocked): a new writer starts at once.
    assert lock_path(db).exists()
    t = time.monotonic()
    with StoreWriter(db) as w:
        assert time.monotonic() - t < 2
        w.put_candles([candle(INFY, 10_000)])
    assert count(db) == len(rows) + 1
    assert not lock_path(db).exists(), "a clean stop removes the lock file"


def test_check_writable_refuses_missing_folder_unless_it_is_the_default(tmp_path):
    with pytest.raises(StoreError, match=r"folder .* does not exist"):
        check_writable(tmp_path / "nope" / "s.db")
    assert not (tmp_path / "nope").exists()
    assert check_writable(tmp_path / "a" / "b" / "s.db", create_folder=True)
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        check_writable(tmp_path / "file" / "s.db")
    with pytest.raises(StoreError, match="is a folder"):
        check_writable(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        StoreWriter(tmp_path / "nope" / "s.db")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_check_writable_refuses_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="not writable"):
            check_writable(ro / "s.db")
    finally:
        ro.chmod(0o700)


def test_writer_refuses_other_databases_and_leaves_them_alone(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    before = other.read_bytes()
    with pytest.raises(StoreError, match="is not a livecli store"):
        StoreWriter(other)
    assert other.read_bytes() == before
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all\n" * 200)
    with pytest.raises(StoreError, match="is not a livecli store"):
        StoreWriter(garbage)
    assert garbage.read_bytes() == b"this is not sqlite at all\n" * 200
    with pytest.raises(NoDataError, match="no candle store"):
        CandleStoreReader(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists(), "reading must never create a store"


def test_a_newer_schema_is_refused(tmp_path):
    db = tmp_path / "s.db"
    StoreWriter(db).stop()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer livecli"):
        CandleStoreReader(db)


@pytest.mark.parametrize("command", [["candles"], ["status"]])
def test_cli_store_errors_are_one_line_with_distinct_exit_codes(tmp_path, command):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\x01garbage" * 500)
    cases = [(other, 10, "is not a livecli store"), (garbage, 10, "is not a livecli store"),
             (tmp_path / "missing.db", 11, "no candle store at")]
    for path, code, text in cases:
        res = run_cli([*command, "--db", str(path)], tmp_path)
        assert res.returncode == code, (path, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and text in lines[0] and str(path) in lines[0], res.stderr
        assert "Traceback" not in res.stderr and res.stdout == ""
    assert not (tmp_path / "missing.db").exists()


def test_numpy_values_from_decoded_ticks_are_stored_as_numbers(tmp_path):
    import numpy as np

    db = tmp_path / "s.db"
    tokens = np.array([INFY, TCS], np.int64)
    prices = np.array([1500.5, 3900.25])
    vols = np.array([10, -1], np.int64)
    with StoreWriter(db) as w:
        w.put_ticks(list(zip(tokens, prices * 0 + T0, prices,
                             [None if v < 0 else v for v in vols], [None, None],
                             [np.float64(1510.0), None], [None, None], [T0 + 0.1] * 2,
                             strict=True)))
        w.put_candles([Candle(np.int64(INFY), 1, np.int64(T0), np.float64(1.0), 2.0, 0.5, 1.5,
                              np.int64(7), np.int64(99), np.int64(2), closed=True)])
    with sqlite3.connect(db) as conn:
        ticks = conn.execute("SELECT instrument_token, last_price, volume_traded, high, "
                             "typeof(instrument_token), typeof(volume_traded) FROM ticks "
                             "ORDER BY instrument_token").fetchall()
        cand = conn.execute("SELECT instrument_token, volume, oi FROM candles").fetchall()
    assert ticks == [(INFY, 1500.5, 10, 1510.0, "integer", "integer"),
                     (TCS, 3900.25, None, None, "integer", "null")]
    assert cand == [(INFY, 7, 99)]


# --- one writer per store ----------------------------------------------------------------------
def test_a_second_writer_is_refused_at_once_until_the_first_stops(tmp_path):
    db = tmp_path / "s.db"
    first = StoreWriter(db, flush_interval_s=30)
    try:
        first.put_candles([candle(INFY, 0)])
        assert first.flush()
        t = time.monotonic()
        with pytest.raises(StoreError) as err:
            StoreWriter(db)
        assert time.monotonic() - t < 1, "refused at once, not after a busy timeout"
        msg = str(err.value)
        assert f"pid {os.getpid()}" in msg and str(db) in msg and "--db" in msg
        assert "\n" not in msg
        with pytest.raises(StoreError, match="being written"):
            check_writable(db)  # what `stream` asks before it connects anything
    finally:
        assert first.stop()
    assert not lock_path(db).exists()
    with StoreWriter(db) as second:
        second.put_candles([candle(INFY, 1)])
    assert count(db) == 2


# --- one source per store ----------------------------------------------------------------------
def test_a_store_keeps_the_source_it_was_first_written_with(tmp_path):
    db = tmp_path / "s.db"
    with StoreWriter(db) as w:
        w.put_candles([candle(INFY, 0)])
    assert store_source(db) is None  # candles, but no stream session said whose
    with StoreWriter(db) as w:
        w.begin_session({"source": "SIMULATED", "mode": "full"})
    assert store_source(db) == "SIMULATED"
    with CandleStoreReader(db) as r:
        assert r.source() == "SIMULATED"
    before = db.read_bytes(), count(db), count(db, "SELECT COUNT(*) FROM sessions")
    w = StoreWriter(db, flush_interval_s=30)
    try:
        w.register_instruments({TCS: ("TCS", "NSE")})
        w.put_candles([candle(TCS, 0)])  # queued before the session is refused
        with pytest.raises(StoreError) as err:
            w.begin_session({"source": "KITE", "mode": "full"})
        msg = str(err.value)
        assert "holds SIMULATED candles" in msg and "KITE" in msg and "--db" in msg
        w.put_candles([candle(TCS, 1)])
    finally:
        assert w.stop()
    after = count(db), count(db, "SELECT COUNT(*) FROM sessions")
    assert after == before[1:], "a refused session writes nothing, not even what it queued"
    with CandleStoreReader(db) as r:
        assert TCS not in r.symbols()
    with StoreWriter(db) as w:  # the store's own source is welcome
        w.begin_session({"source": "simulated"})
    assert count(db, "SELECT COUNT(*) FROM sessions") == 2


def test_a_writer_given_its_source_is_refused_before_anything_is_queued(tmp_path):
    db = tmp_path / "s.db"
    StoreWriter(db, source="KITE").stop()  # what LiveSession does: the claim comes first
    assert store_source(db) == "KITE"
    with pytest.raises(StoreError, match="holds KITE candles"):
        StoreWriter(db, source="SIMULATED")
    assert not lock_path(db).exists(), "a refused writer lets go of the store"
    with StoreWriter(db, source="KITE") as w:
        w.begin_session({"source": "KITE"})


def test_an_older_store_is_judged_by_its_sessions(tmp_path):
    db = tmp_path / "old.db"
    with StoreWriter(db) as w:
        w.begin_session({"source": "KITE"})
    with sqlite3.connect(db) as conn:  # what a livecli before the source rule left
        conn.execute("DELETE FROM meta WHERE key = 'source'")
    assert store_source(db) == "KITE"
    with StoreWriter(db) as w, pytest.raises(StoreError, match="holds KITE candles"):
        w.begin_session({"source": "SIMULATED"})
    with StoreWriter(db) as w:
        w.begin_session({"source": "KITE"})
    assert count(db, "SELECT value FROM meta WHERE key = 'source'") == "KITE"  # now recorded
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'source'")
        conn.execute("UPDATE sessions SET source = 'SIMULATED' WHERE id = 1")
    assert store_source(db) == MIXED
    for source in ("KITE", "SIMULATED"):
        with StoreWriter(db) as w, pytest.raises(StoreError, match="both Kite and simulated"):
            w.begin_session({"source": source})


# --- a store that cannot be written --------------------------------------------------------------
def test_writes_failing_for_seconds_set_failure_and_warn_once(tmp_path, caplog):
    db = tmp_path / "s.db"
    w = StoreWriter(db, flush_interval_s=0.05)
    try:
        w.begin_session({"source": "SIMULATED"})
        w.put_candles([candle(INFY, 0)])
        assert w.flush()
        with w._db_lock:  # a real "database or disk is full": cap the file at its current size
            pages = w._conn.execute("PRAGMA page_count").fetchone()[0]
            w._conn.execute(f"PRAGMA max_page_count={pages}")
        caplog.set_level("DEBUG", logger="livecli.store")
        first_failure = None
        w.put_candles([candle(INFY + 256 * k, i) for k in range(1, 40) for i in range(100)])
        deadline = time.monotonic() + GIVE_UP_S + 10
        while w.failure is None and time.monotonic() < deadline:
            w.flush(timeout=2)  # each call waits for one more attempt of the writer thread
            if first_failure is None and w.error:
                first_failure = time.monotonic()
        assert isinstance(w.failure, StoreError), w.error
        waited = time.monotonic() - first_failure
        assert GIVE_UP_S - 0.3 <= waited <= GIVE_UP_S + 2, waited
        assert "full" in str(w.failure) and "gave up" in str(w.failure)
        assert w.failures >= 3, "it kept retrying until it gave up"
        warnings = [r for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and "retrying" in warnings[0].getMessage()
        assert not warnings[0].getMessage().startswith("livecli:")
        w.end_session(state="failed", clean=False)
    finally:
        assert not w.stop(timeout=10)  # not everything was written, and it says so
    assert count(db) == 1
    with CandleStoreReader(db) as r:
        s = r.latest_session()
    # The session row still records how it ended (rewritten in place: no page was needed).
    assert s["state"] == "failed" and s["ended_at"] is not None and s["clean_stop"] == 0


def test_a_failure_that_clears_before_the_deadline_is_forgiven(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "GIVE_UP_S", 60.0)
    db = tmp_path / "s.db"
    w = StoreWriter(db, flush_interval_s=30)
    try:
        w.put_candles([candle(INFY, 0)])
        assert w.flush()
        with w._db_lock:
            pages = w._conn.execute("PRAGMA page_count").fetchone()[0]
            w._conn.execute(f"PRAGMA max_page_count={pages}")
        w.put_candles([candle(INFY + 256 * k, i) for k in range(1, 40) for i in range(100)])
        assert not w.flush() and not w.flush()
        with w._db_lock:
            w._conn.execute("PRAGMA max_page_count=1073741823")
        assert w.flush() and w.error is None and w.failure is None
    finally:
        assert w.stop()
    assert count(db) == 1 + 39 * 100


@pytest.mark.parametrize("seed", range(20))
def test_a_frame_recorded_as_columns_stores_the_rows_a_tuple_per_tick_stored(tmp_path, seed):
    """The receiving path hands the writer a frame's columns (TickBlock), not a tuple per
    tick: the rows stored are the ones the per-tick tuples made, Kite's sentinels (-1 for no
    volume or OI, NaN for no high or low) stored as NULL."""
    import numpy as np

    from livecli.core.ticks import TickColumns

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    cols = TickColumns(
        rng.integers(1, 2**32, n), T0 + rng.integers(0, 3600, n).astype(np.float64),
        rng.uniform(1, 5000, n), np.where(rng.random(n) < 0.3, -1, rng.integers(0, 10**9, n)),
        np.where(rng.random(n) < 0.5, np.nan, rng.uniform(1, 5000, n)),
        np.where(rng.random(n) < 0.5, np.nan, rng.uniform(1, 5000, n)),
        np.where(rng.random(n) < 0.6, -1, rng.integers(0, 10**7, n)))
    at = T0 + 0.123
    per_tick = list(zip(
        cols.token.tolist(), cols.time.tolist(), cols.price.tolist(),
        [None if v < 0 else v for v in cols.volume.tolist()],
        [None if o < 0 else o for o in cols.oi.tolist()],
        [None if h != h else h for h in cols.day_high.tolist()],
        [None if lo != lo else lo for lo in cols.day_low.tolist()],
        [at] * n, strict=True))
    stored = {}
    for how in ("columns", "tuples"):
        db = tmp_path / f"{how}.db"
        w = StoreWriter(db, flush_interval_s=30)
        if how == "columns":
            w.put_tick_columns(cols, at)
        else:
            w.put_ticks(per_tick)
        assert w.pending == n
        assert w.stop()
        con = sqlite3.connect(db)
        stored[how] = con.execute("SELECT * FROM ticks ORDER BY rowid").fetchall()
        con.close()
    assert stored["columns"] == stored["tuples"]
    assert len(stored["columns"]) == n
