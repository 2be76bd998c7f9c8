"""Many instruments' chunks of the simulated market generated in one vectorised pass.

A chunk (five market minutes of one instrument, see `livecli.sim.market`) is a few hundred
ticks: generating it alone is some forty small numpy calls, a quarter of a millisecond of
interpreter overhead. With 9000 instruments at 60x that is 9000 chunks every 5 real seconds,
most of a core. Here the random draws stay per chunk (each chunk has its own random stream, so
what an instrument does never depends on which others were generated beside it), and all the
arithmetic runs once over the chunks laid end to end, with per-chunk offsets where a running
sum or maximum must restart.

The result is bit for bit what generating each chunk alone gives (tests/test_sim_market.py holds
a batch to its chunks made one at a time): integer sums are exact in any order, and the float
running sums (the bridge of trade prices, turnover) are still taken chunk by chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from livecli.sim.market import Carry, DayPlan, TickBlock
    from livecli.sim.universe import Instrument

CHUNK_S = 300
TRADE_P = 0.85  # share of tradable ticks that carry a trade (the rest only move the book)
SLOT_FILL = 0.9  # share of 1/rate slots that hold a tick
# Running minima and maxima restart per chunk by adding chunk_no * _BIG (prices are far below).
_BIG = np.int64(1 << 41)
_NO_TRADE = np.int64(1 << 40)  # "no trade yet" for running minima (above any price in ticks)


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """What generating chunk `k` of `plan` needs besides the seed."""

    ins: Instrument
    plan: DayPlan
    k: int
    carry: Carry  # the state at the chunk's start
    sd: float  # the price bridge's spread over the chunk, in ticks
    avg_qty: float  # the mean trade size (0: an index, no trades' quantities)
    prev_close: int  # the previous session's close, ticks


def stream(*words: int) -> np.random.Generator:
    """`np.random.default_rng(list(words))`, the same stream, without its slow list handling."""
    if all(0 <= w < 1 << 32 for w in words):
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
            np.array(words, np.uint32))))
    return np.random.default_rng(list(words))


def _const(value: int, n: int) -> np.ndarray:
    """`n` times `value` as a read-only view of one number (np.broadcast_to, cheaper)."""
    a = np.ndarray((n,), np.int64, np.array([value], np.int64), 0, (0,))
    a.flags.writeable = False
    return a


def _segments(lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(segment number, segment start, position within the segment) of every element."""
    starts = np.cumsum(lens) - lens
    seg = np.repeat(np.arange(len(lens)), lens)
    return seg, starts, np.arange(int(lens.sum())) - starts[seg]


def generate(seed: int, specs: list[ChunkSpec]) -> list[tuple[TickBlock, Carry]]:
    """Each spec's chunk as a TickBlock, with the state at its end."""
    from livecli.sim.market import Carry, TickBlock

    n_items = len(specs)
    if not n_items:
        return []
    rngs = []
    c0s, c1s, slots, n_slots = [], [], [], []
    u_fill, u_off = [], []
    for sp in specs:  # draws stay per chunk: its own stream, in the order they always came
        p = sp.plan
        rng = stream(seed, p.token, p.day, sp.k + 1)
        c0 = p.open_ms + sp.k * CHUNK_S * 1000
        c1 = min(c0 + CHUNK_S * 1000, p.close_ms)
        slot_ms = 1000.0 / sp.ins.rate
        ns = math.ceil((c1 - c0) / slot_ms)
        u_fill.append(rng.uniform(0, 1, ns))
        u_off.append(rng.uniform(0, 1, ns))
        rngs.append(rng)
        c0s.append(c0)
        c1s.append(c1)
        slots.append(slot_ms)
        n_slots.append(ns)
    ks = np.array([sp.k for sp in specs], np.int64)
    opens = np.array([sp.plan.open_ms for sp in specs], np.int64)
    first = ks == 0  # chunk 0 opens with the auction's trade at the open
    c1a = np.array(c1s, np.int64)

    # Tick times: a slot of 1/rate seconds holds one tick at a random offset, most slots filled.
    ns_a = np.array(n_slots, np.int64)
    seg, _, local = _segments(ns_a)
    tt = np.floor(np.array(c0s, np.int64)[seg] + (local + np.concatenate(u_off))
                  * np.array(slots)[seg]).astype(np.int64)
    keep = (np.concatenate(u_fill) < SLOT_FILL) & (tt < c1a[seg])
    keep &= ~first[seg] | (tt > opens[seg])
    t = tt[keep]
    lens = np.bincount(seg[keep], minlength=n_items).astype(np.int64)
    if first.any():
        at = (np.cumsum(lens) - lens)[first]
        t = np.insert(t, at, opens[first])
        lens[first] += 1

    # Which ticks trade (all of an index's do).
    is_index = np.array([sp.ins.is_index for sp in specs])
    u_trade = [np.ones(int(n)) if sp.ins.is_index else rng.uniform(0, 1, int(n))
               for sp, rng, n in zip(specs, rngs, lens.tolist(), strict=True)]
    seg, starts, local = _segments(lens)
    trade = (np.concatenate(u_trade) < TRADE_P) | is_index[seg]
    trade[starts[first & (lens > 0)]] = True
    m = np.bincount(seg[trade], minlength=n_items).astype(np.int64)

    # Trade prices: a bridge between the chunk's two anchors, drawn chunk by chunk.
    a0 = np.array([int(sp.plan.anchors[sp.k]) for sp in specs], np.int64)
    a1 = np.array([int(sp.plan.anchors[sp.k + 1]) for sp in specs], np.int64)
    walks, w_last = [], np.zeros(n_items)
    for i, (sp, rng) in enumerate(zip(specs, rngs, strict=True)):
        mi = int(m[i])
        if mi:
            w = np.cumsum(rng.normal(0, max(sp.sd, 0.3) / math.sqrt(mi), mi))
            walks.append(w)
            w_last[i] = w[-1]
        else:
            walks.append(np.zeros(0))
    # The day's last trade must land on the close target: a quiet last chunk gets one.
    last = np.array([sp.k == sp.plan.n_chunks - 1 for sp in specs]) & (m == 0)
    bridged = m > 0
    if last.any():
        empty = last & (lens == 0)
        if empty.any():
            at = (np.cumsum(lens) - lens)[empty]
            t = np.insert(t, at, c1a[empty] - 1000)
            trade = np.insert(trade, at, True)
            lens[empty] = 1
            seg, starts, local = _segments(lens)
        trade[(starts + lens - 1)[last]] = True
        m[last] = 1
    qs = []
    for i, (sp, rng) in enumerate(zip(specs, rngs, strict=True)):
        if sp.avg_qty > 0:
            qs.append(rng.lognormal(math.log(sp.avg_qty), 0.9, int(m[i])))
        else:
            qs.append(np.zeros(int(m[i])))

    tseg, tstarts, tlocal = _segments(m)
    frac = (tlocal + 1) / m[tseg]
    w_all = np.concatenate(walks)
    bw = bridged[tseg]
    tp = np.empty(int(m.sum()), np.int64)
    if bw.any():
        bs = tseg[bw]
        tp[bw] = np.maximum(np.rint(a0[bs] + w_all - frac[bw] * w_last[bs]
                                    + frac[bw] * (a1[bs] - a0[bs])).astype(np.int64), 1)
    tp[tstarts[first & bridged]] = a0[first & bridged]
    tp[tstarts[last]] = a1[last]
    lots = np.array([sp.ins.lot_size for sp in specs], np.int64)[tseg]
    q = np.maximum(1, np.rint(np.concatenate(qs))).astype(np.int64)
    q = np.where(lots > 1, np.maximum(1, q // np.maximum(lots, 1)) * lots, q)
    avg0 = np.array([sp.avg_qty <= 0 for sp in specs])
    q[avg0[tseg]] = 0
    auction = first & (m > 0) & ~avg0
    q[tstarts[auction]] = [sp.plan.auction_qty for sp, a in zip(specs, auction, strict=True) if a]

    # Running state per tick, restarting at each chunk from its carry.
    carries = [sp.carry for sp in specs]
    n = len(t)
    gidx = np.arange(n)
    last_trade = np.maximum.accumulate(np.where(trade, gidx, starts[seg] - 1)) if n else gidx
    has = last_trade >= starts[seg]
    tpos = np.cumsum(trade) - 1
    c_price = np.array([c.price for c in carries], np.int64)
    price = np.where(has, tp[np.clip(tpos, 0, max(len(tp) - 1, 0))] if len(tp) else 0,
                     c_price[seg])
    qty = np.zeros(n, np.int64)
    qty[trade] = q
    vol_cum = np.cumsum(qty)
    vol_before = np.concatenate([[0], vol_cum])[starts]
    volume = np.array([c.volume for c in carries], np.int64)[seg] + vol_cum - vol_before[seg]
    flow = qty * price.astype(np.float64)
    bounds = np.concatenate([starts, [n]]).tolist()
    turnover = np.empty(n)
    for i, c in enumerate(carries):
        a, b = bounds[i], bounds[i + 1]
        if b > a:
            turnover[a:b] = c.turnover + np.cumsum(flow[a:b])
    off = seg * _BIG
    hi0 = np.array([c.high if c.volume or c.high else -1 for c in carries], np.int64)
    lo0 = np.array([c.low if c.volume or c.low else _NO_TRADE for c in carries], np.int64)
    run_hi = np.maximum.accumulate(np.where(trade, price, -1) + 1 + off) - off - 1
    high = np.maximum(hi0[seg], run_hi)
    high = np.where(high < 0, price, high)
    run_lo = _NO_TRADE - (np.maximum.accumulate(_NO_TRADE - np.where(trade, price, _NO_TRADE)
                                                + off) - off)
    low = np.minimum(lo0[seg], run_lo)
    low = np.where(low >= _NO_TRADE, price, low)
    lt = np.maximum(last_trade, 0)
    ltt = np.where(has, t[lt] if n else 0, np.array([c.ltt_ms for c in carries], np.int64)[seg])
    ltq = np.where(has, qty[lt] if n else 0, np.array([c.ltq for c in carries], np.int64)[seg])
    seq = np.array([c.seq for c in carries], np.int64)[seg] + local

    out = []
    for i, (sp, c) in enumerate(zip(specs, carries, strict=True)):
        a, b = bounds[i], bounds[i + 1]
        size = b - a
        ins, p = sp.ins, sp.plan
        if ins.has_oi and size:
            orng = stream(seed, p.token, p.day, sp.k + 1, 0x01)
            step = np.where(trade[a:b], orng.integers(-1, 2, size) * qty[a:b], 0)
            oi = np.maximum(c.oi + np.cumsum(step), ins.lot_size)
            oi_high = np.maximum(c.oi_high, np.maximum.accumulate(oi))
            oi_low = np.minimum(c.oi_low, np.minimum.accumulate(oi))
        else:  # constant: views of one value, no memory per tick
            oi, oi_high, oi_low = _const(c.oi, size), _const(c.oi_high, size), _const(c.oi_low, size)
        blk = TickBlock(ins, p.day, t[a:b], price[a:b], ltq[a:b], volume[a:b], turnover[a:b],
                        high[a:b], low[a:b], ltt[a:b], oi, oi_high, oi_low, seq[a:b],
                        int(p.anchors[0]), sp.prev_close)
        if size:
            e = b - 1
            end = Carry(int(price[e]), int(volume[e]), float(turnover[e]), int(high[e]),
                        int(low[e]), int(ltt[e]), int(ltq[e]), int(oi[-1]), int(oi_high[-1]),
                        int(oi_low[-1]), c.seq + size)
        else:
            end = c
        out.append((blk, end))
    return out
