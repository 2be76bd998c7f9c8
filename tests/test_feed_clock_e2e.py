"""The feed's clock cannot be poisoned (issue 9, CANDLES.md rule 8), end to end.

A Kite of the test's own on loopback: a WebSocket server that speaks Kite's binary protocol
(frames built with livecli's codec encoders) and an HTTP server with the instrument list, reached
through the real kiteconnect client. It sends one packet stamped 2100-01-01 among good ones.

* the real CLI, `livecli stream --jsonl`, on a recorded-looking day (64 minutes of ticks stamped
  in the past, as in the issue): every announced candle equals the oracle's over the ticks that
  were actually sent, without the poisoned one; none is lost, no tick is late;
* `LiveSession` in this process, ticks stamped now, ltp packets (stamped at receipt) in the same
  frames: the poisoned tick is counted in `future`, and when the feed goes quiet the clock that
  moves on is the honest one, never ahead of the wall clock.

Waiting is on lines, status callbacks and events with deadlines, never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from livecli.core.timeutil import at_ist
from livecli.kite.codec import encode_frame, encode_full, encode_index_full, encode_ltp
from livecli.kite.protocol import HEARTBEAT
from tests.oracle import OTick, oracle

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RELIANCE, INFY, NIFTY = 738561, 408065, 256265
SYMBOLS = ["RELIANCE", "INFY", "NSE:NIFTY 50"]
POISON = 4_102_444_800  # 2100-01-01T05:30:00+05:30, as a Kite exchange_timestamp (u32 seconds)
DAY = date(2025, 12, 10)  # a Wednesday
INSTRUMENTS_CSV = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,"
    "lot_size,instrument_type,segment,exchange\n"
    "738561,2885,RELIANCE,RELIANCE INDUSTRIES,0.0,,0.0,0.1,1,EQ,NSE,NSE\n"
    "408065,1594,INFY,INFOSYS,0.0,,0.0,0.1,1,EQ,NSE,NSE\n"
    "256265,1001,NIFTY 50,NIFTY 50,0.0,,0.0,0.0,0,EQ,INDICES,NSE\n"
)


# --- a Kite of our own ------------------------------------------------------------------------
class _Instruments(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = INSTRUMENTS_CSV.encode() if self.path.startswith("/instruments/NSE") else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class FakeKite:
    """Kite's ticker and instrument list on loopback, sending what the test puts in `send()`.

    Items are frames (bytes) or callables that build one at the moment it is sent (to stamp
    ticks with the time of sending). Nothing is sent before the client has asked for a mode;
    with nothing to send, a heartbeat every second, as Kite does.
    """

    def __init__(self) -> None:
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _Instruments)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.api_url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._items: asyncio.Queue = asyncio.Queue()
        self.modes: list[Any] = []
        self.sent: list[tuple[float, bytes]] = []  # (wall time when sent, frame)
        self.cond = threading.Condition()
        self._ws = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.ws_url = f"ws://127.0.0.1:{self._ws.sockets[0].getsockname()[1]}"

    async def _start(self) -> Any:
        from websockets.asyncio.server import serve

        return await serve(self._handle, "127.0.0.1", 0, compression=None, ping_interval=None)

    async def _handle(self, ws: Any) -> None:
        moded = asyncio.Event()

        async def read() -> None:
            async for msg in ws:
                if isinstance(msg, str) and json.loads(msg).get("a") == "mode":
                    self.modes.append(json.loads(msg)["v"])
                    moded.set()

        reader = asyncio.create_task(read())
        try:
            await moded.wait()
            while True:
                try:
                    item = await asyncio.wait_for(self._items.get(), 1.0)
                except TimeoutError:
                    await ws.send(HEARTBEAT)
                    continue
                data = item() if callable(item) else item
                await ws.send(data)
                with self.cond:
                    self.sent.append((time.time(), data))
                    self.cond.notify_all()
        except Exception:  # the client went away
            pass
        finally:
            reader.cancel()

    def send(self, item: bytes | Callable[[], bytes]) -> None:
        self.loop.call_soon_threadsafe(self._items.put_nowait, item)

    def wait_sent(self, n: int, timeout: float = 30.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.sent) >= n, timeout), (
                f"{len(self.sent)} of {n} frames sent; modes asked: {self.modes}")

    def close(self) -> None:
        async def stop() -> None:
            self._ws.close()  # a handler ends at its next send, a heartbeat at the latest
            await asyncio.wait_for(self._ws.wait_closed(), 5)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def kite():
    k = FakeKite()
    try:
        yield k
    finally:
        k.close()


# --- ticks as sent ----------------------------------------------------------------------------
def full(token: int, paise: int, volume: int, ts: int, hi: int, lo: int) -> tuple[bytes, OTick]:
    """A full packet and the tick it says, prices in paise (exact after the codec's division)."""
    p = paise / 100
    packet = encode_full(token, p, 1, p, volume, 0, 0, lo / 100, hi / 100, lo / 100, p, ts, 0,
                         0, 0, ts, [(10, p, 1)], [(10, p + 0.05, 1)])
    return packet, OTick(token, float(ts), p, volume, hi / 100, lo / 100, 0)


def index_full(paise: int, ts: int, hi: int, lo: int) -> tuple[bytes, OTick]:
    p = paise / 100
    packet = encode_index_full(NIFTY, p, hi / 100, lo / 100, lo / 100, p, 0.0, ts)
    return packet, OTick(NIFTY, float(ts), p, None, hi / 100, lo / 100, None)


def a_past_day() -> tuple[list[list[bytes]], list[OTick]]:
    """64 minutes of a past day from 09:15 in frames, one packet stamped 2100 after 09:31.

    Returns the frames and the honest ticks they carry, in the order sent.
    """
    frames: list[list[bytes]] = []
    good: list[OTick] = []
    vols = {RELIANCE: 5000, INFY: 8000}
    hilo = {RELIANCE: [250000, 250000], INFY: [150000, 150000], NIFTY: [2200000, 2200000]}
    t0 = int(at_ist(DAY, dtime(9, 15)))
    frame: list[bytes] = []
    for k in range(64 * 4 + 1):  # every 15 s; the last at 10:19:00 + 5 s closes 10:18
        ts = t0 + 15 * k + (5 if k == 64 * 4 else 2)
        for token, base in ((RELIANCE, 250000), (INFY, 150000), (NIFTY, 2200000)):
            paise = base + ((k * 7 + token) % 11 - 5) * 5
            hl = hilo[token]
            hl[0], hl[1] = max(hl[0], paise), min(hl[1], paise)
            if token == NIFTY:
                packet, tick = index_full(paise, ts, *hl)
            else:
                vols[token] += (k * 13 + token) % 40
                packet, tick = full(token, paise, vols[token], ts, *hl)
            frame.append(packet)
            good.append(tick)
        if k == 65:  # 09:31:17: the packet of issue 9, in the middle of a frame
            frame.insert(1, full(RELIANCE, 9_999_900, 10**9, POISON, 9_999_900, 100)[0])
        if len(frame) >= 24:
            frames.append(frame)
            frame = []
    frames.append(frame)
    return frames, good


# --- the real CLI -----------------------------------------------------------------------------
def cli_env(base: Path, kite: FakeKite) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITE_", "LIVECLI_"))}
    for name in ("config", "data", "cache", "home"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env.update(
        LIVECLI_CONFIG_DIR=str(base / "config"), LIVECLI_DATA_DIR=str(base / "data"),
        LIVECLI_CACHE_DIR=str(base / "cache"), HOME=str(base / "home"),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONUNBUFFERED="1",
        KITE_API_KEY="testkey", KITE_ACCESS_TOKEN="test-access-token-0123456789",
        LIVECLI_KITE_WS_URL=kite.ws_url, LIVECLI_KITE_API_URL=kite.api_url,
    )
    return env


def epoch_of(text: str) -> int:
    dt = datetime.fromisoformat(text)
    assert dt.utcoffset() is not None and dt.utcoffset().total_seconds() == 19_800, text
    return int(dt.timestamp())


FIELDS = ("open", "high", "low", "close", "volume", "oi", "ticks", "partial")


def test_cli_stream_a_packet_stamped_2100_loses_no_candle(tmp_path, kite):
    frames, good = a_past_day()
    for f in frames:
        kite.send(encode_frame(f))
    want = oracle(good, [1, 5])
    last_minute = int(at_ist(DAY, dtime(10, 19)))
    closed_by_now = {k for k in want if k[2] + 60 * k[1] <= last_minute}
    assert len([k for k in closed_by_now if k[1] == 1]) == 3 * 64

    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "livecli", "stream", *SYMBOLS, "--jsonl", "--interval", "1min",
             "--interval", "5min", "--db", str(tmp_path / "s.db"), "--record"],
            cwd=tmp_path, env=cli_env(tmp_path, kite), stdout=subprocess.PIPE, stderr=err_file,
            text=True,
        )
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for x in proc.stdout:
            lines.put(json.loads(x))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    got: dict[tuple[int, int, int], tuple] = {}
    try:
        deadline = time.monotonic() + 60
        while not closed_by_now <= set(got):
            left = deadline - time.monotonic()
            assert left > 0 and proc.poll() is None, (
                f"{len(closed_by_now - set(got))} candles never announced, e.g. "
                f"{sorted(closed_by_now - set(got))[:3]}; stderr: {err_path.read_text()}")
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line["type"] == "candle":
                key = (line["instrument_token"], int(line["interval"].removesuffix("min")),
                       epoch_of(line["start"]))
                assert key not in got, f"announced twice: {key}"
                got[key] = tuple(line[f] for f in FIELDS)
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    err = err_path.read_text()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    status = [x for x in rest if x["type"] == "status"][-1]
    assert status["source"] == "KITE" and status["late_ticks"] == 0 and status["bad_ticks"] == 0
    assert status["future_ticks"] == 1
    # The refused tick is not recorded either: a rebuild from the recording sees what the
    # session saw (before, the recording kept it and its rebuild lost the same candles).
    import sqlite3

    con = sqlite3.connect(tmp_path / "s.db")
    try:
        (recorded, poisoned), = con.execute(
            "SELECT COUNT(*), SUM(exchange_timestamp >= ?) FROM ticks", (POISON,)).fetchall()
    finally:
        con.close()
    assert recorded > 0 and poisoned == 0
    # Every announced candle is the oracle's over the ticks sent, the poisoned one left out.
    for key, vals in got.items():
        w = want[key]
        assert vals[:5] == w[:5] and (vals[5] or 0) == (w[5] or 0) and vals[6:] == w[6:], (
            key, vals, w)


# --- LiveSession in this process --------------------------------------------------------------
@pytest.fixture
def hermetic(in_process_env):
    """This module's tests run a LiveSession in process (conftest.in_process_env)."""
    return in_process_env


def test_session_poisoned_packet_among_ltp_and_full_never_puts_the_clock_ahead(hermetic, kite):
    # White-box: the run's engine is read directly, to see its clock between status lines.
    from livecli.session.live import LiveSession

    sent_full: list[OTick] = []
    sent_ltp: list[float] = []
    vol = [7000, 9000]

    def frame(k: int, poison: bool = False) -> Callable[[], bytes]:
        def build() -> bytes:
            ts = int(time.time())  # stamped as Kite does: now, to the second
            packets = []
            for j, token in enumerate((RELIANCE, INFY)):
                vol[j] += 10 + k
                paise = 250000 + 5 * k if token == RELIANCE else 150000 - 5 * k
                packet, tick = full(token, paise, vol[j], ts, 260000, 140000)
                packets.append(packet)
                sent_full.append(tick)
                if j == 0 and poison:
                    packets.append(full(INFY, 9_999_900, 10**9, POISON, 9_999_900, 100)[0])
            ltp = 22000 + k * 0.5  # the index in ltp: no time in the packet, stamped at receipt
            packets.insert(1, encode_ltp(NIFTY, ltp))
            sent_ltp.append(ltp)
            return encode_frame(packets)
        return build

    samples: list[tuple[float, float]] = []  # (wall, engine clock) at each status
    cond = threading.Condition()
    # Ticks stamped now must fall in a session at any hour: a whole-day one, for this test.
    session = LiveSession(source="kite", intervals=["1min"], db=False, overrides={
        "kite.api_key": "testkey", "kite.access_token": "test-access-token-0123456789",
        "kite.ws_url": kite.ws_url, "kite.api_url": kite.api_url,
        "sessions.NSE": "00:00-24:00", "sessions.INDICES": "00:00-24:00",
    })

    def on_status(_status: dict) -> None:
        with cond:
            samples.append((time.time(), session._run.engine.clock))
            cond.notify_all()

    session.add_status_listener(on_status)
    session.start(SYMBOLS, mode="full")
    try:
        for k in range(3):
            kite.send(frame(k, poison=k == 1))
        kite.wait_sent(3)
        last_sent = kite.sent[-1][0]
        # Quiet now: the clock thread moves the feed's clock on by wall time, a second or so
        # after the last frame was handled (later on a loaded machine: a status taken 1.5 s
        # after the send may come before it). Wait for a status that shows it moved on.
        # (The ltp ticks are stamped at receipt, just after last_sent: a clock a second past
        # that has moved by the quiet, not by a tick.)
        newest = max(max(t.time for t in sent_full), last_sent)
        with cond:
            moved = cond.wait_for(lambda: samples and samples[-1][1] >= newest + 1.0, 15)
        assert moved, f"the feed's clock never moved on from {newest}: {samples[-3:]}"
        for wall, clock in samples:
            assert clock <= wall + 0.5, f"the feed's clock ran {clock - wall:.1f} s ahead"
        for k in range(3, 5):
            kite.send(frame(k))
        kite.wait_sent(5)
        with cond:
            assert cond.wait_for(lambda: session._run.engine.counters.ticks >= 16, 10)
        counters = session._run.engine.counters
        assert (counters.future, counters.late, counters.bad) == (1, 0, 0)
        assert session._run.engine.tick_clock <= time.time()
    finally:
        session.stop()
    engine = session._run.engine
    # The equities' candles are the oracle's over the full packets sent, the poisoned one out.
    want = oracle(sent_full, [1], sessions={RELIANCE: (0, 86_400), INFY: (0, 86_400)})
    got = {}
    for token in (RELIANCE, INFY, NIFTY):
        for c in engine.history(token, 1) + [f for f in [engine.forming(token, 1)] if f]:
            got[(token, 1, c.start)] = (c.open, c.high, c.low, c.close, c.volume, c.oi, c.ticks,
                                        c.partial)
    assert {k: v for k, v in got.items() if k[0] != NIFTY} == want
    # The index's ltp ticks, stamped at receipt, are all in its candles, in order.
    nifty = sorted((k[2], v) for k, v in got.items() if k[0] == NIFTY)
    assert sum(v[6] for _, v in nifty) == len(sent_ltp)
    assert nifty[0][1][0] == sent_ltp[0] and nifty[-1][1][3] == sent_ltp[-1]
    assert max(v[1] for _, v in nifty) == max(sent_ltp)
    assert min(v[2] for _, v in nifty) == min(sent_ltp)


def test_a_standalone_standin_ahead_of_the_wall_clock_is_judged_by_its_own_clock(tmp_path):
    """`livecli sim` reached as Kite (credentials and URLs in the environment) may run a day
    ahead of the wall clock: its upgrade headers carry its clock, and the guard measures against
    that. By the wall clock, every one of its ticks would be years ahead and refused."""
    from livecli.sim import StandIn
    from tests.conftest import hermetic_env, run_livecli

    key, token = "standalone-key", "standalone-access-token-0123456789"
    with StandIn(api_key=key, access_token=token, seed=3, speed=60, date="2031-01-08") as s:
        env = hermetic_env(tmp_path, KITE_API_KEY=key, KITE_ACCESS_TOKEN=token,
                           LIVECLI_KITE_WS_URL=s.ws_url, LIVECLI_KITE_API_URL=s.api_url)
        r = run_livecli(["stream", "RELIANCE", "INFY", "--jsonl", "--duration", "4", "--db",
                         str(tmp_path / "s.db")], tmp_path, env, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    ticks = [o for o in lines if o["type"] == "tick"]
    final = [o for o in lines if o["type"] == "status"][-1]
    assert ticks and final["future_ticks"] == 0, final
    assert any(o["type"] == "candle" for o in lines)  # a minute a second: candles closed
    assert all(o["start"].startswith("2031-01-08") for o in lines
               if o["type"] == "candle" and o["origin"] == "live")
    # The warm start judged "today" by the advertised clock too: its history candles are of
    # the days before the stand-in's 2031-01-08, never of the wall clock's.
    hist = [o["start"][:10] for o in lines if o["type"] == "candle" and o["origin"] == "history"]
    assert all("2031-01-01" <= d <= "2031-01-08" for d in hist), sorted(set(hist))
