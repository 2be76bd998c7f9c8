"""How fast the stand-in turns simulated ticks into Kite frames, beside per-packet encoding.

The stand-in must feed many instruments at high speed (60x and more) without becoming the
bottleneck of the client it tests. It encodes a whole block of ticks per instrument with numpy
(`livecli.sim.packets.FrameBuilder`); the baseline encodes the same ticks packet by packet with
`livecli.kite.codec` (struct calls) and joins them with `encode_frame`. Both produce the same
bytes (checked here and in tests/test_sim_packets.py). Also prints the market model's cost of
generating a trading day of ticks.

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

    # One send cycle at 60x speed: 15 simulated seconds of every instrument, in full mode.
    start = m.plan(ins[0].instrument_token, d).open_ms / 1000 + 3600
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
