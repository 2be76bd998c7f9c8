"""The receiving path's per-tick bookkeeping and the once-a-second status, at 9000 instruments.

`python bench/status.py`. Two figures, each beside the way it was done before, in this process:
- `bookkeeping`: what each decoded frame costs the receiving path apart from the engine: each
  instrument's newest tick (frame and row), its count and its receipt time. livecli keeps them
  as arrays by slot (livecli/session/latest.py, a few vectorised operations per frame); the
  baseline is the loop it replaced (a tuple and three dict writes per tick). Both are fed the
  same real decoded frames of 3000 full packets over 9000 instruments (Kite's largest frame) and
  are checked to agree before timing. Figure: ticks/s.
- `status`: the status of 9000 symbols the session makes every second, made and encoded for
  the store's session row. livecli gathers the per-symbol part as columns (`SymbolTable`) and
  stores them as one JSON list per field; the baseline makes one `SymbolStatus` per symbol and
  stores {symbol: {field: value}} (the JSON lines form, which is still what `--jsonl` writes,
  shown for reference). Both read back to equal statuses (checked). Figures: CPU ms per status,
  and the longest a thread that wants to run every millisecond (the receiving thread) waits
  while it is made: Python lets it in every 5 ms, but never inside one C call, and one
  json.dumps of the whole row is one such call. livecli encodes in slices (core/jsontext.py).
  The same for the JSON line `--jsonl` and NATS write, in pieces and in one json.dumps.
Targets (issue 15): the status serialised without holding the receiving path.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from livecli.core.jsontext import dumps_in_pieces
from livecli.core.status import LiveStatus, SymbolStatus, SymbolTable, fast_constructor
from livecli.kite.codec import decode_frame, encode_frame, encode_full
from livecli.session.jsonl import status_line
from livecli.session.latest import LatestTicks

INSTRUMENTS = 9000
FRAME = 3000
FRAMES = 60
T0 = 1_736_135_100.0  # 2025-01-06 09:15 IST


def tokens() -> np.ndarray:
    return (np.arange(1, INSTRUMENTS + 1, dtype=np.int64) << 8) | 1  # NSE (divisor 100)


def frames(seed: int = 5) -> list:
    rng = np.random.default_rng(seed)
    toks = tokens()
    out = []
    for k in range(FRAMES):
        pick = rng.choice(toks, FRAME, replace=True)  # repeats too: a token's later row wins
        packets = []
        for tok in pick.tolist():
            px = round(float(rng.uniform(10, 4000)), 2)
            depth = [(10, px, 1)] * 5
            packets.append(encode_full(tok, px, 1, px, 100, 10, 10, px, px, px, px,
                                       int(T0) + k, 0, 0, 0, int(T0) + k, depth, depth))
        out.append(decode_frame(encode_frame(packets), T0 + k * 0.2))
    return out


class DictBook:
    """The bookkeeping before: tick by tick, into three dicts (receiver.py before issue 15)."""

    def __init__(self) -> None:
        self.latest: dict[int, tuple[object, int]] = {}
        self.counts: dict[int, int] = {}
        self.seen: dict[int, float] = {}

    def update(self, frame, tokens: list[int], received_at: float) -> None:
        latest, counts, seen = self.latest, self.counts, self.seen
        for i, tok in enumerate(tokens):
            latest[tok] = (frame, i)
            counts[tok] = counts.get(tok, 0) + 1
            seen[tok] = received_at


def bookkeeping() -> None:
    fs = frames()
    cols = [f.columns(lists=False) for f in fs]
    at = [f.received_at for f in fs]
    ours, theirs = LatestTicks(), DictBook()
    for f, c, t in zip(fs, cols, at, strict=True):
        ours.update(f, c.token, c.price, t)
        theirs.update(f, c.token.tolist(), t)
    assert all(ours.get(k) == v for k, v in theirs.latest.items())
    assert all(ours.count(k) == v for k, v in theirs.counts.items())
    assert all(ours.seen_at(k) == v for k, v in theirs.seen.items())
    best = {"livecli": float("inf"), "dicts": float("inf")}
    for _ in range(7):
        book = LatestTicks()
        t0 = time.perf_counter()
        for f, c, t in zip(fs, cols, at, strict=True):
            book.update(f, c.token, c.price, t)
        best["livecli"] = min(best["livecli"], time.perf_counter() - t0)
        dicts = DictBook()
        t0 = time.perf_counter()
        for f, c, t in zip(fs, cols, at, strict=True):
            # The old loop needed the tokens as a list; that conversion is its cost too.
            dicts.update(f, c.token.tolist(), t)
        best["dicts"] = min(best["dicts"], time.perf_counter() - t0)
    ticks = FRAMES * FRAME
    ours_rate, theirs_rate = ticks / best["livecli"], ticks / best["dicts"]
    print(f"bookkeeping, {INSTRUMENTS} instruments, {FRAME}-packet full frames: "
          f"livecli {ours_rate:,.0f} ticks/s; three dicts tick by tick {theirs_rate:,.0f} "
          f"ticks/s ({ours_rate / theirs_rate:.2f}x)")


def _status(symbols) -> LiveStatus:
    return LiveStatus(source="SIMULATED", state="connected", intervals=("1min",), pid=1,
                      started_at=T0, ticks=123_456, symbols=symbols)


def status() -> None:
    rng = np.random.default_rng(9)
    book = LatestTicks()
    for f in frames():
        c = f.columns(lists=False)
        book.update(f, c.token, c.price, f.received_at)
    toks = tokens().tolist()
    names = [f"SIM{i:05d}" for i in range(1, INSTRUMENTS + 1)]
    now = T0 + 30.0 + float(rng.uniform())
    make = fast_constructor(SymbolStatus)

    def ours() -> tuple[str, float]:
        prices, seen, counts = book.columns(toks)
        table = SymbolTable.build(
            symbol=names, exchange=["NSE"] * INSTRUMENTS, instrument_token=toks,
            last_price=prices, last_tick_at=seen,
            last_tick_age_s=[None if a is None else round(now - a, 3) for a in seen],
            ticks=counts)
        d = _status(table).to_json_dict(symbol_columns=True)
        return dumps_in_pieces(d["symbols"], separators=(",", ":")), 0.0

    def before() -> tuple[str, float]:
        # One object per symbol, from the dicts, then the keyed JSON form for the row.
        rows = []
        for tok, name in zip(toks, names, strict=True):
            hit = book.get(tok)
            at = book.seen_at(tok)
            rows.append(make(name, "NSE", tok,
                             float(hit[0].last_price[hit[1]]) if hit is not None else None,
                             at, None if at is None else round(now - at, 3), book.count(tok)))
        d = _status(tuple(rows)).to_json_dict()
        return json.dumps(d["symbols"], separators=(",", ":")), 0.0

    a = LiveStatus.from_json_dict({"symbols": json.loads(ours()[0])})
    b = LiveStatus.from_json_dict({"symbols": json.loads(before()[0])})
    assert list(a.symbols) == list(b.symbols), "the two forms must read back equal"
    cpu = {"livecli": [], "before": []}
    size = {}
    for _ in range(9):
        for name, fn in (("livecli", ours), ("before", before)):
            t0 = time.thread_time()
            text, _ = fn()
            cpu[name].append(time.thread_time() - t0)
            size[name] = len(text)
    med = {k: sorted(v)[len(v) // 2] * 1e3 for k, v in cpu.items()}
    wait = {name: longest_wait(lambda fn=fn: fn()) for name, fn in
            (("livecli", ours), ("before", before))}
    print(f"status of {INSTRUMENTS} symbols for the store: livecli {med['livecli']:.1f} CPU-ms, "
          f"{size['livecli'] / 1e6:.2f} MB, longest wait of a receiving thread "
          f"{wait['livecli']:.1f} ms; one object per symbol, the keyed form and one json.dumps "
          f"{med['before']:.1f} CPU-ms, {size['before'] / 1e6:.2f} MB, longest wait "
          f"{wait['before']:.1f} ms ({med['before'] / med['livecli']:.2f}x less CPU)")
    st = _status(SymbolTable.of(a.symbols))
    line_ours = status_line(st)
    line_before = json.dumps({"type": "status", **st.to_json_dict()}) + "\n"
    assert line_ours == line_before, "the JSON line must be json.dumps's text"
    w_ours = longest_wait(lambda: status_line(st))
    w_before = longest_wait(
        lambda: json.dumps({"type": "status", **st.to_json_dict()}) + "\n")
    print(f"the status JSON line ({len(line_ours) / 1e6:.2f} MB, the same text): longest wait "
          f"of a receiving thread {w_ours:.1f} ms in pieces; {w_before:.1f} ms with one "
          f"json.dumps (a pure-Python loop beside the same thread: {python_floor():.1f} ms)")


def longest_wait(work, rounds: int = 15) -> float:
    """The longest a thread that wants to run every millisecond (as the receiving thread does
    when a frame arrives) is kept waiting while `work` runs `rounds` times beside it, in ms.
    Python hands the GIL over every 5 ms between bytecodes, never inside one C call; so the
    floor is a pure-Python loop's (`python_floor`), and one long json.dumps shows as its length."""
    stop = threading.Event()
    worst = [0.0]

    def receiver() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            time.sleep(0.001)
            worst[0] = max(worst[0], time.perf_counter() - t0 - 0.001)

    th = threading.Thread(target=receiver, daemon=True)
    th.start()
    time.sleep(0.05)
    for _ in range(rounds):
        work()
    stop.set()
    th.join(5)
    return worst[0] * 1e3


def python_floor() -> float:
    def loop() -> None:
        x = 0
        for i in range(300_000):
            x += i
    return longest_wait(loop)


if __name__ == "__main__":
    wanted = sys.argv[1:] or ["bookkeeping", "status"]
    for section in wanted:
        {"bookkeeping": bookkeeping, "status": status}[section]()
