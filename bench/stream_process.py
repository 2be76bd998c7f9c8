"""The real `livecli stream` process with its dashboard: CPU and memory over a minute.

`python bench/stream_process.py [SECONDS] [SPEED]`. A standalone `livecli sim --extra-instruments
9000` (the stand-in on loopback, reached through LIVECLI_KITE_WS_URL / LIVECLI_KITE_API_URL as
tests/sim_proc.py's client_env does) runs its simulated market at SPEED (default 5.4: the 9000
synthetic stocks trade ~3,700 times a simulated second, so about 20,000 ticks/s). `livecli
stream` of all 9000 runs twice against it, each for SECONDS (default 60) after a warm-up:
with the dashboard on a pseudo-terminal (160x50, read and thrown away as a terminal would
show it), and with --jsonl to /dev/null as the baseline. Every 5 s the stream process's CPU
(utime+stime from /proc/PID/stat, as % of one core over the interval) and RSS (VmRSS from
/proc/PID/status) are sampled, and its tick count from the store's sessions row (the status it
writes). Printed per run: the mean CPU %, the RSS series, the ticks/s taken and late ticks.
Run it alone (no other benchmark), `nice -n 5`; Linux only (/proc, pty).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N = 9000
DATE = "2025-12-10"
WARMUP_S = float(os.environ.get("BENCH_WARMUP_S", "15"))  # connecting three links and the first snapshots of 9000 instruments
SAMPLE_S = 5.0
TICK_HZ = os.sysconf("SC_CLK_TCK")


def env_for(base: Path, **extra: str) -> dict[str, str]:
    """Hermetic folders under `base`, no KITE_/LIVECLI_ variables from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITE_", "LIVECLI_"))}
    for name in ("config", "data", "cache", "home"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env.update(LIVECLI_CONFIG_DIR=str(base / "config"), LIVECLI_DATA_DIR=str(base / "data"),
               LIVECLI_CACHE_DIR=str(base / "cache"), HOME=str(base / "home"),
               PYTHONUNBUFFERED="1", TERM="xterm-256color", COLUMNS="160", LINES="50",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def start_sim(base: Path, speed: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "livecli", "sim", "--port", "0", "--api-port", "0",
         "--extra-instruments", str(N), "--speed", str(speed), "--date", DATE],
        cwd=base, env=env_for(base), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    end = time.monotonic() + 120
    for line in proc.stdout:
        if m := re.search(r"(LIVECLI_KITE_(?:WS|API)_URL)=(\S+)", line):
            urls[m[1]] = m[2]
        if "Ctrl-C" in line or time.monotonic() > end:
            break
    if len(urls) != 2:
        proc.kill()
        raise SystemExit(f"livecli sim did not say where it listens: {urls}")
    # Keep draining its stdout so it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
    return proc, urls


def stop(proc: subprocess.Popen, sig: int, timeout: float = 60) -> None:
    """Stop a measured process as a user would (`sig`), killing it if it outlives `timeout`."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def session_row(db: Path) -> tuple[int, int, int]:
    """(ticks, late_ticks, reconnects) of the newest session in the store; zeros before one."""
    if not db.exists():
        return 0, 0, 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            row = con.execute("SELECT ticks, late_ticks, reconnects FROM sessions "
                              "ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return 0, 0, 0
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


@dataclass
class Run:
    label: str
    cpu: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    ticks_per_s: float = 0.0
    late: int = 0
    reconnects: int = 0
    shown_bytes: int = 0


def run_stream(base: Path, urls: dict[str, str], seconds: float, dashboard: bool) -> Run:
    label = "dashboard on a pty" if dashboard else "--jsonl > /dev/null"
    work = base / ("dash" if dashboard else "jsonl")
    work.mkdir()
    db = work / "bench.db"
    env = env_for(work, KITE_API_KEY="livecli-sim", KITE_ACCESS_TOKEN="sim-access-token", **urls)
    symbols = [f"SIM{i:05d}" for i in range(1, N + 1)]
    args = [sys.executable, "-m", "livecli", "stream", *symbols, "--db", str(db),
            "--duration", str(WARMUP_S + seconds + 5)]
    run = Run(label)
    if dashboard:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        proc = subprocess.Popen(args, cwd=work, env=env, stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True)
        os.close(slave)

        def drain() -> None:  # the terminal: read everything the dashboard draws
            while True:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:
                    return
                if not chunk:
                    return
                run.shown_bytes += len(chunk)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
    else:
        args.append("--jsonl")
        proc = subprocess.Popen(args, cwd=work, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(WARMUP_S)  # a benchmark's clock, not a test's wait
        if proc.poll() is not None:
            raise SystemExit(f"{label}: livecli stream exited with {proc.returncode}")
        c0, w0 = cpu_ticks(proc.pid), time.monotonic()
        k0 = session_row(db)[0]
        c_prev, w_prev = c0, w0
        for _ in range(int(seconds / SAMPLE_S)):
            time.sleep(SAMPLE_S)
            c, w = cpu_ticks(proc.pid), time.monotonic()
            run.cpu.append(100 * (c - c_prev) / TICK_HZ / (w - w_prev))
            run.rss.append(rss_mb(proc.pid))
            c_prev, w_prev = c, w
        ticks, run.late, run.reconnects = session_row(db)
        run.ticks_per_s = (ticks - k0) / (w_prev - w0)
    finally:
        stop(proc, signal.SIGTERM)
        if dashboard:
            os.close(master)
    return run


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    speed = float(sys.argv[2]) if len(sys.argv) > 2 else 5.4
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        sim, urls = start_sim(base, speed)
        try:
            runs = [run_stream(base, urls, seconds, dashboard=True),
                    run_stream(base, urls, seconds, dashboard=False)]
        finally:
            stop(sim, signal.SIGINT)
    print(f"livecli stream, {N} instruments, sim --speed {speed}, {seconds:.0f} s after a "
          f"{WARMUP_S:.0f} s warm-up, sampled every {SAMPLE_S:.0f} s:")
    for r in runs:
        mean = sum(r.cpu) / len(r.cpu)
        print(f"  {r.label}: CPU {mean:.1f}% of one core (samples "
              f"{', '.join(f'{c:.0f}' for c in r.cpu)}), RSS MB "
              f"{', '.join(f'{m:.0f}' for m in r.rss)}; {r.ticks_per_s:,.0f} ticks/s taken, "
              f"{r.late} late, {r.reconnects} reconnects"
              + (f", {r.shown_bytes / 1e6:.1f} MB drawn" if r.shown_bytes else ""))
    dash, base_run = runs
    ratio = (sum(dash.cpu) / len(dash.cpu)) / max(sum(base_run.cpu) / len(base_run.cpu), 1e-9)
    print(f"  the dashboard costs {ratio:.2f}x the CPU of the JSON-lines run")


if __name__ == "__main__":
    main()
