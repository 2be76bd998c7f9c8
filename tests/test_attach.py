"""Attaching to a served session: `LiveSession.attach`, `stream --attach`, auto-attach, `status`.

The real `livecli serve` in a subprocess against the simulated market (tests/serve_server.py),
the real `livecli stream`/`status` commands beside it, real httpx and websockets. What is held:
an attached `stream --jsonl` writes the candles the server's own session stored, field for
field, and rides out the server being killed and restarted; an attached `LiveSession`'s
candle-close callbacks equal the store and its typed read API (the dashboard's) is fed by the
socket; a stream on a served store attaches by itself, a stale record (server killed) does not
cause an attach; `status` reads the server (pushed with --follow); bad URLs are one line.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli import assert_one_line_error
from tests.serve_server import ROOT, ServeProcess, serve_env, wait_for

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

CANDLE_KEYS = ["type", "symbol", "instrument_token", "exchange", "interval", "start", "open",
               "high", "low", "close", "volume", "oi", "ticks", "partial", "synthetic", "closed",
               "origin"]
TICK_KEYS = ["type", "symbol", "exchange", "instrument_token", "last_price", "volume_traded",
             "exchange_timestamp", "received_at", "oi", "day_high", "day_low", "change_pct",
             "mode"]


def run_cli(base: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livecli", *args], cwd=base, text=True,
                          capture_output=True, timeout=timeout, env=serve_env(base))


class Lines:
    """A `livecli` command in a subprocess whose stdout lines are read as they come."""

    def __init__(self, base: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "livecli", *args], cwd=base,
                                     env=serve_env(base), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(json.loads(line))
                self.cond.notify_all()

    def until(self, pred: Any, timeout: float = 60) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.lines), timeout), (
                len(self.lines), self.proc.poll())

    def finish(self, sig: int = signal.SIGINT, timeout: float = 30) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self._t.join(5)
        assert self.proc.stderr is not None
        return rc, self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def closed_candles(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [x for x in lines if x["type"] == "candle"]


def store_rows(db: Path) -> dict[tuple[int, int, str], dict[str, Any]]:
    """The store's closed candles, keyed as the lines key them, as candle lines (via the
    export path that `livecli candles` uses is not needed: the columns are plain)."""
    import sqlite3

    from livecli.core.timeutil import iso

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT c.instrument_token, interval_min, start, open, high, low, close, volume, oi, "
            "ticks, partial, synthetic, i.symbol, i.exchange, origin FROM candles c "
            "JOIN instruments i "
            "USING (instrument_token) WHERE closed = 1").fetchall()
    finally:
        con.close()
    out = {}
    for tok, iv, start, o, h, lo, c, v, oi, n, p, syn, sym, ex, origin in rows:
        out[(tok, iv, iso(start))] = {
            "type": "candle", "symbol": sym, "instrument_token": tok, "exchange": ex,
            "interval": f"{iv}min", "start": iso(start), "open": o, "high": h, "low": lo,
            "close": c, "volume": v, "oi": oi, "ticks": n, "partial": bool(p),
            "synthetic": bool(syn), "closed": True, "origin": origin}
    return out


def key(c: dict[str, Any]) -> tuple[int, int, str]:
    return (c["instrument_token"], int(c["interval"].removesuffix("min")), c["start"])


# --- fast: what is refused, and in one line -------------------------------------------------------
def test_the_client_path_loads_no_server_stack():
    probe = ("import sys\nfrom livecli.session.live import LiveSession\n"
             "s = LiveSession.attach('http://127.0.0.1:9')\n"
             "import livecli.session.remote_lines, livecli.session.attach\n"
             "print(type(s).__name__, 'LOADED:' + ','.join(m for m in ('fastapi', 'uvicorn', "
             "'starlette', 'pydantic', 'livecli.server') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["RemoteSession", "LOADED:"]


def test_one_place_dispatches_on_the_scheme():
    from livecli.errors import UsageError
    from livecli.session.attach import CLIENTS, attach, is_url
    from livecli.session.live import LiveSession
    from livecli.session.remote import RemoteSession

    s = LiveSession(source="http://127.0.0.1:9/api/live/")
    assert isinstance(s, RemoteSession) and s.url == "http://127.0.0.1:9"
    assert isinstance(LiveSession.attach("https://h.example:8443"), RemoteSession)
    assert is_url("nats://127.0.0.1:4222") and not is_url("sim") and not is_url("auto")
    for bad in ("ftp://x", "nats://x:4222" if "nats" not in CLIENTS else "gopher://x"):
        with pytest.raises(UsageError, match="unknown scheme") as err:
            attach(bad)
        assert "http://" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UsageError, match="the server's"):
        LiveSession("http://127.0.0.1:9", intervals=["5min"])


@pytest.mark.parametrize(("args", "code", "needles"), [
    (["stream", "--attach", "ftp://h:21", "INFY"], 2, ("unknown scheme ftp://",)),
    (["stream", "--attach", "http://127.0.0.1:9", "INFY", "--sim", "--record"], 2,
     ("--sim, --record cannot be used with --attach",)),
    (["stream", "--attach", "http://127.0.0.1:9", "INFY", "--jsonl"], 14,
     ("cannot reach the livecli server at http://127.0.0.1:9",)),
    (["status", "--url", "http://127.0.0.1:9"], 14, ("cannot reach the livecli server",)),
    (["stream"], 2, ("missing argument SYMBOL", "--attach URL", "livecli stream --help")),
])
def test_bad_attach_input_is_one_line(tmp_path, args, code, needles):
    assert_one_line_error(run_cli(tmp_path, *args), code, *needles)


# --- the attached stream ---------------------------------------------------------------------------
@pytest.mark.slow
def test_attached_jsonl_is_what_the_server_stores_across_a_restart(tmp_path):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    first = ServeProcess(tmp_path, "RELIANCE", "--db", str(one))
    port = first.url.rsplit(":", 1)[1]
    second = None
    attached = Lines(tmp_path, "stream", "--attach", first.url, "INFY", "--jsonl")
    try:
        attached.until(lambda ls: {c["symbol"] for c in closed_candles(ls)} >= {"RELIANCE", "INFY"})
        # INFY was added to what it streams (the status is at most a second old).
        wait_for(lambda: set(httpx.get(first.api + "/status", timeout=30).json()["symbols"])
                 == {"RELIANCE", "INFY"}, 10)
        before = len(attached.lines)
        first.kill()  # SIGKILL while attached
        second = ServeProcess(tmp_path, "--db", str(two), port=int(port))  # idle
        # The attached stream reconnects and starts its symbols on the new server by itself.
        attached.until(lambda ls: len([c for c in closed_candles(ls[before:])
                                       if c["symbol"] == "INFY"]) >= 3)
        rc, err = attached.finish(signal.SIGINT)
        assert rc == 0, err
        assert "attached to the server at" in err and "detached by signal" in err
        assert second.signal(signal.SIGTERM) == 0, second.stderr()
    finally:
        attached.kill()
        first.kill()
        if second is not None:
            second.kill()
    lines = attached.lines
    ticks = [x for x in lines if x["type"] == "tick"]
    assert ticks and all(list(t) == TICK_KEYS for t in ticks)
    assert {t["symbol"] for t in ticks} == {"RELIANCE", "INFY"}
    statuses = [x for x in lines if x["type"] == "status"]
    assert statuses and statuses[-1]["schema"] == 1
    stored = {1: store_rows(one), 2: store_rows(two)}
    got = closed_candles(lines)
    assert all(list(c) == CANDLE_KEYS for c in got)
    # Every close written is the server's own, field for field. Only the first server's last
    # closes may be missing from its store: SIGKILL took the writer's last batch with it.
    switch = next(i for i, x in enumerate(lines)
                  if x["type"] == "status" and x["pid"] == second.proc.pid)
    lost = []
    for i, c in enumerate(lines):
        if c["type"] != "candle":
            continue
        if i >= switch:  # the second server's session (both markets have the same minutes)
            assert c == stored[2].get(key(c)), c
        elif c != stored[1].get(key(c)) and (i < before or c != stored[2].get(key(c))):
            lost.append(c)
    assert len(lost) <= 6, lost
    in_two = [c for c in got if c == stored[2].get(key(c)) and c["symbol"] == "INFY"]
    assert len(in_two) >= 3
    # Nothing missed while attached to the second server: its INFY minutes follow on.
    starts = sorted(c["start"] for c in in_two)
    want = sorted(k[2] for k in stored[2] if k[0] == 408065 and starts[0] <= k[2] <= starts[-1])
    assert starts == want


@pytest.mark.slow
def test_a_served_store_is_attached_to_and_a_stale_record_is_not(tmp_path):
    db = tmp_path / "s.db"
    srv = ServeProcess(tmp_path, "RELIANCE", "--db", str(db))
    try:
        # A plain stream on that store, no --attach: it attaches instead of being refused.
        r = run_cli(tmp_path, "stream", "INFY", "--db", str(db), "--sim", "--jsonl",
                    "--duration", "4")
        assert r.returncode == 0, r.stderr
        assert f"attached to the store's server at {srv.url} (it writes {db})" in r.stderr
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        got = closed_candles(lines)
        assert {t["symbol"] for t in lines if t["type"] == "tick"} == {"RELIANCE", "INFY"}
        assert got
        # The same closes as the store (the writer's last batch may take a moment to land).
        wait_for(lambda: all(store_rows(db).get(key(c)) == c for c in got), 15)

        # --attach with no symbols: what the server streams, nothing added.
        plain = run_cli(tmp_path, "stream", "--attach", srv.url, "--jsonl", "--duration", "2")
        assert plain.returncode == 0, plain.stderr
        assert {json.loads(x)["symbol"] for x in plain.stdout.splitlines()
                if '"tick"' in x} == {"RELIANCE", "INFY"}
        assert_one_line_error(run_cli(tmp_path, "stream", "--attach", srv.url, "-i", "5min"), 2,
                              "5min candles are not built by the server", "built: 1min")
        # status, by the store's record: over the API, the server part beside the session's.
        st = run_cli(tmp_path, "status", "--db", str(db), "--json")
        assert st.returncode == 0, st.stderr
        doc = json.loads(st.stdout)
        assert doc["served"]["url"] == srv.url and doc["state"] == "connected"
        assert doc["pid"] == srv.proc.pid and {s["symbol"] for s in doc["symbols"]} == {
            "RELIANCE", "INFY"}
        shown = run_cli(tmp_path, "status", "--url", srv.url)
        assert shown.returncode == 0 and f"served          {srv.url}" in shown.stdout
        # --follow: the status the server pushes, once a second (not the store's, polled).
        t0 = time.monotonic()
        fol = run_cli(tmp_path, "status", "--attach", srv.url, "--follow", "--json",
                      "--count", "3", "--every", "30")
        assert fol.returncode == 0, fol.stderr
        docs = [json.loads(x) for x in fol.stdout.splitlines()]
        assert len(docs) == 3 and all(d["served"]["url"] == srv.url for d in docs)
        assert docs[0]["ticks"] < docs[1]["ticks"] < docs[2]["ticks"]
        assert time.monotonic() - t0 < 25  # --every 30 would poll; pushes come each second
        pid = srv.proc.pid
        srv.kill()  # SIGKILL: the record stays behind, stale
    finally:
        srv.kill()
    from livecli.store.served import served_record

    rec = served_record(db)
    assert rec is not None and rec.pid == pid  # left by the killed server...
    # ...and not attached to: the stream writes the store itself.
    r = run_cli(tmp_path, "stream", "INFY", "--db", str(db), "--sim", "--jsonl",
                "--duration", "3")
    assert r.returncode == 0, r.stderr
    assert "attached" not in r.stderr and f"candles stored in {db}" in r.stderr
    st = run_cli(tmp_path, "status", "--db", str(db), "--json")
    doc = json.loads(st.stdout)
    assert "served" not in doc and doc["state"] == "stopped" and doc["pid"] != pid


@pytest.mark.slow
def test_a_clean_stop_removes_the_record(tmp_path):
    db = tmp_path / "s.db"
    srv = ServeProcess(tmp_path, "--db", str(db))  # idle: no session yet, the record already
    from livecli.store.served import served_record

    try:
        rec = served_record(db)
        assert rec is not None and rec.url == srv.url and rec.pid == srv.proc.pid
    finally:
        assert srv.signal(signal.SIGTERM) == 0, srv.stderr()
    assert served_record(db) is None


# --- the Python API ------------------------------------------------------------------------------
@pytest.mark.slow
def test_an_attached_live_session_reads_like_a_local_one(tmp_path):
    from livecli.core.intervals import parse_interval
    from livecli.dashboard.builder import SnapshotBuilder
    from livecli.session.live import LiveSession

    db = tmp_path / "s.db"
    srv = ServeProcess(tmp_path, "RELIANCE", "--db", str(db), "--interval", "5min")
    closes: list[Any] = []
    cond = threading.Condition()

    def on_close(tok: int, c: Any) -> None:
        with cond:
            closes.append(c)
            cond.notify_all()

    s = LiveSession(source=srv.url)
    try:
        with s:
            s.start(["INFY"])  # added to RELIANCE
            s.on_candle_close("1min", on_close)
            one = parse_interval("1min")
            builder = SnapshotBuilder(s, one)
            with cond:
                assert cond.wait_for(lambda: len(closes) >= 4, 60), s.last_error
            insts = s.instruments
            assert {i.tradingsymbol for i in insts.values()} == {"RELIANCE", "INFY"}
            wait_for(lambda: len(s.latest_ticks()) == 2 and s.forming_candles(list(insts), one)
                     [408065].candle is not None, 30)
            latest = s.latest_ticks()[408065]
            rest = s.get_latest_tick("INFY")
            assert latest.ticks > 0 and latest.prev_close is not None
            assert abs(latest.last_price - rest["last_price"]) < 50
            forming = s.forming_candles([408065], one, 24)[408065]
            assert forming.candle.symbol == "INFY" and not forming.candle.closed
            assert forming.seconds_left is not None and 0 <= forming.seconds_left <= 60
            # The spark line: closes fetched once, then pushed; the closed ones, in order.
            wait_for(lambda: len(s.forming_candles([408065], one, 24)[408065].closes) >= 3, 30)
            recent = s.recent_ticks(5)
            assert len(recent) == 5 and {r.symbol for r in recent} <= {"RELIANCE", "INFY"}
            tok = s.subscribe_symbol("HDFCBANK")
            wait_for(lambda: tok in s.instruments, 30)  # the pushed status names it
            assert s.token_of("NSE:HDFCBANK") == tok
            s.unsubscribe_symbol("HDFCBANK")
            wait_for(lambda: tok not in s.instruments, 30)
            st = s.live_status(symbols=False)
            assert st.state == "connected" and st.intervals == ("1min", "5min")
            snap = builder()  # the dashboard's own builder, over the attached session
            assert [r.symbol for r in snap.rows] == ["RELIANCE", "INFY"]
            assert all(r.last_price is not None for r in snap.rows)
            assert snap.connection.source == "SIMULATED"
        assert not s.connected.is_set()  # left the with: detached; the server goes on
        assert httpx.get(srv.api + "/status", timeout=30).json()["state"] == "connected"
    finally:
        assert srv.signal(signal.SIGTERM) == 0, srv.stderr()
    stored = store_rows(db)
    with cond:
        got = list(closes)
    assert all(c.closed and c.interval_min == 1 for c in got)
    for c in got:
        d = {"type": "candle", **c.to_dict()}
        assert stored[key(d)] == d


@pytest.mark.slow
def test_a_served_store_whose_server_requires_its_key(tmp_path):
    """Same user, same data folder: status and stream find the key themselves; the key is
    never printed."""
    db = tmp_path / "s.db"
    srv = ServeProcess(tmp_path, "RELIANCE", "--db", str(db), "--require-key")
    try:
        key = (tmp_path / "data" / "serve-api-key").read_text().strip()
        assert httpx.get(srv.api + "/status", timeout=30).status_code == 401
        st = run_cli(tmp_path, "status", "--db", str(db), "--json")
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["served"] == {"url": srv.url, "clients": 0,
                                                   "clients_dropped": 0, "auth": True}
        r = run_cli(tmp_path, "stream", "--db", str(db), "--jsonl", "--duration", "2")
        assert r.returncode == 0 and "attached to the store's server" in r.stderr, r.stderr
        assert any('"tick"' in x for x in r.stdout.splitlines())
        assert key not in st.stdout + st.stderr + r.stdout + r.stderr
    finally:
        assert srv.signal(signal.SIGTERM) == 0, srv.stderr()


@pytest.mark.slow
def test_the_attached_dashboard_on_a_terminal(tmp_path):
    """The same dashboard as `livecli stream`, drawn from the attached session's read API."""
    import re

    from tests.test_stream_e2e import run_on_pty

    srv = ServeProcess(tmp_path, "RELIANCE", "--db", str(tmp_path / "s.db"))
    try:
        rc, screen, err = run_on_pty(tmp_path, ["stream", "--attach", srv.url, "INFY"],
                                     "candles stored [3-9]")
    finally:
        assert srv.signal(signal.SIGTERM) == 0, srv.stderr()
    assert rc == 0, err
    assert "Traceback" not in err and "dashboard error" not in screen
    # The note is drawn above the live display (which holds stderr while it runs).
    assert f"attached to the server at {srv.url}" in screen + err
    assert "detached by signal" in err
    for panel in ("Instruments · 1min", "Latest ticks", "Connection", "attached to"):
        assert panel in screen, panel
    assert re.search(r"RELIANCE\s+NSE\s+\d,\d{3}\.\d\d", screen), screen[-3000:]
    assert re.search(r"INFY\s+NSE\s+\d,\d{3}\.\d\d", screen)
    assert "source SIMULATED" in screen and "state connected" in screen
    assert re.search(r"[▁▂▃▄▅▆▇█]{2}", screen)  # spark lines from the pushed closes
