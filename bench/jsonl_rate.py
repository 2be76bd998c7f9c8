"""The real `livecli stream --jsonl` process at a paced tick rate: does it keep up, lag flat?

`python bench/jsonl_rate.py [--rate 60000] [--measure 20]`. The ticks come from bench/e2e.py's
replay server (Kite's ticker protocol over loopback, its own process) paced at --rate ticks/s
over 9000 instruments; the instrument list from the stand-in's REST API. `livecli stream` of
all 9000 runs as a user runs it (a subprocess, Kite credentials in its environment, no warm
start from history), its stdout a pipe into this process, which reads every line as a
consumer would, counts the tick lines and, for one line in 64, the lag from the tick's
`received_at` to the moment it was read. Printed, per run:

  tick lines/s read, against ticks/s offered (what `--jsonl` sustains);
  lag p50 / p99 over the run, and the median lag of the first and the last quarter (a lag
      that grows means the writer falls behind: target flat);
  tick lines the session shed (its `tick_lines_dropped`, from the last status line) and the
      stream process's CPU share (utime+stime from /proc);
and, as the baseline from the same run, what a user's own script would do: kiteconnect's
KiteTicker (one connection of 3000 instruments, offered the same rate) writing each tick as
`json.dumps` of its dict, read the same way.
Target (issue 15): --jsonl sustaining 60,000 ticks/s with no growing lag. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import e2e  # noqa: E402  (the replay server, hermetic folders, quantiles)
from stream_process import TICK_HZ, cpu_ticks, env_for, stop  # noqa: E402

WARMUP_S = 8.0  # three links subscribing 9000 instruments, the first snapshots
SAMPLE_EVERY = 64


def stream_env(work: Path, ws_url: str, api_url: str) -> dict[str, str]:
    """stream_process's hermetic environment, with e2e's credentials and the replay's URLs."""
    return env_for(work, KITE_API_KEY=e2e.API_KEY, KITE_ACCESS_TOKEN=e2e.ACCESS_TOKEN,
                   LIVECLI_KITE_WS_URL=ws_url, LIVECLI_KITE_API_URL=api_url,
                   LIVECLI_STREAM_FETCH_HISTORY="false")


# The baseline: a user's script on kiteconnect, one JSON line per tick with json.dumps.
NAIVE = """
import json, sys, time
from datetime import datetime, timezone, timedelta
from kiteconnect import KiteTicker
key, token, url = sys.argv[1:4]
tokens = [int(t) for t in sys.argv[4].split(",")]
ist = timezone(timedelta(hours=5, minutes=30))
out = sys.stdout
kt = KiteTicker(key, token, root=url)
def on_ticks(ws, ticks):
    at = datetime.now(ist).isoformat()
    out.write("".join(json.dumps({"type": "tick", **t, "received_at": at}, default=str) + "\\n"
                      for t in ticks))
def on_connect(ws, response):
    ws.subscribe(tokens)
    ws.set_mode(ws.MODE_FULL, tokens)
kt.on_ticks = on_ticks
kt.on_connect = on_connect
kt.connect()
"""


def run(work: Path, ws_url: str, api_url: str, symbols: list[str], measure_s: float,
        naive_tokens: list[int] | None = None) -> dict:
    work.mkdir()
    if naive_tokens is None:
        args = [sys.executable, "-m", "livecli", "stream", *symbols, "--db",
                str(work / "b.db"), "--duration", str(WARMUP_S + measure_s + 3), "--jsonl"]
    else:
        args = [sys.executable, "-c", NAIVE, e2e.API_KEY, e2e.ACCESS_TOKEN, ws_url,
                ",".join(map(str, naive_tokens))]
    proc = subprocess.Popen(args, cwd=work, env=stream_env(work, ws_url, api_url),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, bufsize=1 << 20)
    counted = {"ticks": 0, "measuring": False}
    lags: list[tuple[float, float]] = []  # (read at, lag)
    last_status: list[dict] = []

    def read() -> None:  # the consumer: every line read, one in SAMPLE_EVERY timed
        assert proc.stdout is not None
        n = 0
        for raw in proc.stdout:
            if raw.startswith(b'{"type": "tick"'):
                if counted["measuring"]:
                    counted["ticks"] += 1
                    n += 1
                    if n % SAMPLE_EVERY == 0:
                        now = time.time()
                        at = json.loads(raw)["received_at"]
                        lags.append((now, now - datetime.fromisoformat(at).timestamp()))
            elif raw.startswith(b'{"type": "status"'):
                last_status[:] = [json.loads(raw)]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        time.sleep(WARMUP_S)  # a benchmark's clock, not a test's wait
        if proc.poll() is not None:
            raise SystemExit(f"livecli stream exited early ({proc.returncode}): "
                             f"{proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
        c0, t0 = cpu_ticks(proc.pid), time.monotonic()
        shed0 = last_status[0].get("tick_lines_dropped", 0) if last_status else 0
        counted["measuring"] = True
        time.sleep(measure_s)
        counted["measuring"] = False
        c1, t1 = cpu_ticks(proc.pid), time.monotonic()
        read_ticks = counted["ticks"]
    finally:
        stop(proc, signal.SIGINT)
    reader.join(10)
    st = last_status[0] if last_status else {}
    shed = st.get("tick_lines_dropped")
    return {"lines_per_s": read_ticks / (t1 - t0), "lags": lags,
            "cpu": (c1 - c0) / TICK_HZ / (t1 - t0), "dropped": shed,
            "dropped_measured": None if shed is None else shed - shed0,
            "late": st.get("late_ticks")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=60_000.0, help="ticks/s offered")
    ap.add_argument("--measure", type=float, default=20.0, help="seconds measured per run")
    ap.add_argument("--frame-packets", type=int, default=250)
    args = ap.parse_args()

    from livecli.core.timeutil import at_ist
    from livecli.sim import StandIn

    base = e2e.hermetic_workdir("livecli-jsonl-")
    start_epoch = int(at_ist(date.fromisoformat(e2e.SIM_DATE), dtime(9, 15)))
    rest = StandIn(api_key=e2e.API_KEY, access_token=e2e.ACCESS_TOKEN, date=e2e.SIM_DATE,
                   extra_instruments=e2e.N_INSTRUMENTS).start()
    symbols = [f"SIM{i + 1:05d}" for i in range(e2e.N_INSTRUMENTS)]
    tokens = [rest.token(sym) for sym in symbols]
    out = {}
    try:
        with e2e.replay(args.frame_packets, start_epoch, args.rate) as ws_url:
            out["livecli stream --jsonl"] = run(base / "livecli", ws_url, rest.api_url,
                                                symbols, args.measure)
        # One kiteconnect connection (3000 instruments) offered the same rate: the replay
        # gives each connection its share of the rate by instruments.
        with e2e.replay(args.frame_packets, start_epoch, args.rate * 3) as ws_url:
            out["baseline: kiteconnect + json.dumps per tick"] = run(
                base / "naive", ws_url, rest.api_url, symbols, args.measure,
                naive_tokens=tokens[:3000])
    finally:
        rest.stop()
    print(f"livecli stream, {e2e.N_INSTRUMENTS} instruments, {args.rate:,.0f} ticks/s offered, "
          f"{args.measure:g} s measured after {WARMUP_S:g} s; cpus {os.cpu_count()}, load "
          f"average {os.getloadavg()[0]:.1f}")
    for label, r in out.items():
        line = f"  {label}: CPU {100 * r['cpu']:.0f}% of one core"
        if r["lags"]:
            lag = [x for _, x in r["lags"]]
            q = max(1, len(lag) // 4)
            first, last = statistics.median(lag[:q]), statistics.median(lag[-q:])
            line += (f"; {r['lines_per_s']:,.0f} tick lines/s read; lag p50 "
                     f"{e2e.pct(lag, 0.5) * 1e3:.0f} ms p99 {e2e.pct(lag, 0.99) * 1e3:.0f} ms, "
                     f"first quarter {first * 1e3:.0f} ms, last {last * 1e3:.0f} ms")
        if r["dropped"] is not None:
            line += (f"; tick lines shed {r['dropped_measured']} while measured "
                     f"({r['dropped']} in all), {r['late']} late")
        print(line)
    j, b = out.values()
    print(f"  ratio of tick lines/s read: {j['lines_per_s'] / max(b['lines_per_s'], 1e-9):.2f}x")
    lag = [x for _, x in j["lags"]]
    q = max(1, len(lag) // 4)
    flat = bool(lag) and statistics.median(lag[-q:]) < 2 * statistics.median(lag[:q]) + 0.05
    ok = flat and j["lines_per_s"] >= 0.98 * args.rate and not j["dropped_measured"]
    print(f"  target: --jsonl sustaining {args.rate:,.0f} ticks/s, lag flat: "
          f"{'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
