"""How fast the stand-in makes its market and turns it into Kite frames.

The stand-in must feed many instruments at high speed (60x and more) without becoming the
bottleneck of the client it tests. Three costs, per real second at 60x for N instruments:

* the market: a chunk (5 market minutes) per instrument every 5 real seconds; made many
  instruments at a time in one vectorised pass (`Market.prepare`, what the warm-up does), beside
  one at a time (what a lone lookup does), the two bit for bit equal;
* a tape: a link's packets for a stretch of market time (`livecli.sim.tape.build_tape`), 60
  market seconds, which at 60x is one real second of a link;
* encoding: a whole block of ticks per instrument with numpy (`FrameBuilder`), beside the
  baseline that encodes the same ticks packet by packet with `livecli.kite.codec` (struct
  calls); both produce the same bytes (checked here and in tests/test_sim_packets.py).

Run: .venv/bin/python bench/sim.py [instruments]
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livecli.core.timeutil import day_of, ist_day
from livecli.kite import codec
from livecli.sim import packets as P
from livecli.sim.market import Market
from livecli.sim.tape import build_tape
from livecli.sim.universe import builtin_universe, synthetic_universe

DAY = date(2025, 12, 10)


def baseline_frame(blocks: list) -> bytes:
    pk: list[tuple[int, bytes]] = []
    for b in blocks:
        ins = b.instrument
        tpu = ins.ticks_per_unit
        bk = P.book(b)
        avg = P._avg_units(b, P.unit_factor(ins)) / P.divisor(ins.instrument_token)
        for i in range(len(b)):
            pk.append((int(b.time_ms[i]), codec.encode_full(
                ins.instrument_token, b.price[i] / tpu, int(b.ltq[i]), float(avg[i]),
                int(b.volume[i]), int(bk.buy_total[i]), int(bk.sell_total[i]),
                b.open_ticks / tpu, b.high[i] / tpu, b.low[i] / tpu, b.prev_close_ticks / tpu,
                int(b.ltt_ms[i] // 1000), int(b.oi[i]), int(b.oi_high[i]), int(b.oi_low[i]),
                int(b.time_ms[i] // 1000),
                [(int(bk.bid_qty[i, j]), bk.bid_price[i, j] / tpu, int(bk.bid_orders[i, j])) for j in range(5)],
                [(int(bk.ask_qty[i, j]), bk.ask_price[i, j] / tpu, int(bk.ask_orders[i, j])) for j in range(5)],
            )))
    pk.sort(key=lambda x: x[0])
    return codec.encode_frame([p for _, p in pk])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    ins = builtin_universe(DAY) + synthetic_universe(max(0, n - 74))
    ins = [i for i in ins if not i.is_index][:n]  # the baseline encodes tradables only
    m = Market(ins, seed=1)
    d = day_of(DAY)
    t0 = time.perf_counter()
    for i in ins[:50]:
        m.day_ticks(i.instrument_token, d)
    gen = time.perf_counter() - t0
    ticks = sum(len(m.day_ticks(i.instrument_token, d)) for i in ins[:50])
    print(f"market: a full day of {ticks:,} ticks for 50 instruments generated in {gen:.2f} s "
          f"({ticks / gen:,.0f} ticks/s)")

    # The market at 60x: every instrument's next chunk, batched and one at a time.
    start = m.plan(ins[0].instrument_token, d).open_ms / 1000
    toks = [i.instrument_token for i in ins]
    for tok in toks:
        m.plan(tok, d)
    t0 = time.process_time()
    made = m.prepare(toks, start + 3 * 300 + 1)  # chunks 0..3: 1..3 only for their end state
    t_batch = (time.process_time() - t0) / max(made, 1)
    alone = Market(ins, seed=1)
    for tok in toks:
        alone.plan(tok, d)
    t0 = time.process_time()
    for tok in toks:
        alone._chunk(alone.plan(tok, d), 0)
    t_alone = (time.process_time() - t0) / len(toks)
    print(f"market chunks: {t_batch * 1e6:,.0f} us each batched, {t_alone * 1e6:,.0f} us one at a "
          f"time; at 60x {len(ins)} instruments cost {len(ins) * t_batch / 5:.2f} CPU s per second")
    subs = [(tok, "full") for tok in toks]
    t0 = time.process_time()
    tape = build_tape(m, subs, set(), start + 3 * 300 + 10, start + 3 * 300 + 70, 0)
    t_tape = time.process_time() - t0
    print(f"a tape of 60 market s (a real second at 60x): {len(tape):,} full packets in "
          f"{t_tape * 1e3:.0f} ms CPU")

    # One send cycle at 60x speed: 15 simulated seconds of every instrument, in full mode.
    start = start + 3600
    assert ist_day(start) == d
    blocks = [b for i in ins for b in m.ticks_between(i.instrument_token, start, start + 15)]
    count = sum(len(b) for b in blocks)
    reps = 5
    t0 = time.perf_counter()
    for _ in range(reps):
        fb = P.FrameBuilder()
        for b in blocks:
            fb.add(b, "full")
        ours = fb.frames()
    t_ours = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    base = baseline_frame(blocks)
    t_base = time.perf_counter() - t0
    assert ours == [base], "vectorised frame differs from the codec's"
    print(f"one 60x cycle over {len(ins)} instruments: {count:,} full packets")
    print(f"  stand-in (numpy blocks): {t_ours * 1e3:8.1f} ms  {count / t_ours:12,.0f} packets/s")
    print(f"  baseline (codec/struct): {t_base * 1e3:8.1f} ms  {count / t_base:12,.0f} packets/s")
    print(f"  ratio: {t_base / t_ours:.1f}x faster")


if __name__ == "__main__":
    main()
