"""The feed on a real NATS JetStream server: what is published, consumed, and kept through
restarts of the server and of the publisher. Skipped where `nats-server` is not installed."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter

import pytest

from tests.nats_server import closed_candle_key, nats_server, needs_nats, read_stream
from tests.sim_proc import Proc, clean_env

__all__ = ["nats_server"]
SIM_DATE = "2025-12-10"
SYMBOLS = ["RELIANCE", "NIFTY 50"]
pytestmark = [needs_nats]


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _stream(tmp_path, url, *extra, name="pub", duration="8"):
    out = tmp_path / f"{name}.jsonl"
    base = tmp_path / name
    base.mkdir(exist_ok=True)
    proc = Proc(base, "stream", *SYMBOLS, "--sim", "--speed", "60", "--sim-date", SIM_DATE,
                "--jsonl", "--duration", duration, "--db", str(base / "store.db"),
                "--publish", url, *extra, env=clean_env(base), stdout_file=out)
    return proc, out, base / "store.db"


def _wait(proc, timeout=90):
    rc = proc.proc.wait(timeout)
    assert rc == 0, proc.stderr()
    return rc


@pytest.mark.slow
def test_what_a_stream_publishes_equals_its_store_and_its_json_lines(tmp_path, nats_server):
    proc, out, db = _stream(tmp_path, nats_server.url, "--interval", "5min")
    _wait(proc)
    lines = _jsonl(out)
    msgs = read_stream(nats_server.url)
    # Ticks: the same objects, in the same order, on the documented subjects, with the schema.
    ticks = [(s, d) for s, d, _ in msgs if s.startswith("livecli.ticks.")]
    line_ticks = [d for d in lines if d["type"] == "tick"]
    assert line_ticks and len(ticks) == len(line_ticks)
    for (subject, d), line in zip(ticks, line_ticks, strict=True):
        assert d.pop("schema") == 1 and d == line
        assert subject == "livecli.ticks.NSE." + line["symbol"].replace(" ", "_")
    assert {s for s, _ in ticks} == {"livecli.ticks.NSE.RELIANCE", "livecli.ticks.NSE.NIFTY_50"}
    # Closed candles: each once, with its message id, equal to the JSON lines' and the store's.
    closed = [(s, d, h) for s, d, h in msgs if s.startswith("livecli.candles.") and d["closed"]]
    assert all(h["Nats-Msg-Id"].startswith("c:") for _, _, h in closed)
    assert len({h["Nats-Msg-Id"] for _, _, h in closed}) == len(closed)
    by_key = {closed_candle_key(d): {k: v for k, v in d.items() if k != "schema"}
              for _, d, _ in closed}
    line_candles = {closed_candle_key(d): d for d in lines if d["type"] == "candle"}
    assert by_key == line_candles and any(k[1] == "5min" for k in by_key)
    for s, d, _ in closed:
        assert s == f"livecli.candles.{d['interval']}.NSE.{d['symbol'].replace(' ', '_')}"
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        stored = con.execute("SELECT COUNT(*) FROM candles WHERE closed = 1").fetchone()[0]
    assert stored == len(by_key)
    # Forming updates (not closed, no id) and the status, whose last says stopped.
    assert any(not d["closed"] for s, d, _ in msgs if s.startswith("livecli.candles."))
    status = [d for s, d, _ in msgs if s == "livecli.status"]
    assert status[-1]["state"] == "stopped" and status[-1]["schema"] == 1
    pub = status[-1]["publish"]
    assert pub["ticks_dropped"] == 0 and pub["candles_dropped"] == 0
    assert pub["stream"] == "LIVECLI"


@pytest.mark.slow
def test_a_consumer_gets_the_publishers_candles_live_and_from_history(tmp_path, nats_server):
    from livecli.session.live import LiveSession

    proc, out, _ = _stream(tmp_path, nats_server.url, duration="10")
    base = tmp_path / "consumer"
    base.mkdir()
    # Live: the CLI attached while the feed runs (it starts once the stream exists).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            read_stream(nats_server.url, timeout=1)
            break
        except Exception:
            time.sleep(0.2)
    live_out = tmp_path / "attached.jsonl"
    consumer = Proc(base, "stream", "--attach", nats_server.url, "RELIANCE", "--jsonl",
                    "--duration", "30", env=clean_env(base), stdout_file=live_out)
    _wait(proc)
    lines = _jsonl(out)
    published = {closed_candle_key(d): d for d in lines if d["type"] == "candle"}
    # From history, in this process: LiveSession.attach gives the publisher's candles.
    got: list = []
    s = LiveSession.attach(nats_server.url, start=False)
    s.on_candle_close("1min", lambda tok, c: got.append(c))
    s.start()
    try:
        deadline = time.monotonic() + 20
        while len(got) < len(published) and time.monotonic() < deadline:
            time.sleep(0.1)
        df = s.get_candles("RELIANCE", "1min", count=1000)
        assert s.live_status().state == "stopped"  # the publisher's last word
    finally:
        s.stop()
    mine = {(c.instrument_token, c.interval, c.to_dict()["start"]): {"type": "candle", **c.to_dict()}
            for c in got}
    assert mine == published
    assert len(df) == sum(1 for d in published.values() if d["symbol"] == "RELIANCE")
    consumer.proc.send_signal(signal.SIGINT)
    assert consumer.proc.wait(30) == 0, consumer.stderr()
    attached = _jsonl(live_out)
    seen = {closed_candle_key(d): {k: v for k, v in d.items() if k != "schema"}
            for d in attached if d["type"] == "candle" and d["closed"]}
    rel = {k: v for k, v in published.items() if v["symbol"] == "RELIANCE"}
    assert seen == rel  # history first, then live: every RELIANCE candle, no other
    assert any(d["type"] == "tick" and d["symbol"] == "RELIANCE" for d in attached)
    assert not any(d.get("symbol") == "NIFTY 50" for d in attached)


@pytest.mark.slow
def test_the_nats_server_restarted_mid_stream_loses_no_closed_candle(tmp_path, nats_server):
    proc, out, _ = _stream(tmp_path, nats_server.url, duration="14")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and out.stat().st_size < 20_000:
        time.sleep(0.1)
    nats_server.restart(down_s=2.0)
    _wait(proc)
    lines = _jsonl(out)
    published = {closed_candle_key(d) for d in lines if d["type"] == "candle"}
    msgs = read_stream(nats_server.url)
    stored = [closed_candle_key(d) for s, d, _ in msgs
              if s.startswith("livecli.candles.") and d["closed"]]
    assert published and set(stored) == published
    assert max(Counter(stored).values()) == 1
    final = [d for d in lines if d["type"] == "status"][-1]["publish"]
    assert final["reconnects"] >= 1 and final["candles_dropped"] == 0


@pytest.mark.slow
def test_a_publisher_killed_and_restarted_publishes_no_closed_candle_twice(tmp_path, nats_server):
    first, out1, _ = _stream(tmp_path, nats_server.url, name="first", duration="60")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(
            1 for line in out1.read_text().splitlines() if '"type": "candle"' in line) < 4:
        time.sleep(0.1)
    first.proc.send_signal(signal.SIGKILL)  # no clean stop: whatever was in flight is lost
    first.proc.wait(10)
    # The same simulated day again: the same candles close again, with the same ids.
    second, out2, _ = _stream(tmp_path, nats_server.url, name="second", duration="8")
    _wait(second)
    msgs = read_stream(nats_server.url)
    stored = Counter(closed_candle_key(d) for s, d, _ in msgs
                     if s.startswith("livecli.candles.") and d["closed"])
    assert stored and max(stored.values()) == 1
    again = {closed_candle_key(d) for d in _jsonl(out2) if d["type"] == "candle"}
    assert again <= set(stored)
    final = [d for d in _jsonl(out2) if d["type"] == "status"][-1]["publish"]
    assert final["candles_duplicate"] >= 1  # JetStream refused the second copies


@pytest.mark.slow
@pytest.mark.serial  # its bound is the publisher's lag, which a busy machine stretches
def test_a_slow_consumer_never_slows_the_publisher(tmp_path, nats_server, monkeypatch):
    from livecli.session.live import LiveSession

    for name, value in clean_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    pub = LiveSession(source="sim", db=False, speed=60, sim_date=SIM_DATE)
    publication = pub.publish(nats_server.url)
    received = [0]
    pub.add_frame_listener(lambda frame, at: received.__setitem__(0, received[0] + len(frame)))
    slow_seen = [0]
    gate = threading.Event()

    def slow(tick):
        slow_seen[0] += 1
        gate.wait(0.05)  # a strategy far slower than the feed

    consumer = LiveSession.attach(nats_server.url, start=False)
    consumer.on_tick(None, slow)
    consumer.start()
    pub.start([*SYMBOLS, "INFY", "TCS", "HDFCBANK"])
    try:
        lag = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            lag.append(publication.stats().lag_s)
            time.sleep(0.25)
    finally:
        pub.stop()
        publication.close(pub.live_status())
        consumer.stop()
    stats = publication.stats()
    assert stats.ticks_published == received[0] > 0
    assert stats.ticks_dropped == 0 and stats.candles_dropped == 0
    assert max(lag) < 1.0, lag
    assert slow_seen[0] < received[0] / 2  # the consumer really was behind
    print(f"published {stats.ticks_published}, slow consumer handled {slow_seen[0]}",
          file=sys.stderr)


def _collect(url, want, **options):
    """Closed candles a consumer gets (keys), until `want` of them or 20 s."""
    from livecli.session.live import LiveSession

    got: list = []
    s = LiveSession.attach(url, start=False, **options)
    s.on_candle_close("1min", lambda tok, c: got.append(c))
    s.start()
    try:
        deadline = time.monotonic() + 20
        while len(got) < want and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # anything more would come now
    finally:
        s.stop()
    return [(c.instrument_token, c.interval, c.to_dict()["start"]) for c in got]


@pytest.mark.slow
def test_a_durable_consumer_resumes_where_it_stopped(tmp_path, nats_server):
    first, out1, _ = _stream(tmp_path, nats_server.url, name="day1", duration="5")
    _wait(first)
    day1 = [closed_candle_key(d) for d in _jsonl(out1) if d["type"] == "candle"]
    assert _collect(nats_server.url, len(day1), durable="strategy-1") == day1
    # The strategy is away while the feed goes on (the next simulated day).
    proc = Proc(tmp_path / "day2", "stream", *SYMBOLS, "--sim", "--speed", "60", "--sim-date",
                "2025-12-11", "--jsonl", "--duration", "5", "--db", str(tmp_path / "d2.db"),
                "--publish", nats_server.url, env=clean_env(tmp_path / "day2"),
                stdout_file=tmp_path / "day2.jsonl")
    _wait(proc)
    day2 = [closed_candle_key(d) for d in _jsonl(tmp_path / "day2.jsonl") if d["type"] == "candle"]
    assert day2 and not set(day2) & set(day1)
    # Back under the same name: only what it missed. Without a name: everything the stream has.
    assert _collect(nats_server.url, len(day2), durable="strategy-1") == day2
    assert sorted(_collect(nats_server.url, len(day1) + len(day2))) == sorted(day1 + day2)


@pytest.mark.slow
def test_serve_publishes_and_the_publish_section_sets_the_stream(tmp_path, nats_server):
    import asyncio

    from tests.serve_server import ServeProcess

    srv = ServeProcess(tmp_path, "RELIANCE", "--publish", nats_server.url, "--duration", "4")
    assert srv.proc.wait(60) == 0, srv.stderr()
    msgs = read_stream(nats_server.url)
    assert any(s == "livecli.ticks.NSE.RELIANCE" for s, _, _ in msgs)
    assert any(h.get("Nats-Msg-Id") for s, _, h in msgs if s.startswith("livecli.candles."))
    # The config file alone: its stream name and limits make the stream (after the first one
    # is gone: JetStream refuses two streams capturing the same subjects).
    async def nats_call(fn):
        import nats

        nc = await nats.connect(nats_server.url)
        try:
            return await fn(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(nats_call(lambda js: js.delete_stream("LIVECLI")))
    base = tmp_path / "cfg"
    base.mkdir()
    (base / "livecli.toml").write_text(
        f'[publish]\nurl = "{nats_server.url}"\nstream = "FEED_2"\nmax_age_s = 3600\n'
        "max_bytes = 10000000\n")
    proc = Proc(base, "stream", "RELIANCE", "--sim", "--speed", "60", "--sim-date", SIM_DATE,
                "--jsonl", "--duration", "3", "--db", str(base / "s.db"), env=clean_env(base),
                stdout_file=base / "out.jsonl")
    _wait(proc)
    got = asyncio.run(nats_call(lambda js: js.stream_info("FEED_2")))
    assert got.config.max_age == 3600 and got.config.max_bytes == 10_000_000
    assert got.state.messages > 0
    # A second publisher with the default stream finds FEED_2 capturing livecli.>: one line
    # that names it and the fix (it was a generic "start nats-server" advice), exit 14.
    other = tmp_path / "other"
    other.mkdir()
    args = ("stream", "RELIANCE", "--sim", "--speed", "60", "--sim-date", SIM_DATE, "--jsonl",
            "--duration", "2", "--db", str(other / "s.db"), "--publish", nats_server.url)
    refused = Proc(other, *args, env=clean_env(other), stdout_file=other / "out.jsonl")
    assert refused.proc.wait(60) == 14
    err = refused.stderr().strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "stream FEED_2 there already captures livecli.>" in err
    assert '[publish] stream = "FEED_2" (or LIVECLI_PUBLISH_STREAM=FEED_2)' in err
    # And the advice works: published into FEED_2.
    before = got.state.messages
    taken = Proc(other, *args, env={**clean_env(other), "LIVECLI_PUBLISH_STREAM": "FEED_2"},
                 stdout_file=other / "out2.jsonl")
    _wait(taken)
    assert asyncio.run(nats_call(lambda js: js.stream_info("FEED_2"))).state.messages > before
    # A stream holding only part of livecli.> cannot be published into: the advice differs.
    from nats.js.api import StreamConfig

    asyncio.run(nats_call(lambda js: js.delete_stream("FEED_2")))
    asyncio.run(nats_call(lambda js: js.add_stream(StreamConfig(name="PART",
                                                                subjects=["livecli.ticks.>"]))))
    part = Proc(other, *args, env=clean_env(other), stdout_file=other / "out3.jsonl")
    assert part.proc.wait(60) == 14
    err = part.stderr().strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "stream PART there holds part of livecli.> (livecli.ticks.>)" in err
    assert "nats stream rm PART" in err and "[publish] stream" not in err


@pytest.mark.slow
def test_the_dashboard_shows_an_attached_feed(tmp_path, nats_server):
    import io

    from rich.console import Console

    from livecli.core.intervals import parse_interval
    from livecli.dashboard.builder import SnapshotBuilder
    from livecli.dashboard.render import render
    from livecli.session.live import LiveSession

    proc, out, _ = _stream(tmp_path, nats_server.url, duration="4")
    _wait(proc)
    closes = [d for d in _jsonl(out) if d["type"] == "candle" and d["symbol"] == "RELIANCE"]
    s = LiveSession.attach(nats_server.url, ["RELIANCE"])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and s.candles < len(closes):
            time.sleep(0.1)
        snap = SnapshotBuilder(s, parse_interval("1min"), title="attached")()
        screen = io.StringIO()
        Console(file=screen, width=160).print(render(snap))
    finally:
        s.stop()
    assert "RELIANCE" in screen.getvalue()
    assert [r.symbol for r in snap.rows] == ["RELIANCE"]
    assert snap.rows[0].closes[-len(closes):] == [c["close"] for c in closes]
    assert snap.connection.state == "stopped"  # the publisher's last status


@pytest.mark.slow
def test_an_attached_stream_keeps_a_store_only_when_asked(tmp_path, nats_server):
    proc, out, _ = _stream(tmp_path, nats_server.url, duration="4")
    _wait(proc)
    published = {closed_candle_key(d) for d in _jsonl(out) if d["type"] == "candle"}
    base = tmp_path / "mine"
    base.mkdir()
    env = clean_env(base)
    consumer = Proc(base, "stream", "--attach", nats_server.url, "--jsonl", "--duration", "4",
                    "--db", str(base / "mine.db"), env=env, stdout_file=base / "out.jsonl")
    assert consumer.proc.wait(60) == 0, consumer.stderr()
    with sqlite3.connect(base / "mine.db") as con:
        n = con.execute("SELECT COUNT(*) FROM candles WHERE closed = 1").fetchone()[0]
    assert n == len(published)
    # Without --db: nothing written anywhere in its data folder.
    plain = Proc(base, "stream", "--attach", nats_server.url, "--jsonl", "--duration", "2",
                 env=env, stdout_file=base / "out2.jsonl")
    assert plain.proc.wait(60) == 0, plain.stderr()
    assert not list((base / "data").rglob("*.db"))
