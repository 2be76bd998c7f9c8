"""`livecli serve`, the Live Data API, as its users use it: the real command in a subprocess
against the embedded stand-in, over loopback, with httpx (REST) and websockets clients.

What is held: every endpoint answers with the JSON lines' objects and its documented errors
(404 with the closest symbols, 422 bad interval, 409 not streaming, 503 feed down); the push
socket multiplexes; fifty clients at once where one never reads: it alone is dropped with close
code 1008 and the others get every tick; an attached `LiveSession` reconnects by itself when the server
is killed and restarted, and its candle-close callbacks equal the store's closed candles; the
API key is required off loopback (or with --require-key) and never printed whole; bad input
ends in one line with livecli's exit codes; SIGINT/SIGTERM stop cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli import assert_one_line_error
from tests.serve_server import ROOT, SIM_DATE, ServeProcess, serve_env, wait_for

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

TICK_FIELDS = ["type", "schema", "symbol", "exchange", "instrument_token", "last_price",
               "volume_traded", "exchange_timestamp", "received_at", "oi", "day_high", "day_low",
               "change_pct", "mode"]
CANDLE_FIELDS = ["type", "schema", "symbol", "instrument_token", "exchange", "interval", "start",
                 "open", "high", "low", "close", "volume", "oi", "ticks", "partial", "synthetic",
                 "closed", "origin"]


def run_cli(base: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livecli", *args], cwd=base, text=True,
                          capture_output=True, timeout=timeout, env=env or serve_env(base))


def get(srv: ServeProcess, path: str, **kw: Any) -> httpx.Response:
    return httpx.get(srv.api + path, timeout=30, **kw)


def error_of(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["schema"] == 1 and body["error"]["status"] == status, body
    assert body["error"]["code"] == code, body
    return body["error"]


def stored_candles(db: Path, closed: int = 1) -> dict[tuple[int, int, int], tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT instrument_token, interval_min, start, open, high, low, close, volume, "
            "COALESCE(oi, -1), ticks, partial, synthetic FROM candles WHERE closed = ?", (closed,)
        ).fetchall()
    finally:
        con.close()
    return {r[:3]: tuple(r[3:]) for r in rows}


def as_row(c: Any) -> tuple:
    return (c.open, c.high, c.low, c.close, c.volume, -1 if c.oi is None else c.oi, c.ticks,
            int(c.partial), int(c.synthetic))


# --- fast: the command's surface -----------------------------------------------------------------
def test_serve_help_loads_no_server_stack():
    probe = ("import sys\nfrom livecli.cli.app import main\n"
             "try:\n    main(['serve', '--help'])\nexcept SystemExit:\n    pass\n"
             "print('LOADED:' + ','.join(m for m in ('fastapi', 'uvicorn', 'starlette', 'httpx', "
             "'pandas', 'websockets', 'kiteconnect') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Serve one live session" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "LOADED:"


def test_auth_policy_and_key_file(tmp_path):
    from livecli.config import mask
    from livecli.errors import ConfigError
    from livecli.server.auth import AuthPolicy, is_loopback, key_file, policy_for, presented_key

    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "192.168.1.5", "10.0.0.1", "myhost.example"):
        assert not is_loopback(host), host

    assert not policy_for("127.0.0.1", tmp_path).required
    assert not key_file(tmp_path).exists()  # loopback makes no key
    first = policy_for("0.0.0.0", tmp_path)
    assert first.required and first.created and first.path == key_file(tmp_path)
    assert key_file(tmp_path).stat().st_mode & 0o777 == 0o600
    again = policy_for("192.168.1.5", tmp_path)
    assert again.key == first.key and not again.created
    assert policy_for("127.0.0.1", tmp_path, require=True).key == first.key
    assert first.masked == mask(first.key) and first.key not in first.masked

    assert first.allows(first.key) and not first.allows(None)
    assert not first.allows(first.key[:-1] + "x") and not first.allows("")
    assert AuthPolicy().allows(None)
    assert presented_key({"authorization": f"Bearer {first.key}"}, {}) == first.key
    assert presented_key({"authorization": "Basic abc"}, {"token": "t0k"}) == "t0k"
    assert presented_key({}, {}) is None

    os.chmod(key_file(tmp_path), 0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        policy_for("0.0.0.0", tmp_path)
    os.chmod(key_file(tmp_path), 0o600)
    key_file(tmp_path).write_text("short\n")
    with pytest.raises(ConfigError, match="empty or damaged"):
        policy_for("0.0.0.0", tmp_path)


def test_exposed_bind_without_a_usable_key_refuses_to_start(tmp_path):
    env = serve_env(tmp_path)
    data = tmp_path / "data"
    (data / "serve-api-key").write_text("k" * 43 + "\n")
    os.chmod(data / "serve-api-key", 0o644)
    r = run_cli(tmp_path, "serve", "--host", "0.0.0.0", "--port", "0", env=env)
    assert_one_line_error(r, 9, "readable by other users", "chmod 600")
    assert "k" * 43 not in r.stderr

    # A key that cannot be read (a folder in its place): refused, nothing bound.
    (data / "serve-api-key").unlink()
    (data / "serve-api-key").mkdir()
    r = run_cli(tmp_path, "serve", "--host", "0.0.0.0", "--port", "0", env=env)
    assert_one_line_error(r, 9, "cannot read the API key file", "delete it")


def test_bad_input_is_one_line_with_its_exit_code(tmp_path):
    r = run_cli(tmp_path, "serve", "--port", "70000")
    assert_one_line_error(r, 2, "--port 70000")
    r = run_cli(tmp_path, "serve", "--sim", "--mode", "fast")
    assert_one_line_error(r, 2, "--mode")
    r = run_cli(tmp_path, "serve", "--sim", "-i", "7x")
    assert_one_line_error(r, 3, "unknown interval")
    r = run_cli(tmp_path, "serve", "--sim", "--port", "0", "--sim-date", SIM_DATE, "NOPESYMBOL")
    assert_one_line_error(r, 7, "NOPESYMBOL")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        r = run_cli(tmp_path, "serve", "--port", str(busy.getsockname()[1]))
        assert_one_line_error(r, 2, "in use", "--port 0")
    finally:
        busy.close()


# --- the REST endpoints --------------------------------------------------------------------------
@pytest.mark.slow
def test_every_endpoint_and_its_errors(tmp_path):
    srv = ServeProcess(tmp_path, "RELIANCE", "INFY", "NSE:NIFTY 50", "-i", "5min")
    try:
        st = wait_for(lambda: (s := get(srv, "/status").json())["state"] == "connected"
                      and s["symbols"]["INFY"]["ticks"] > 0 and s)
        assert st["type"] == "status" and st["schema"] == 1 and st["source"] == "SIMULATED"
        assert st["intervals"] == ["1min", "5min"] and st["server"]["auth"] is False
        assert set(st["symbols"]) == {"RELIANCE", "INFY", "NIFTY 50"}

        r = get(srv, "/tick/latest/INFY")
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["schema"], body["symbol"], body["exchange"]) == (1, "INFY", "NSE")
        tick = body["tick"]
        assert list(tick) == TICK_FIELDS and tick["type"] == "tick" and tick["mode"] == "full"
        assert tick["received_at"].endswith("+05:30") and tick["exchange_timestamp"].startswith(SIM_DATE)
        idx = get(srv, "/tick/latest/NSE%3ANIFTY%2050").json()
        assert idx["symbol"] == "NIFTY 50" and idx["tick"]["volume_traded"] is None

        cur = get(srv, "/candle/current/INFY", params={"interval": "5min"}).json()
        assert list(cur["candle"]) == CANDLE_FIELDS and cur["candle"]["closed"] is False
        assert cur["interval"] == "5min" and cur["candle"]["start"].endswith("+05:30")

        # History: closed 1-minute candles, and a derived interval the session does not build.
        wait_for(lambda: len(get(srv, "/candles/INFY", params={"interval": "1min"}).json()["candles"]) >= 3)
        h = get(srv, "/candles/INFY", params={"interval": "1min", "count": 3}).json()
        assert h["derived"] is False and len(h["candles"]) == 3
        assert all(list(c) == CANDLE_FIELDS and c["closed"] for c in h["candles"])
        with_cur = get(srv, "/candles/INFY", params={"interval": "1min", "count": 2,
                                                      "include_current": "true"}).json()["candles"]
        assert with_cur[-1]["closed"] is False and with_cur[0]["closed"] is True
        both = get(srv, "/candles/INFY", params={"interval": "1min", "count": 1000}).json()["candles"]
        two = get(srv, "/candles/INFY", params={"interval": "2min", "count": 1000}).json()
        assert two["derived"] is True and two["interval"] == "2min"
        for c in two["candles"]:  # each closed 2-minute candle is its two closed minutes
            parts = [m for m in both if m["start"] >= c["start"]][:2]
            assert c["open"] == parts[0]["open"] and c["close"] == parts[-1]["close"]
            assert c["volume"] == sum(m["volume"] for m in parts), (c, parts)
            assert c["high"] == max(m["high"] for m in parts) and c["closed"]

        # The errors, each with its status, code and a fix.
        e404 = error_of(get(srv, "/tick/latest/INFYY"), 404, "unknown_symbol")
        assert "INFY" in e404["matches"] and "POST /api/live/subscribe" in e404["message"]
        error_of(get(srv, "/candles/INFY", params={"interval": "7x"}), 422, "bad_interval")
        error_of(get(srv, "/candles/INFY", params={"interval": "400min"}), 422, "bad_interval")
        nb = error_of(get(srv, "/candle/current/INFY", params={"interval": "2min"}), 422,
                      "bad_interval")
        assert "--interval 2min" in nb["message"]
        error_of(get(srv, "/candles/INFY", params={"count": -1}), 422, "invalid_request")
        error_of(get(srv, "/no/such/route"), 404, "not_found")
        error_of(httpx.put(srv.api + "/stop"), 405, "method_not_allowed")
        error_of(httpx.post(srv.api + "/start", json={}), 422, "invalid_request")
        error_of(httpx.post(srv.api + "/start", content=b"{not json"), 422, "invalid_request")
        error_of(httpx.post(srv.api + "/start", json={"symbols": ["INFY"], "mode": "ltp"}), 409,
                 "mode_conflict")
        unknown = error_of(httpx.post(srv.api + "/subscribe", json={"symbol": "TCSS"}, timeout=30),
                           404, "unknown_symbol")
        assert "NSE:TCS" in unknown["matches"], unknown
        ctl = error_of(get(srv, "/tick/latest/A%01B"), 422, "invalid_request")
        assert "\x01" not in ctl["message"]
        origin = httpx.get(srv.api + "/status", headers={"Origin": "https://evil.example"})
        error_of(origin, 403, "origin")

        # Control: subscribe, its ticks arrive, unsubscribe; start adds to what streams.
        sub = httpx.post(srv.api + "/subscribe", json={"symbol": "TCS"}, timeout=30).json()
        assert sub["added"] is True and sub["symbol"] == "TCS" and sub["exchange"] == "NSE"
        again = httpx.post(srv.api + "/subscribe", json={"symbol": "NSE:TCS"}, timeout=30).json()
        assert again["added"] is False and again["instrument_token"] == sub["instrument_token"]
        wait_for(lambda: get(srv, "/tick/latest/TCS").json()["tick"])
        gone = httpx.delete(srv.api + "/unsubscribe/TCS", timeout=30).json()
        assert gone["removed"] is True and gone["instrument_token"] == sub["instrument_token"]
        error_of(httpx.delete(srv.api + "/unsubscribe/TCS", timeout=30), 404, "unknown_symbol")
        more = httpx.post(srv.api + "/start", json={"symbols": ["INFY", "SBIN"]}, timeout=30).json()
        assert more["started"] is False and more["added"] == ["SBIN"] and "NSE:SBIN" in more["symbols"]

        # Stop: live reads are 409, history stays; start again.
        stopped = httpx.post(srv.api + "/stop", timeout=60).json()
        assert stopped["state"] == "stopped" and stopped["candles_stored"] > 0
        error_of(get(srv, "/tick/latest/INFY"), 409, "not_streaming")
        error_of(httpx.post(srv.api + "/stop", timeout=30), 409, "not_streaming")
        error_of(httpx.post(srv.api + "/subscribe", json={"symbol": "TCS"}), 409, "not_streaming")
        assert get(srv, "/candles/INFY", params={"interval": "1min"}).json()["candles"]
        restarted = httpx.post(srv.api + "/start", json={"symbols": ["INFY"], "mode": "ltp"},
                               timeout=60).json()
        assert restarted["started"] is True and restarted["mode"] == "ltp"
        wait_for(lambda: (get(srv, "/tick/latest/INFY").json().get("tick") or {}).get("mode") == "ltp")

        docs = httpx.get(srv.url + "/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        spec = httpx.get(srv.url + "/openapi.json").json()
        for path in ("/start", "/stop", "/subscribe", "/unsubscribe/{symbol}",
                     "/candle/current/{symbol}", "/candles/{symbol}", "/tick/latest/{symbol}",
                     "/status"):
            assert f"/api/live{path}" in spec["paths"], path
    finally:
        rc = srv.signal(signal.SIGINT)
    assert rc == 0, srv.stderr()
    assert "livecli: stopped by signal;" in srv.stderr() and "Traceback" not in srv.stderr()


@pytest.mark.slow
def test_feed_down_is_503_with_retry_after(tmp_path, monkeypatch):
    """In this process: a session on a stand-in of the test's own, which then goes away."""
    from livecli.server.runner import ServeOptions, ServeRunner
    from livecli.session.live import LiveSession
    from livecli.sim import StandIn

    for var in list(os.environ):
        if var.startswith(("KITE_", "LIVECLI_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("LIVECLI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIVECLI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    standin = StandIn(speed=60, date=SIM_DATE).start()
    overrides = {"kite.api_key": standin.api_key, "kite.access_token": standin.access_token,
                 "kite.ws_url": standin.ws_url, "kite.api_url": standin.api_url,
                 "stream.watchdog_s": 1.0}
    session = LiveSession(source="kite", db=False, overrides=overrides)
    runner = ServeRunner(session, session.settings,
                         ServeOptions(port=0, symbols=("INFY",)))
    listening = threading.Event()
    thread = threading.Thread(target=runner.run, kwargs={"announce": lambda _r: listening.set()},
                              daemon=True)
    thread.start()
    try:
        assert listening.wait(60)
        api = f"{runner.url}/api/live"
        wait_for(lambda: httpx.get(f"{api}/tick/latest/INFY").json().get("tick"))
        standin.stop()  # Kite goes away: the feed reconnects, and keeps failing to
        r = wait_for(lambda: (x := httpx.get(f"{api}/tick/latest/INFY")).status_code == 503 and x)
        err = error_of(r, 503, "feed_down")
        assert "retry" in err["message"] and int(r.headers["Retry-After"]) >= 1
        error_of(httpx.get(f"{api}/candle/current/INFY"), 503, "feed_down")
        assert httpx.get(f"{api}/candles/INFY").status_code == 200  # history stays readable
        assert httpx.get(f"{api}/status").json()["state"] in ("reconnecting", "connecting", "stale")
    finally:
        runner.shutdown()
        thread.join(30)
        standin.stop()
    assert not thread.is_alive() and not session.running


# --- push ------------------------------------------------------------------------------------------
async def _recv_json(ws: Any, timeout: float = 20.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _until(ws: Any, pred: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = await _recv_json(ws, max(0.1, deadline - time.monotonic()))
        if pred(msg):
            return msg


@pytest.mark.slow
def test_websocket_streams_and_actions(tmp_path):
    srv = ServeProcess(tmp_path, "RELIANCE", "INFY", "NSE:NIFTY 50")

    async def main() -> None:
        with pytest.raises(InvalidStatus) as foreign:  # a web page elsewhere cannot listen in
            await ws_connect(f"{srv.ws}/ws", origin="https://evil.example")
        assert foreign.value.response.status_code == 403
        async with ws_connect(f"{srv.ws}/ws/ticks/INFY") as ws:
            msg = await _recv_json(ws)
            assert msg["type"] == "ticks" and msg["schema"] == 1
            assert {t["symbol"] for t in msg["data"]} == {"INFY"}
            assert list(msg["data"][0]) == TICK_FIELDS
        async with ws_connect(f"{srv.ws}/ws/ticks/INFYY") as ws:
            err = await _recv_json(ws)
            assert err["type"] == "error" and err["status"] == 404 and "INFY" in err["matches"]
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4404
        async with ws_connect(f"{srv.ws}/ws/candles/INFY?interval=2min") as ws:
            await _recv_json(ws)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4422
        async with ws_connect(f"{srv.ws}/ws/candles/NSE%3AINFY?interval=1min") as ws:
            first = await _recv_json(ws)  # the forming candle at once
            assert first["type"] == "candles" and first["data"][0]["closed"] is False
            closed_c = (await _until(ws, lambda m: any(c["closed"] for c in m["data"])))["data"]
            assert {c["symbol"] for c in closed_c} == {"INFY"}
            assert list(closed_c[0]) == CANDLE_FIELDS

        async with ws_connect(f"{srv.ws}/ws") as ws:
            await ws.send("{nope")
            assert (await _recv_json(ws))["code"] == "bad_request"
            await ws.send(json.dumps({"action": "subscribe", "ticks": ["RELIANC"]}))
            e = await _recv_json(ws)
            assert (e["type"], e["status"]) == ("error", 404) and "RELIANCE" in e["matches"]
            await ws.send(json.dumps({"action": "subscribe", "candles": {"7x": ["INFY"]}}))
            assert (await _recv_json(ws))["code"] == "bad_interval"
            await ws.send(json.dumps({"action": "ping"}))
            assert (await _recv_json(ws))["type"] == "pong"
            await ws.send(json.dumps({"action": "subscribe", "ticks": ["NSE:NIFTY 50"],
                                      "candles": {"1min": ["*"]}, "status": True}))
            ok = await _until(ws, lambda m: m["type"] == "subscribed")
            assert ok["ticks"] == ["NSE:NIFTY 50"] and ok["candles"] == {"1min": ["*"]}
            seen: dict[str, set] = {"ticks": set(), "closes": set(), "status": set()}
            deadline = time.monotonic() + 30
            while not all(seen.values()):
                assert time.monotonic() < deadline, seen
                m = await _recv_json(ws)
                if m["type"] == "ticks":
                    seen["ticks"] |= {t["symbol"] for t in m["data"]}
                elif m["type"] == "candles":
                    seen["closes"] |= {c["symbol"] for c in m["data"] if c["closed"]}
                elif m["type"] == "status":
                    assert m["schema"] == 1 and "server" in m
                    seen["status"].add(m["state"])
            assert seen["ticks"] == {"NIFTY 50"}
            await ws.send(json.dumps({"action": "unsubscribe", "ticks": ["NSE:NIFTY 50"],
                                      "candles": {"1min": ["*"]}, "status": True}))
            done = await _until(ws, lambda m: m["type"] == "subscribed")
            assert done["ticks"] == [] and done["candles"] == {} and done["status"] is False

    try:
        asyncio.run(main())
    finally:
        assert srv.signal(signal.SIGTERM) == 0, srv.stderr()


FIFTY_SYMBOLS = ["RELIANCE", "HDFCBANK", "ICICIBANK", "INFY", "TCS", "SBIN", "BHARTIARTL", "ITC",
                 "TATASTEEL", "LT", "KOTAKBANK", "AXISBANK", "HINDUNILVR", "BAJFINANCE", "MARUTI",
                 "WIPRO", "TITAN", "NTPC", "ONGC", "NSE:NIFTY 50"]


@pytest.mark.slow
@pytest.mark.serial  # fifty clients on this machine's two cores
def test_fifty_clients_one_never_reads(tmp_path):
    """The slow client alone is dropped (1008, counted); the other 49 get every message.

    Clients with one subscription get the very same message strings, so the fast ones compare
    what they received as text: over the stretch all of them were connected (the drop inside
    it), each has exactly the reference sequence, nothing missing, nothing extra.
    """
    srv = ServeProcess(tmp_path, *FIFTY_SYMBOLS,
                       env=serve_env(tmp_path, LIVECLI_SERVE_CLIENT_QUEUE="16"))
    subscribe = json.dumps({"action": "subscribe", "ticks": ["*"]})

    async def fast(got: list, ready: asyncio.Event, stop: asyncio.Event) -> None:
        async with ws_connect(f"{srv.ws}/ws", max_size=None, ping_interval=None) as ws:
            await ws.send(subscribe)
            await _until(ws, lambda m: m["type"] == "subscribed")
            ready.set()
            while not stop.is_set():
                try:
                    got.append((time.time(), await asyncio.wait_for(ws.recv(), 0.5)))
                except TimeoutError:
                    continue

    async def main() -> tuple[list[list], float, Any, dict]:
        stop = asyncio.Event()
        readies = [asyncio.Event() for _ in range(49)]
        gots: list[list] = [[] for _ in range(49)]
        tasks = [asyncio.create_task(fast(gots[i], readies[i], stop)) for i in range(49)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
        # The slow one: a tiny receive window, and it never reads after subscribing.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(srv.url.rsplit(":", 1)[1])))
        slow = await ws_connect(f"{srv.ws}/ws", sock=sock, max_queue=1, max_size=None,
                                ping_interval=None)
        await slow.send(json.dumps({"action": "subscribe", "ticks": ["*"],
                                    "candles": {"1min": ["*"]}, "status": True}))
        await asyncio.to_thread(wait_for, lambda: httpx.get(srv.api + "/status").json()
                                ["server"]["clients_dropped"], 60)
        t_drop = time.time()
        await asyncio.sleep(1.5)  # the others go on after the drop
        stats = (await asyncio.to_thread(httpx.get, srv.api + "/status")).json()["server"]
        stop.set()
        await asyncio.gather(*tasks)
        # Reading now, the slow client finds what its socket held, then the close.
        closed = None
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 30)
        except ConnectionClosed as exc:
            closed = exc.rcvd
        return gots, t_drop, closed, stats

    try:
        gots, t_drop, closed, stats = asyncio.run(main())
    finally:
        assert srv.signal(signal.SIGTERM) == 0, srv.stderr()
    assert closed is not None and closed.code == 1008 and "too slow" in closed.reason, closed
    assert stats["clients_dropped"] == 1 and stats["clients"] == 49, stats
    texts = [[m for _, m in g] for g in gots]
    common = set(texts[0]).intersection(*texts[1:])
    ref = [m for m in texts[0] if m in common]
    for t in texts:
        first, last = t.index(ref[0]), t.index(ref[-1])
        assert t[first:last + 1] == ref  # the same messages, none missing, in the same order
    spans = [at for at, m in gots[0] if m in common]
    assert spans[0] < t_drop < spans[-1], "the shared stretch must cover the drop"
    ticks = [t for m in ref for t in json.loads(m)["data"]]
    assert len(ticks) > 200 and len({t["symbol"] for t in ticks}) == len(FIFTY_SYMBOLS)
    per_token: dict[int, list] = {}
    for t in ticks:
        per_token.setdefault(t["instrument_token"], []).append(t["volume_traded"])
    for vols in per_token.values():  # nothing skipped: cumulative volume never goes back
        known = [v for v in vols if v is not None]
        assert known == sorted(known)


# --- RemoteSession -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_remote_session_reconnects_and_its_closes_equal_the_store(tmp_path):
    from livecli.session.live import LiveSession
    from livecli.session.remote import RemoteSession

    first = ServeProcess(tmp_path, "--db", str(tmp_path / "one.db"))
    port = int(first.url.rsplit(":", 1)[1])
    remote = LiveSession.attach(first.url, reconnect_max_delay_s=0.5)
    assert isinstance(remote, RemoteSession)
    closes: list[tuple[int, Any]] = []
    ticks: list[dict] = []
    lock = threading.Condition()

    def on_close(token: int, candle: Any) -> None:
        with lock:
            closes.append((token, candle))
            lock.notify_all()

    def on_tick(t: dict) -> None:
        with lock:
            ticks.append(t)
            lock.notify_all()

    def until(pred: Any, timeout: float = 60) -> None:
        with lock:
            assert lock.wait_for(pred, timeout), (len(ticks), len(closes), remote.last_error)

    second = None
    try:
        remote.start(["RELIANCE", "INFY"])
        remote.on_candle_close("1min", on_close)
        remote.on_tick("INFY", on_tick)
        until(lambda: len(closes) >= 2 and len(ticks) >= 5)
        assert {t["symbol"] for t in ticks} == {"INFY"}
        assert set(ticks[0]) >= {"symbol", "last_price", "volume_traded", "time", "received_at"}
        df = remote.get_candles("INFY", "1min", count=5)
        assert list(df.columns)[:5] == ["symbol", "instrument_token", "exchange", "interval", "start"]
        assert str(df["start"].dt.tz) in ("UTC+05:30", "pytz.FixedOffset(330)")
        assert remote.get_current_candle("INFY")["closed"] is False
        assert remote.get_latest_tick("RELIANCE")["symbol"] == "RELIANCE"
        assert remote.token_of("NSE:INFY") == 408065 and remote.status()["state"] == "connected"

        first.kill()  # SIGKILL: the server is gone without a word
        wait_for(lambda: not remote.connected.is_set(), 30)
        away = remote.live_status()  # what a dashboard shows meanwhile: no request, why
        assert away.state == "reconnecting" and remote.url in away.last_error
        with lock:
            ticks.clear()
            closes.clear()
        # The new server starts idle: the client starts its symbols again by itself.
        second = ServeProcess(tmp_path, "--db", str(tmp_path / "two.db"), port=port)
        until(lambda: len(closes) >= 4 and len(ticks) >= 5)
        assert remote.connects == 2
        remote.stop_streaming()  # every candle the stop closes is pushed too
        db = tmp_path / "two.db"
        want = stored_candles(db)
        until(lambda: {(c.instrument_token, c.interval_min, c.start) for _, c in closes}
              >= {k for k in want if k[1] == 1}, 30)
    finally:
        remote.stop()
        first.kill()
        if second is not None:
            assert second.signal(signal.SIGTERM) == 0, second.stderr()
    got = {(c.instrument_token, c.interval_min, c.start): as_row(c) for _, c in closes}
    one_minute = {k: v for k, v in stored_candles(db).items() if k[1] == 1}
    assert got == one_minute and len(got) >= 4
    assert all(tok == c.instrument_token and c.closed for tok, c in closes)


# --- the API key -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_server_that_requires_its_key(tmp_path):
    srv = ServeProcess(tmp_path, "INFY", "--require-key")
    try:
        key = (tmp_path / "data" / "serve-api-key").read_text().strip()
        assert key not in srv.stderr() and "API key required" in srv.stderr()
        error_of(get(srv, "/status"), 401, "unauthorized")
        error_of(get(srv, "/status", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        assert get(srv, "/status", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert get(srv, "/status", params={"token": key}).status_code == 200
        assert httpx.get(srv.url + "/openapi.json").status_code == 200  # the docs are public

        async def main() -> None:
            with pytest.raises(InvalidStatus) as refused:
                await ws_connect(f"{srv.ws}/ws")
            assert refused.value.response.status_code == 403
            async with ws_connect(f"{srv.ws}/ws/ticks/INFY?token={key}") as ws:
                assert (await _recv_json(ws))["type"] == "ticks"

        asyncio.run(main())
    finally:
        assert srv.signal(signal.SIGTERM) == 0
    assert key not in srv.stderr()
