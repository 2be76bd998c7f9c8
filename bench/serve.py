"""The Live Data API's fan-out: one feed of 500 instruments to 1, 10 and 100 WebSocket clients.

What runs is the product: `ServeRunner` (uvicorn, the hub, the tap) around a `LiveSession`
whose feed is kiteconnect's KiteTicker reading full-mode frames from bench/e2e.py's replay
server (a separate process speaking Kite's protocol), paced at --rate ticks/s over 500
instruments; the REST API (instrument master) is the stand-in's. The clients run in separate
processes (--client-procs), each client on `/api/live/ws` subscribed to every instrument's
ticks; they count ticks from the message text (no JSON parse: the clients must not be the
bottleneck) and time one tick per message: from its `received_at` (stamped by the feed as the
frame arrived, before decoding) to the message's receipt by the client.

Figures, each run beside a baseline in the same run:
  per client ticks/s received over --measure s after a warm-up, and p50/p99 latency, for 1, 10
      and 100 clients; baseline: the very same messages (recorded from the server) broadcast
      at the same rate by a bare `websockets` server (`websockets.broadcast`) to as many
      clients of the same code;
  the Kite-side receiving path per frame (receipt to candles updated and the frame handed to
      the hub: a wrapper around `LiveSession._on_frame`, as bench/e2e.py does), wall and CPU
      time, with no client and with 100 clients attached: the slowdown is the ratio.
Targets: 100 clients each >= 20,000 ticks/s with p99 < 50 ms; the receiving path slows < 10%.

Run: .venv/bin/python bench/serve.py [--rate 25000] [--measure 6] [--client-procs 2]
(about 2 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e import pct  # noqa: E402  (bench/ is on the path only from here)

N = 500
FRAME_PACKETS = 250
WARMUP_S = 2.0
TICK_MARK = b'"type":"tick"'
STAMP = b'"received_at":"'


# --------------------------------------------------------------------------- the clients
def _clients(url: str, n: int, subscribe: bool, ready: Any, window: Any, results: Any,
             record: int) -> None:
    """A process of `n` clients; reports (ticks per client, latency samples, recorded msgs)."""
    import websockets
    from websockets.asyncio.client import connect

    async def one(i: int, go: asyncio.Event, t: list[float], out: list) -> None:
        async with connect(url, max_size=None, compression=None, ping_interval=None,
                           max_queue=64) as ws:
            if subscribe:
                await ws.send('{"action": "subscribe", "ticks": ["*"]}')
                while b'"subscribed"' not in await ws.recv(decode=False):
                    pass
            ready.put(1)
            count, lat, rec = 0, [], []
            record_n = record if i == 0 else 0
            now = time.time
            fromiso = datetime.fromisoformat
            try:
                while True:
                    msg = await ws.recv(decode=False)
                    at = now()
                    if len(rec) < record_n:
                        rec.append(msg)
                    if not go.is_set():
                        continue
                    if at > t[1]:
                        break
                    if at < t[0]:
                        continue
                    count += msg.count(TICK_MARK)
                    k = msg.find(STAMP)
                    if k >= 0:
                        lat.append(at - fromiso(msg[k + 15: k + 47].decode()).timestamp())
            except websockets.ConnectionClosed as exc:
                out.append(("closed", i, str(exc)))
            out.append((count, lat, rec))

    async def main() -> list:
        go = asyncio.Event()
        t = [0.0, 0.0]
        out: list = []
        tasks = [asyncio.create_task(one(i, go, t, out)) for i in range(n)]
        t[0], t[1] = await asyncio.get_running_loop().run_in_executor(None, window.get)
        go.set()
        await asyncio.sleep(max(0.0, t[0] - time.time()))
        c0 = os.times()
        await asyncio.sleep(max(0.0, t[1] - time.time()))
        c1 = os.times()
        await asyncio.wait(tasks, timeout=30)
        out.append(("cpu", c1.user + c1.system - c0.user - c0.system))
        return out

    results.put(asyncio.run(main()))


def run_clients(ctx: Any, url: str, n: int, procs: int, measure_s: float, subscribe: bool,
                record: int = 0, during: Any = None) -> dict:
    """`n` clients in `procs` processes over one measuring window; `during(t0, t1)` runs in
    this process while they measure."""
    per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    per = [k for k in per if k]
    ready, results = ctx.Queue(), ctx.Queue()
    windows = [ctx.Queue() for _ in per]
    ps = [ctx.Process(target=_clients, daemon=True,
                      args=(url, k, subscribe, ready, windows[i], results,
                            record if i == 0 else 0)) for i, k in enumerate(per)]
    for p in ps:
        p.start()
    for _ in range(n):
        ready.get(timeout=120)
    t0 = time.time() + WARMUP_S
    t1 = t0 + measure_s
    for w in windows:
        w.put((t0, t1))
    extra = during(t0, t1) if during is not None else None
    outs = [r for _ in ps for r in results.get(timeout=measure_s + 120)]
    for p in ps:
        p.join(10)
    closed = [o for o in outs if o[0] == "closed"]
    cpu = sum(o[1] for o in outs if o[0] == "cpu") / measure_s
    done = [o for o in outs if o[0] not in ("closed", "cpu")]
    lat = sorted(x for _, lt, _ in done for x in lt)
    rates = [c / measure_s for c, _, _ in done]
    recorded = [m for _, _, rec in done for m in rec]
    return {"rates": rates, "lat": lat, "closed": closed, "recorded": recorded,
            "during": extra, "client_cpu": cpu}


# --------------------------------------------------------------------------- the baseline
def _baseline(ready: Any, stop: Any, msgs: list[bytes], rate: float) -> None:
    """A bare websockets server broadcasting `msgs` (first received_at restamped) at `rate`
    ticks/s to every client that connects."""
    import websockets
    from websockets.asyncio.server import serve

    from livecli.core.timeutil import to_ist

    texts = [m.decode() for m in msgs]
    counts = [m.count(TICK_MARK) for m in msgs]
    stamps = []
    for m in texts:
        k = m.find(STAMP.decode())
        stamps.append(m[k + 15: k + 47] if k >= 0 else None)
    clients: set = set()

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None,
                         max_size=None) as server:
            ready.send(server.sockets[0].getsockname()[1])
            i = 0
            due = time.monotonic()
            while not stop.is_set():
                k = i % len(texts)
                text = texts[k]
                if stamps[k]:
                    now = to_ist(time.time()).isoformat(timespec="microseconds")
                    text = text.replace(stamps[k], now, 1)
                if clients:
                    websockets.broadcast(clients, text)
                i += 1
                due += counts[k] / rate
                delay = due - time.monotonic()
                await asyncio.sleep(max(0.0, delay))

    asyncio.run(main())


# --------------------------------------------------------------------------- the server
class Served:
    """ServeRunner on a thread of this process, fed by the replay server; frames timed."""

    def __init__(self, work: Path, ws_url: str, api_url: str, symbols: list[str]) -> None:
        from e2e import ACCESS_TOKEN, API_KEY

        from livecli.server.runner import ServeOptions, ServeRunner
        from livecli.session.live import LiveSession

        overrides = {"kite.api_key": API_KEY, "kite.access_token": ACCESS_TOKEN,
                     "kite.ws_url": ws_url, "kite.api_url": api_url}
        self.session = s = LiveSession(source="kite", intervals=["1min", "5min"],
                                       db=work / "serve-bench.db", overrides=overrides)
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.timing = False
        from livecli.session.receiver import Receiver

        orig = Receiver.on_frame
        now, cpu = time.time, time.thread_time

        def timed(rx: Any, frame: Any, received_at: float) -> None:
            c0 = cpu()
            orig(rx, frame, received_at)
            if self.timing:
                self.cpu.append(cpu() - c0)
                self.wall.append(now() - received_at)

        # The receiving path is the run's Receiver.on_frame, bound when start() makes the run:
        # this process's runs all take the timed one.
        Receiver.on_frame = timed  # type: ignore[method-assign]
        self.runner = ServeRunner(s, s.settings, ServeOptions(port=0, symbols=tuple(symbols),
                                                              client_queue=256))
        up = threading.Event()
        self.thread = threading.Thread(target=self.runner.run, daemon=True,
                                       kwargs={"announce": lambda _r: up.set()})
        self.thread.start()
        assert up.wait(120), "the server did not start"
        from e2e import wait_connected

        assert wait_connected(s, 30), s.live_status().last_error
        self.ws = f"{self.runner.url.replace('http://', 'ws://')}/api/live/ws"
        self.api = f"{self.runner.url}/api/live"

    def frames(self, seconds: float) -> dict:
        self.wall.clear()
        self.cpu.clear()
        self.timing = True
        time.sleep(seconds)
        self.timing = False
        return {"wall": sorted(self.wall), "cpu": sorted(self.cpu)}

    def stats(self) -> dict:
        import httpx

        return httpx.get(f"{self.api}/status", timeout=30).json()

    def stop(self) -> None:
        self.runner.shutdown()
        self.thread.join(60)


def line(label: str, r: dict) -> str:
    rates = r["rates"]
    lo = min(rates) if rates else 0.0
    med = statistics.median(rates) if rates else 0.0
    return (f"{label}: per client ticks/s min {lo:,.0f} median {med:,.0f} ({len(rates)} "
            f"clients, {len(r['closed'])} closed), latency p50 {pct(r['lat'], 0.5) * 1e3:.1f} "
            f"ms p99 {pct(r['lat'], 0.99) * 1e3:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=25_000.0, help="ticks/s the replay offers")
    ap.add_argument("--measure", type=float, default=6.0, help="seconds measured per run")
    ap.add_argument("--client-procs", type=int, default=2, help="processes the clients share")
    ap.add_argument("--clients", default="1,10,100")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]

    import e2e

    work = e2e.hermetic_workdir("livecli-bench-serve-")

    from datetime import date
    from datetime import time as dtime

    from livecli.core.timeutil import at_ist
    from livecli.sim import StandIn

    print(f"serve fan-out: {N} instruments, full mode, {FRAME_PACKETS} packets a frame, "
          f"replayed at {args.rate:,.0f} ticks/s; {args.measure:g} s measured after "
          f"{WARMUP_S:g} s; clients in {args.client_procs} processes; cpus {os.cpu_count()} "
          "(shared with other work: figures move with the load)")
    start_epoch = int(at_ist(date.fromisoformat(e2e.SIM_DATE), dtime(9, 15)))
    rest = StandIn(api_key=e2e.API_KEY, access_token=e2e.ACCESS_TOKEN, date=e2e.SIM_DATE,
                   extra_instruments=N).start()
    symbols = [f"SIM{i + 1:05d}" for i in range(N)]
    ctx = mp.get_context("spawn")
    # e2e's replay paces each connection by its share of 9000 instruments: scale to ours.
    replay = contextlib.ExitStack()
    ws_url = replay.enter_context(e2e.replay(FRAME_PACKETS, start_epoch,
                                             args.rate * e2e.N_INSTRUMENTS / N))
    served = Served(work, ws_url, rest.api_url, symbols)
    results: dict[int, dict] = {}
    base: dict[int, dict] = {}
    try:
        time.sleep(WARMUP_S)
        idle = served.frames(args.measure)
        recorded: list[bytes] = []
        for n in counts:
            def frames_in(t0: float, t1: float, n: int = n) -> dict:
                time.sleep(max(0.0, t0 - time.time()))
                c0 = os.times()
                frames = served.frames((t1 - t0) * 0.9) if n == max(counts) else None
                time.sleep(max(0.0, t1 - time.time()))
                c1 = os.times()
                return {"frames": frames,
                        "cpu": (c1.user + c1.system - c0.user - c0.system) / (t1 - t0)}

            r = run_clients(ctx, served.ws, n, min(n, args.client_procs), args.measure, True,
                            record=0 if recorded else 400, during=frames_in)
            r["frames"], r["server_cpu"] = r["during"]["frames"], r["during"]["cpu"]
            r["server"] = served.stats()["server"]
            recorded = recorded or r["recorded"]
            results[n] = r
        # The baseline runs while the feed and the session go on, so that both share the
        # machine with the same Kite-side work; only the fan-out differs.
        msgs = [m for m in recorded if TICK_MARK in m]
        for n in counts:
            bparent, bchild = ctx.Pipe()
            bstop = ctx.Event()
            bp = ctx.Process(target=_baseline, args=(bchild, bstop, msgs, args.rate), daemon=True)
            bp.start()
            bport = bparent.recv()
            try:
                base[n] = run_clients(ctx, f"ws://127.0.0.1:{bport}", n,
                                      min(n, args.client_procs), args.measure, False)
            finally:
                bstop.set()
                bp.join(10)
        st = served.stats()
    finally:
        served.stop()
        replay.close()
        rest.stop()

    print(f"feed: {st['ticks_per_s']:,.0f} ticks/s at the end, late {st['late_ticks']}, "
          f"handler errors {st['handler_errors']}; messages recorded for the baseline "
          f"{len(msgs)} ({statistics.mean(m.count(TICK_MARK) for m in msgs):.0f} ticks each)")
    for n in counts:
        r, b = results[n], base[n]
        print(f"\n[{n} client{'s' if n > 1 else ''}]")
        print("  livecli serve  " + line("", r).lstrip(": "))
        print("  baseline bare websockets broadcast  " + line("", b).lstrip(": "))
        srv = r["server"]
        print(f"  server: clients dropped {srv['clients_dropped']}, frames shed "
              f"{srv['frames_shed']}; CPU in cores: livecli server process (session + API) "
              f"{r['server_cpu']:.2f}, its clients {r['client_cpu']:.2f}; baseline clients "
              f"{b['client_cpu']:.2f}")
        lo = min(r["rates"]) if r["rates"] else 0.0
        ok = lo >= 20_000 and pct(r["lat"], 0.99) < 0.050
        if n == 100:
            print(f"  target 100 clients each >= 20,000 ticks/s with p99 < 50 ms: "
                  f"{'met' if ok else 'MISSED'}")

    loaded = results[max(counts)]["frames"]
    if loaded:
        for what in ("wall", "cpu"):
            a, b = idle[what], loaded[what]
            ma, mb = statistics.mean(a), statistics.mean(b)
            print(f"\nreceiving path per frame ({what}{' time of the reactor thread' if what == 'cpu' else ', receipt to done'}):"
                  f" no client mean {ma * 1e3:.3f} ms p50 {pct(a, 0.5) * 1e3:.3f} p99 "
                  f"{pct(a, 0.99) * 1e3:.3f}; {max(counts)} clients mean {mb * 1e3:.3f} ms p50 "
                  f"{pct(b, 0.5) * 1e3:.3f} p99 {pct(b, 0.99) * 1e3:.3f}; slowdown "
                  f"{(mb / ma - 1) * 100:+.1f}%")
        c_idle, c_load = statistics.mean(idle["cpu"]), statistics.mean(loaded["cpu"])
        print(f"target receiving path slows < 10% with {max(counts)} clients (CPU per frame): "
              f"{'met' if c_load / c_idle - 1 < 0.10 else 'MISSED'}")


if __name__ == "__main__":
    main()
