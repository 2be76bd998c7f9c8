"""Publishing to NATS JetStream: what it costs the receiving path, and how fast it goes.

9000 instruments of replayed full-mode frames (bench/e2e.py's replay server, Kite's ticker
protocol over loopback, in its own process) through `LiveSession`, against a real
`nats-server -js` started here on a free loopback port with a tmp store. Figures, each beside a
baseline run in this process:

  receiving path, as fast as taken: ticks/s and p50/p99 per frame (receipt -> candles updated)
      without publishing (baseline) and with `--publish` on, interleaved --repeat times, the
      best CPU per tick of each side compared; cost = with/without - 1 (target: under 20%);
  paced at --rate ticks/s with publishing on: ticks/s published by the session, ticks dropped,
      and arrival -> consumer receipt p50/p99 (a consumer in another process subscribed to
      the ticks of one instrument in CONSUMED_EVERY, comparing each message's `received_at`
      to its own clock: consumers run on other machines, and one of every tick here would
      take the CPU the publisher needs on a 2-core box);
  a bare nats-py publish loop of the same messages (recorded from the publishing run) in
      this process: messages/s, the client's ceiling here; and the publisher's own loop
      (encoder + batched PUBs) on the same frames, alone: what the publisher's process does
      given a core (target: >= 50,000 ticks/s);
  a forming-update round of 9000 instruments (each second's 1-minute candles, every fifth
      second's longer ones): the session's side (the engine's batch, under the session's lock)
      beside a `forming()` call and a tuple per instrument, as the round was made before; and
      its lines in the publisher's process from the batch beside a `Candle` and its line each;
  a minute's 9000 closed candles, each acked: candles/s through the publisher, beside nats-py's
      `publish_async` of the same messages on a thread of its own (what the publisher called
      per candle before, on its thread beside the one reading the session's pipe).

Run: nice -n 5 .venv/bin/python bench/publish.py [--measure 8] [--rate 50000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import e2e  # noqa: E402  (the replay server and the measuring helpers)

RECORD_FRAMES = 1200  # frames kept for the bare loop (300,000 ticks)
CONSUMED_EVERY = 9  # the latency consumer takes one instrument in this many (1,000 of 9,000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def consumer_proc(url: str, ready, stop, out) -> None:
    """Another process: the ticks of one instrument in CONSUMED_EVERY, each one's arrival ->
    receipt latency."""
    import nats

    lat: list[float] = []
    n = [0]

    async def main() -> None:
        nc = await nats.connect(url)

        async def cb(msg) -> None:
            n[0] += 1
            data = msg.data
            i = data.find(b'"received_at": "') + 16
            at = datetime.fromisoformat(data[i:data.index(b'"', i)].decode()).timestamp()
            lat.append(time.time() - at)

        for k in range(1, e2e.N_INSTRUMENTS + 1, CONSUMED_EVERY):
            await nc.subscribe(f"livecli.ticks.NSE.SIM{k:05d}", cb=cb,
                               pending_msgs_limit=2_000_000, pending_bytes_limit=1 << 30)
        await nc.flush()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await nc.close()

    asyncio.run(main())
    out.send((n[0], lat))


def session_run(ws_url: str, api_url: str, symbols: list[str], nats_url: str | None,
                measure_s: float, record: list | None = None, server_pid: int | None = None
                ) -> dict:
    from livecli.session.live import LiveSession

    overrides = {"kite.api_key": e2e.API_KEY, "kite.access_token": e2e.ACCESS_TOKEN,
                 "kite.ws_url": ws_url, "kite.api_url": api_url}
    s = LiveSession(source="kite", intervals=["1min", "5min"], db=False, overrides=overrides)
    lat: list[float] = []
    sizes: list[int] = []
    timing = [False]
    seen = [0]  # every tick of the run, measured or not
    now = time.time

    def timed(frame, received_at: float) -> None:
        seen[0] += len(frame)
        if timing[0]:
            lat.append(now() - received_at)
            sizes.append(len(frame))

    s.add_frame_listener(timed)
    if record is not None:  # the frames the session publishes, for the bare loop
        s.add_frame_listener(lambda frame, at: len(record) < RECORD_FRAMES
                             and record.append((frame, at)))
    pub = s.publish(nats_url) if nats_url else None
    s.start(symbols)
    try:
        assert e2e.wait_connected(s, 30), s.live_status().last_error
        time.sleep(e2e.WARMUP_S)
        p0 = pub.stats() if pub else None
        child = pub.publisher._proc.pid if pub is not None else None
        c0, k0, n0 = time.process_time(), proc_cpu(child), proc_cpu(server_pid)
        t0 = time.monotonic()
        timing[0] = True
        time.sleep(measure_s)
        timing[0] = False
        t1 = time.monotonic()
        c1, k1, n1 = time.process_time(), proc_cpu(child), proc_cpu(server_pid)
        p1 = pub.stats() if pub else None
    finally:
        s.stop()
        if pub is not None:
            pub.close(s.live_status(symbols=False), timeout=20)
    ticks = max(1, sum(sizes))
    r = {"ticks_per_s": sum(sizes) / (t1 - t0), "lat": lat,
         "cpu_us_per_tick": (c1 - c0) / ticks * 1e6,
         "child_cpu_us_per_tick": (k1 - k0) / ticks * 1e6,
         "server_cpu_us_per_tick": (n1 - n0) / ticks * 1e6, "cores": {
             "session": (c1 - c0) / (t1 - t0), "publisher": (k1 - k0) / (t1 - t0),
             "nats-server": (n1 - n0) / (t1 - t0)}}
    if p0 is not None and p1 is not None:
        r["published_per_s"] = (p1.ticks_published - p0.ticks_published) / (t1 - t0)
        r["dropped"] = p1.ticks_dropped - p0.ticks_dropped
        r["final"] = pub.stats() if pub else None
        r["seen"] = seen[0]
        r["shed_here"] = pub.publisher.room.ticks_dropped  # before the pipe: never shipped
    return r


def proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (0 where absent)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_loop(url: str, messages: list[tuple[str, bytes]]) -> float:
    """nats-py's publish of the same messages, nothing else: messages/s."""
    import nats

    async def main() -> float:
        nc = await nats.connect(url, pending_size=256 * 1024 * 1024)
        t0 = time.perf_counter()
        for subject, data in messages:
            await nc.publish(subject, data)
        await nc.flush(timeout=60)
        dt = time.perf_counter() - t0
        await nc.close()
        return len(messages) / dt

    return asyncio.run(main())


def candle_line_cost(n: int = 50_000) -> tuple[float, float]:
    """us per candle line: livecli's formatter, and json.dumps of the candle's dict (the same
    bytes, tests/test_jsonl.py), in this process."""
    import json

    from livecli.core.candles import Candle
    from livecli.session.jsonl import candle_line

    c = Candle(738561, 1, 1_765_338_300, 1541.45, 1542.0, 1540.1, 1541.0, 12_345, None, 17,
               False, False, False, "RELIANCE", "NSE")
    t0 = time.perf_counter()
    for _ in range(n):
        candle_line(c, schema=True)
    t1 = time.perf_counter()
    for _ in range(n):
        json.dumps({"type": "candle", "schema": 1, **c.to_dict()})
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6


def forming_round_cost(n: int = 9000) -> dict[str, float]:
    """A forming-update round of `n` instruments (1- and 5-minute candles), ms: on the session's
    side (under its lock), the engine's batch against a `forming()` call and a tuple per
    instrument (what the round did before); in the publisher's process, the batch's lines
    against a `Candle` and its line per row. Checked equal first."""
    import numpy as np

    from livecli.core.candles import Candle
    from livecli.core.engine import CandleEngine
    from livecli.core.ticks import TickColumns
    from livecli.session.jsonl import candle_line, candle_lines

    names = {1000 + i: (f"SIM{i:05d}", "NSE") for i in range(n)}
    engine = CandleEngine([1, 5], instruments=names)
    toks = np.array(list(names), np.int64)
    rng = np.random.default_rng(5)
    t0 = 1_765_338_300 + 60  # 09:16 IST: minutes of a 5-minute candle fold as they close
    for k in range(190):  # 190 s of frames, every instrument ticking each second
        m = len(toks)
        engine.update_columns(TickColumns(
            toks, np.full(m, t0 + k, np.float64), 1000 + rng.integers(-40, 40, m) * 0.05,
            np.full(m, 100 * (k + 1), np.int64), np.full(m, np.nan), np.full(m, np.nan),
            np.full(m, -1, np.int64)))

    def before() -> list[tuple]:
        rows = []
        for iv in engine.intervals:
            got = [engine.forming(tok, iv) for tok in names]
            rows += [(c.instrument_token, c.interval_min, c.start, c.open, c.high, c.low,
                      c.close, c.volume, c.oi, c.ticks, c.partial, c.synthetic, c.closed,
                      c.symbol, c.exchange) for c in got if c is not None]
        return rows

    def now() -> list:
        return [engine.forming_batch(iv) for iv in engine.intervals]

    old_lines = [candle_line(Candle(*r), schema=True) for r in before()]
    new_lines = [x for b in now() for x in candle_lines(b, closed=False, schema=True)]
    if old_lines != new_lines or len(new_lines) != 2 * n:
        raise SystemExit("forming round: the batch's lines differ from forming()'s")
    best = {k: float("inf") for k in ("batch", "objects", "lines", "candle_lines")}
    for _ in range(5):
        a = time.perf_counter()
        rows = before()
        b = time.perf_counter()
        batches = now()
        c = time.perf_counter()
        [candle_line(Candle(*r), schema=True) for r in rows]
        d = time.perf_counter()
        [candle_lines(x, closed=False, schema=True) for x in batches]
        e = time.perf_counter()
        for k, v in (("objects", b - a), ("batch", c - b), ("lines", d - c),
                     ("candle_lines", e - d)):
            best[k] = min(best[k], v * 1e3)
    return best


def minute_closes(n: int, start: int):
    """`n` instruments' 1-minute candles closing together, as the engine hands them over."""
    import numpy as np

    from livecli.core.candles import Candle
    from livecli.core.closed import ClosedCandles

    candles = [Candle(instrument_token=1000 + i, interval_min=1, start=start, open=100.0,
                      high=101.0, low=99.5, close=100.0 + i / 100, volume=10 * i, oi=None,
                      ticks=3, closed=True) for i in range(n)]
    batch = ClosedCandles.from_candles(candles, np.arange(n), 1)
    batch.symbols = [f"SYM{i}" for i in range(n)]
    batch.exchanges = ["NSE"] * n
    return batch


def candle_burst(url: str, n: int = 9000) -> tuple[float, float]:
    """A minute's closes of `n` instruments, each acked by JetStream: candles/s through the
    publisher (the session's encoder, batched HPUBs, its own ack inbox), and through nats-py's
    `publish_async` of the same messages (awaiting every ack), each on a thread of its own
    beside this one polling for the end, in this process.
    Each has candles of its own minute, so neither is taken for a duplicate of the other."""
    import nats

    from livecli.bus.options import PublishOptions
    from livecli.bus.publisher import ACK_TIMEOUT_S, CANDLE, NatsPublisher
    from livecli.session.publish import make_encoder

    start = 1_765_400_000 // 60 * 60
    pub = NatsPublisher(PublishOptions(url=url, buffer=10 * n), make_encoder()).start()

    def acked() -> int:  # a repeat of a stored candle is acked as a duplicate
        return pub.candles_published + pub.candles_duplicate

    t0 = time.perf_counter()
    pub.put_candles(minute_closes(n, start), n)
    deadline = time.monotonic() + 120
    while acked() < n and time.monotonic() < deadline:
        time.sleep(0.002)
    ours = acked() / (time.perf_counter() - t0)
    pub.close()
    messages = make_encoder()(CANDLE, minute_closes(n, start + 60), 0.0)

    async def bare() -> float:
        nc = await nats.connect(url)
        js = nc.jetstream(publish_async_max_pending=2 * n)
        t0 = time.perf_counter()
        # Bounded as a publisher must bound it (`wait_stall`: a full ack window waits rather
        # than grows), as livecli's publisher called it before.
        futures = [await js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id},
                                          wait_stall=ACK_TIMEOUT_S)
                   for subject, data, msg_id in messages]
        await asyncio.gather(*futures)
        rate = len(messages) / (time.perf_counter() - t0)
        await nc.close()
        return rate

    # On a thread of its own beside this one polling, as the publisher's loop runs (and as it
    # ran in the publisher's process, beside the thread reading the session's pipe): each
    # send gives up the GIL and waits to get it back.
    result: list[float] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(bare())))
    worker.start()
    while worker.is_alive():
        time.sleep(0.002)
    return ours, result[0]


def pump_alone(url: str, encode, recorded: list) -> float:
    """The publisher's own loop (livecli.bus.publisher, as the publisher's process runs it:
    the session's encoder, batched PUBs) on the recorded frames, given the CPU: ticks/s."""
    from livecli.bus.options import PublishOptions
    from livecli.bus.publisher import NatsPublisher

    pub = NatsPublisher(PublishOptions(url=url, buffer=10_000_000), encode).start()
    total = sum(len(f) for f, _ in recorded)
    t0 = time.perf_counter()
    for frame, _ in recorded:  # received now: none is shed as stale (TICK_MAX_AGE_S)
        pub.put_ticks(frame, len(frame), time.time())
    deadline = time.monotonic() + 120
    while pub.ticks_published + pub.ticks_dropped < total and time.monotonic() < deadline:
        time.sleep(0.005)
    rate = pub.ticks_published / (time.perf_counter() - t0)
    pub.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frame-packets", type=int, default=250)
    ap.add_argument("--measure", type=float, default=8.0)
    ap.add_argument("--rate", type=float, default=50_000.0)
    ap.add_argument("--repeat", type=int, default=2,
                    help="saturated runs without and with publishing, interleaved")
    args = ap.parse_args()
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        sys.exit("bench/publish.py needs nats-server (apt-get install nats-server)")

    work = e2e.hermetic_workdir("livecli-bench-pub-")
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    server = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                               str(work / "js")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        run(args, url, server.pid)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def run(args, url: str, server_pid: int) -> None:
    from datetime import date
    from datetime import time as dtime

    from livecli.core.timeutil import at_ist
    from livecli.sim import StandIn

    print(f"publish: {e2e.N_INSTRUMENTS} instruments, full mode, {args.frame_packets} packets a "
          f"frame, {args.measure:g} s measured; nats-server -js on loopback; cpus {os.cpu_count()}"
          f", load average {os.getloadavg()[0]:.1f}")
    start_epoch = int(at_ist(date.fromisoformat(e2e.SIM_DATE), dtime(9, 15)))
    rest = StandIn(api_key=e2e.API_KEY, access_token=e2e.ACCESS_TOKEN, date=e2e.SIM_DATE,
                   extra_instruments=e2e.N_INSTRUMENTS).start()
    symbols = [f"SIM{i + 1:05d}" for i in range(e2e.N_INSTRUMENTS)]
    pct = e2e.pct
    try:
        # Saturated, without and with publishing, interleaved --repeat times: on a shared
        # 2-core box one run's CPU per tick swings by a third; each side's best is compared.
        bases, withs = [], []
        for _ in range(args.repeat):
            with e2e.replay(args.frame_packets, start_epoch) as ws:
                bases.append(session_run(ws, rest.api_url, symbols, None, args.measure))
            with e2e.replay(args.frame_packets, start_epoch) as ws:
                withs.append(session_run(ws, rest.api_url, symbols, url, args.measure))
        base = min(bases, key=lambda r: r["cpu_us_per_tick"])
        withp = min(withs, key=lambda r: r["cpu_us_per_tick"])
        # The paced run's baseline: the same offered rate, no publishing (what the session's
        # process costs per tick when frames come spaced out, not back to back).
        with e2e.replay(args.frame_packets, start_epoch, args.rate) as ws:
            paced_base = session_run(ws, rest.api_url, symbols, None, args.measure)
        ctx = mp.get_context("spawn")
        ready, stop = ctx.Event(), ctx.Event()
        parent, child = ctx.Pipe()
        cons = ctx.Process(target=consumer_proc, args=(url, ready, stop, child), daemon=True)
        cons.start()
        ready.wait(30)
        recorded: list = []
        with e2e.replay(args.frame_packets, start_epoch, args.rate) as ws:
            paced = session_run(ws, rest.api_url, symbols, url, args.measure, record=recorded,
                                server_pid=server_pid)
        time.sleep(1.0)
        stop.set()
        got, clat = parent.recv()
        cons.join(10)
        from livecli.session.publish import NAMES, make_encoder

        encode = make_encoder()  # the session's own encoder, as the publisher's process has it
        encode(2, (NAMES, {rest.token(sym): (sym, "NSE") for sym in symbols}), 0.0)
    finally:
        rest.stop()
    messages = [(subj, text.encode()) for frame, at in recorded
                for subj, text in zip(*encode(0, frame, at), strict=True)]
    t0 = time.perf_counter()
    for frame, at in recorded:
        encode(0, frame, at)
    enc_rate = len(messages) / (time.perf_counter() - t0)
    bare = bare_loop(url, messages)
    line_us, dumps_us = candle_line_cost()
    rnd = forming_round_cost()
    pumped = pump_alone(url, encode, recorded)
    burst, burst_bare = candle_burst(url)

    b50, b99 = pct(base["lat"], 0.5) * 1e3, pct(base["lat"], 0.99) * 1e3
    w50, w99 = pct(withp["lat"], 0.5) * 1e3, pct(withp["lat"], 0.99) * 1e3
    cost = withp["cpu_us_per_tick"] / base["cpu_us_per_tick"] - 1
    runs = " / ".join(f"{b['cpu_us_per_tick']:.2f} vs {w['cpu_us_per_tick']:.2f}"
                      for b, w in zip(bases, withs, strict=True))
    print(f"\n[receiving path, as fast as taken; best of {args.repeat} interleaved runs, CPU "
          f"us per tick without vs with publishing in each: {runs}]")
    print(f"  without publishing (baseline) "
          f"{base['ticks_per_s']:,.0f} ticks/s, p50 {b50:.2f} ms p99 {b99:.2f} ms per frame, "
          f"{base['cpu_us_per_tick']:.2f} us CPU per tick in the session's process")
    print(f"  with --publish: {withp['ticks_per_s']:,.0f} ticks/s, p50 {w50:.2f} ms p99 "
          f"{w99:.2f} ms; published {withp['published_per_s']:,.0f} ticks/s, dropped "
          f"{withp['dropped']:,} (over the whole run {withp['final'].ticks_dropped:,}, "
          f"{withp['shed_here']:,} of them on the session's side, never shipped); "
          f"{withp['cpu_us_per_tick']:.2f} us CPU per tick in the "
          f"session's process (+ {withp['child_cpu_us_per_tick']:.2f} us in the publisher's)")
    print(f"  ratio ticks/s {withp['ticks_per_s'] / base['ticks_per_s']:.2f} (CPU shared with "
          f"the publisher's process and nats-server); cost to the session's process "
          f"{cost:+.0%} CPU per tick   target < 20%: {'met' if cost < 0.20 else 'MISSED'}")
    f = paced["final"]
    c50, c99 = (pct(clat, 0.5) * 1e3, pct(clat, 0.99) * 1e3) if clat else (float("nan"),) * 2
    print(f"\n[paced at {args.rate:,.0f} ticks/s, publishing] received {paced['ticks_per_s']:,.0f}"
          f" ticks/s, published {paced['published_per_s']:,.0f} ticks/s, dropped "
          f"{paced['dropped']:,}; closed candles acked {f.candles_published + f.candles_duplicate:,}"
          f" ({f.candles_duplicate:,} as duplicates: the earlier run stored the same candles), "
          f"dropped {f.candles_dropped}; over the whole run (start to close) "
          f"{paced['seen']:,} ticks received, {f.ticks_published:,} published, "
          f"{f.ticks_dropped:,} shed")
    paced_cost = paced["cpu_us_per_tick"] / paced_base["cpu_us_per_tick"] - 1
    print(f"  CPU per tick: session's process {paced['cpu_us_per_tick']:.2f} us, publisher's "
          f"process {paced['child_cpu_us_per_tick']:.2f} us; baseline paced without publishing "
          f"{paced_base['cpu_us_per_tick']:.2f} us in the session's process (received "
          f"{paced_base['ticks_per_s']:,.0f} ticks/s): cost {paced_cost:+.0%}; nats-server "
          f"{paced['server_cpu_us_per_tick']:.2f} us")
    cores = paced["cores"]
    print(f"  cores busy (of {os.cpu_count()}): " + ", ".join(
        f"{name} {share:.2f}" for name, share in cores.items())
        + f"; {sum(cores.values()):.2f} together, besides the replay server and the consumer")
    print(f"  arrival -> consumer receipt (another process, {got:,} ticks of one instrument in "
          f"{CONSUMED_EVERY}): "
          f"p50 {c50:.1f} ms p99 {c99:.1f} ms")
    print(f"  baseline bare nats-py publish loop of the same {len(messages):,} messages: "
          f"{bare:,.0f} msgs/s   ratio {paced['published_per_s'] / bare:.2f}; the encoder alone "
          f"(JSON lines' encoders) {enc_rate:,.0f} ticks/s")
    print(f"  the publisher's loop alone on the same frames (encoder + batched PUBs, one "
          f"process, no replay or receiving path beside it): {pumped:,.0f} ticks/s   target "
          f">= 50,000: {'met' if pumped >= 50_000 else 'MISSED'}")
    print(f"  a minute's 9000 closed candles, each acked: through the publisher {burst:,.0f} "
          f"candles/s ({1e6 / burst:.0f} us each); baseline nats-py publish_async of the same "
          f"messages {burst_bare:,.0f}/s ({1e6 / burst_bare:.0f} us each, {burst / burst_bare:.1f}x)")
    print(f"  a candle's line (forming updates, closes): {line_us:.2f} us; baseline json.dumps of "
          f"its dict {dumps_us:.2f} us ({dumps_us / line_us:.1f}x)")
    print(f"  a forming-update round of 9000 instruments (1 and 5 min): on the session's side "
          f"{rnd['batch']:.1f} ms as the engine's batch, baseline a forming() call and a tuple "
          f"each {rnd['objects']:.1f} ms ({rnd['objects'] / rnd['batch']:.0f}x); its lines in "
          f"the publisher's process {rnd['candle_lines']:.1f} ms from the batch, baseline a "
          f"Candle and its line each {rnd['lines']:.1f} ms "
          f"({rnd['lines'] / rnd['candle_lines']:.1f}x)")
    ok = paced["published_per_s"] >= 0.97 * min(args.rate, 50_000) and args.rate >= 50_000
    whole = paced["seen"] == f.ticks_published and not f.ticks_dropped
    print(f"  target >= 50,000 ticks/s published: {'met' if ok else 'MISSED'} (in the measured "
          f"window: 0.97 of it); every tick of the run published, none shed: "
          f"{'yes' if whole else 'no'}")


if __name__ == "__main__":
    main()
