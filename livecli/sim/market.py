"""A deterministic simulated market: every tick of every instrument on every day, from a seed.

Why deterministic and random-access: the stand-in's ticker and its historical endpoint must tell
the same story (history built from the very ticks the ticker sends), two runs with one seed must
send the same ticks, and what an instrument does must not depend on who subscribed when. So each
(seed, instrument, day) has its own random streams, and the day is cut into fixed chunks
(`CHUNK_S` of session time) that are generated lazily with numpy and cached:

* a day plan fixes the open, the close target and a price anchor at every chunk boundary
  (a Brownian bridge between the open and the close);
* a chunk draws its tick times (one per 1/rate-second slot, most slots filled), which ticks are
  trades, their sizes, and a bridge of trade prices between its two anchors, from its own stream;
* running state (cumulative volume, turnover, day high/low, open interest) is carried from the
  previous chunk's end, so chunk k needs chunk k-1's end state, which is cached separately.

Prices are integers in ticks (multiples of the instrument's tick size) until they leave here.
Before the open and after the close nothing ticks; weekends have no session.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from livecli.core.sessions import Session, is_trading_day, session_for
from livecli.core.ticks import TickColumns
from livecli.core.timeutil import DAY_S, IST_OFFSET_S, date_of, ist_day
from livecli.sim.universe import Instrument

CHUNK_S = 300
_TRADE_P = 0.85  # share of tradable ticks that carry a trade (the rest only move the book)
_SLOT_FILL = 0.9  # share of 1/rate slots that hold a tick
_AUCTION_FACTOR = 150  # opening auction volume, in average trade sizes


class Carry(NamedTuple):
    """An instrument's running state at a chunk boundary."""

    price: int
    volume: int
    turnover: float
    high: int
    low: int
    ltt_ms: int
    ltq: int
    oi: int
    oi_high: int
    oi_low: int
    seq: int


@dataclass(frozen=True, slots=True)
class DayPlan:
    token: int
    day: int
    open_ms: int
    close_ms: int
    n_chunks: int
    anchors: np.ndarray  # int64 ticks, n_chunks + 1
    auction_qty: int
    open_oi: int


@dataclass(slots=True)
class TickBlock:
    """Consecutive ticks of one instrument on one day (numpy arrays, prices in ticks)."""

    instrument: Instrument
    day: int
    time_ms: np.ndarray
    price: np.ndarray
    ltq: np.ndarray
    volume: np.ndarray
    turnover: np.ndarray
    high: np.ndarray
    low: np.ndarray
    ltt_ms: np.ndarray
    oi: np.ndarray
    oi_high: np.ndarray
    oi_low: np.ndarray
    seq: np.ndarray
    open_ticks: int
    prev_close_ticks: int

    def __len__(self) -> int:
        return len(self.time_ms)

    def slice(self, lo: int, hi: int) -> TickBlock:
        return TickBlock(
            self.instrument, self.day, self.time_ms[lo:hi], self.price[lo:hi], self.ltq[lo:hi],
            self.volume[lo:hi], self.turnover[lo:hi], self.high[lo:hi], self.low[lo:hi],
            self.ltt_ms[lo:hi], self.oi[lo:hi], self.oi_high[lo:hi], self.oi_low[lo:hi],
            self.seq[lo:hi], self.open_ticks, self.prev_close_ticks,
        )

    @staticmethod
    def concat(blocks: list[TickBlock]) -> TickBlock:
        b0 = blocks[0]
        if len(blocks) == 1:
            return b0

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(b, name) for b in blocks])

        return TickBlock(
            b0.instrument, b0.day, cat("time_ms"), cat("price"), cat("ltq"), cat("volume"),
            cat("turnover"), cat("high"), cat("low"), cat("ltt_ms"), cat("oi"), cat("oi_high"),
            cat("oi_low"), cat("seq"), b0.open_ticks, b0.prev_close_ticks,
        )


class Market:
    """The simulated market for a set of instruments and a seed. Thread-safe."""

    def __init__(self, instruments: list[Instrument], seed: int = 1,
                 sessions: dict[str, Session] | None = None, cache_chunks: int | None = None) -> None:
        self.seed = int(seed)
        self.instruments = list(instruments)
        self._by_token = {i.instrument_token: i for i in self.instruments}
        if len(self._by_token) != len(self.instruments):
            raise ValueError("instrument tokens must be unique")
        self._sessions = sessions
        self._lock = threading.RLock()
        self._chunks: OrderedDict[tuple[int, int, int], TickBlock] = OrderedDict()
        self._carries: OrderedDict[tuple[int, int, int], Carry] = OrderedDict()
        self._plans: OrderedDict[tuple[int, int], DayPlan] = OrderedDict()
        # Every instrument's current and next chunk (the warm-up makes the next one early), plus
        # room for a few instruments' whole days (history).
        self._cache_chunks = cache_chunks or 2 * len(self.instruments) + 4000
        self._phase: dict[int, tuple[float, float]] = {}
        self._trading: dict[int, bool] = {}
        self._levels: dict[tuple[int, int], int] = {}
        # token -> (first ms, end ms, chunk) of the chunk last read: the ticker's common case.
        self._hot: dict[int, tuple[int, int, TickBlock]] = {}

    # --- lookup -------------------------------------------------------------------------------
    def instrument(self, token: int) -> Instrument:
        try:
            return self._by_token[token]
        except KeyError:
            raise KeyError(f"instrument token {token} is not in the stand-in's universe") from None

    def __contains__(self, token: object) -> bool:
        return token in self._by_token

    def session(self, token: int) -> Session:
        return session_for(self.instrument(token).session_exchange, self._sessions)

    # --- daily levels -------------------------------------------------------------------------
    def _level(self, ins: Instrument, day: int) -> int:
        """The close target of `day`, in ticks: smooth swings plus daily noise (closed form)."""
        key = (ins.instrument_token, day)
        v = self._levels.get(key)
        if v is not None:
            return v
        ph = self._phase.get(ins.instrument_token)
        if ph is None:
            r = np.random.default_rng([self.seed, ins.instrument_token, 0xC0DE])
            ph = (float(r.uniform(0, 2 * math.pi)), float(r.uniform(0, 2 * math.pi)))
            self._phase[ins.instrument_token] = ph
        z = float(np.random.default_rng([self.seed, ins.instrument_token, day, 3]).normal())
        x = (0.04 * math.sin(2 * math.pi * day / 40 + ph[0])
             + 0.01 * math.sin(2 * math.pi * day / 9 + ph[1]) + 0.6 * ins.volatility * z)
        v = max(1, round(ins.base_price * math.exp(x) / ins.tick_size))
        if len(self._levels) > 20 * max(len(self.instruments), 1000):
            self._levels.clear()
        self._levels[key] = v
        return v

    @staticmethod
    def prev_trading_day(day: int) -> int:
        d = day - 1
        while not is_trading_day(date_of(d)):
            d -= 1
        return d

    def is_trading_day(self, day: int) -> bool:
        v = self._trading.get(day)
        if v is None:
            v = self._trading[day] = is_trading_day(date_of(day))
        return v

    def plan(self, token: int, day: int) -> DayPlan:
        key = (token, day)
        with self._lock:
            p = self._plans.get(key)
            if p is not None:
                self._plans.move_to_end(key)
                return p
            ins = self.instrument(token)
            s = self.session(token)
            base = day * DAY_S - IST_OFFSET_S
            open_ms, close_ms = (base + s.open_s) * 1000, (base + s.close_s) * 1000
            k = math.ceil(s.length_s / CHUNK_S)
            rng = np.random.default_rng([self.seed, token, day, 0])
            prev_level = self._level(ins, self.prev_trading_day(day))
            open_t = max(1, round(prev_level * (1 + rng.normal(0, ins.volatility / 3))))
            close_t = self._level(ins, day)
            sd = max(ins.base_price * ins.volatility * math.sqrt(CHUNK_S / s.length_s)
                     / ins.tick_size, 0.5)
            w = np.concatenate([[0.0], np.cumsum(rng.normal(0, sd, k))])
            frac = np.arange(k + 1) / k
            anchors = np.rint(open_t + w - frac * w[-1] + frac * (close_t - open_t)).astype(np.int64)
            anchors = np.maximum(anchors, 1)
            anchors[0], anchors[-1] = open_t, close_t
            auction = int(self._avg_qty(ins) * _AUCTION_FACTOR * rng.uniform(0.5, 1.5))
            open_oi = int(ins.lot_size * rng.integers(20_000, 200_000)) if ins.has_oi else 0
            p = DayPlan(token, day, int(open_ms), int(close_ms), k, anchors, auction, open_oi)
            self._plans[key] = p
            if len(self._plans) > 4 * max(len(self.instruments), 1000):
                self._plans.popitem(last=False)
            return p

    @staticmethod
    def _avg_qty(ins: Instrument) -> float:
        if ins.is_index:
            return 0.0
        if ins.lot_size > 1:
            return float(ins.lot_size) * 2
        return max(1.0, 40_000.0 / ins.base_price)

    # --- chunks -------------------------------------------------------------------------------
    def _raw_chunk(self, plan: DayPlan, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(time_ms, is_trade, trade price ticks, qty) of chunk k: its own stream, no carry."""
        ins = self.instrument(plan.token)
        rng = np.random.default_rng([self.seed, plan.token, plan.day, k + 1])
        c0 = plan.open_ms + k * CHUNK_S * 1000
        c1 = min(c0 + CHUNK_S * 1000, plan.close_ms)
        slot_ms = 1000.0 / ins.rate
        n_slots = math.ceil((c1 - c0) / slot_ms)
        filled = rng.uniform(0, 1, n_slots) < _SLOT_FILL
        offs = rng.uniform(0, 1, n_slots)
        t = np.floor(c0 + (np.arange(n_slots) + offs) * slot_ms).astype(np.int64)[filled]
        t = t[t < c1]
        if k == 0:
            # The opening auction's trade prints at the open.
            t = np.concatenate([[plan.open_ms], t[t > plan.open_ms]])
        n = len(t)
        trade = np.ones(n, np.bool_) if ins.is_index else rng.uniform(0, 1, n) < _TRADE_P
        if k == 0 and n:
            trade[0] = True
        m = int(trade.sum())
        a0, a1 = int(plan.anchors[k]), int(plan.anchors[k + 1])
        if m:
            s = self.session(plan.token)
            sd_chunk = ins.base_price * ins.volatility * math.sqrt(CHUNK_S / s.length_s) / ins.tick_size
            w = np.cumsum(rng.normal(0, max(sd_chunk, 0.3) / math.sqrt(m), m))
            frac = np.arange(1, m + 1) / m
            tp = np.rint(a0 + w - frac * w[-1] + frac * (a1 - a0)).astype(np.int64)
            tp = np.maximum(tp, 1)
            if k == 0:
                tp[0] = a0
        else:
            tp = np.zeros(0, np.int64)
        avg = self._avg_qty(ins)
        if k == plan.n_chunks - 1 and m == 0:
            # The day's last trade must land on the close target: give a quiet last chunk one.
            if n == 0:
                t = np.array([c1 - 1000], np.int64)
                trade = np.ones(1, np.bool_)
            trade[-1] = True
            m, tp = 1, np.array([a1], np.int64)
        if avg > 0:
            q = np.maximum(1, np.rint(rng.lognormal(math.log(avg), 0.9, m))).astype(np.int64)
            if ins.lot_size > 1:
                q = np.maximum(1, q // ins.lot_size) * ins.lot_size
            if k == 0 and m:
                q[0] = plan.auction_qty
        else:
            q = np.zeros(m, np.int64)
        return t, trade, tp, q

    def _start_carry(self, plan: DayPlan) -> Carry:
        pc = self.prev_close_ticks(plan.token, plan.day)
        return Carry(pc, 0, 0.0, 0, 0, 0, 0, plan.open_oi, plan.open_oi, plan.open_oi, 0)

    def _carry_before(self, plan: DayPlan, k: int) -> Carry:
        """The state at the start of chunk k (generating earlier chunks as needed)."""
        if k == 0:
            return self._start_carry(plan)
        key = (plan.token, plan.day, k - 1)
        c = self._carries.get(key)
        if c is not None:
            return c
        j = k - 1
        while j > 0 and (plan.token, plan.day, j - 1) not in self._carries:
            j -= 1
        for i in range(j, k):
            self._chunk(plan, i)
        return self._carries[key]

    def _chunk(self, plan: DayPlan, k: int) -> TickBlock:
        key = (plan.token, plan.day, k)
        blk = self._chunks.get(key)
        if blk is not None:
            self._chunks.move_to_end(key)
            return blk
        ins = self.instrument(plan.token)
        carry = self._carry_before(plan, k)
        t, trade, tp, q = self._raw_chunk(plan, k)
        n = len(t)
        idx = np.arange(n)
        last_trade = np.maximum.accumulate(np.where(trade, idx, -1)) if n else idx
        has = last_trade >= 0
        tpos = np.cumsum(trade) - 1  # index into tp/q of the latest trade at or before each tick
        price = np.where(has, tp[np.maximum(tpos, 0)] if len(tp) else carry.price, carry.price)
        qty = np.zeros(n, np.int64)
        qty[trade] = q
        volume = carry.volume + np.cumsum(qty)
        turnover = carry.turnover + np.cumsum(qty * price.astype(np.float64))
        big = np.iinfo(np.int64).max
        hi0 = carry.high if carry.volume or carry.high else -1
        lo0 = carry.low if carry.volume or carry.low else big
        high = np.maximum(hi0, np.maximum.accumulate(np.where(trade, price, -1))) if n else price
        low = np.minimum(lo0, np.minimum.accumulate(np.where(trade, price, big))) if n else price
        high = np.where(high < 0, price, high)
        low = np.where(low == big, price, low)
        ltt = np.where(has, t[np.maximum(last_trade, 0)], carry.ltt_ms)
        ltq = np.where(has, qty[np.maximum(last_trade, 0)], carry.ltq)
        if ins.has_oi and n:
            orng = np.random.default_rng([self.seed, plan.token, plan.day, k + 1, 0x01])
            step = np.where(trade, orng.integers(-1, 2, n) * qty, 0)
            oi = np.maximum(carry.oi + np.cumsum(step), ins.lot_size)
            oi_high = np.maximum(carry.oi_high, np.maximum.accumulate(oi))
            oi_low = np.minimum(carry.oi_low, np.minimum.accumulate(oi))
        else:  # constant: views of one value, no memory per tick
            oi = np.broadcast_to(np.int64(carry.oi), (n,))
            oi_high = np.broadcast_to(np.int64(carry.oi_high), (n,))
            oi_low = np.broadcast_to(np.int64(carry.oi_low), (n,))
        seq = carry.seq + idx
        blk = TickBlock(ins, plan.day, t, price, ltq, volume, turnover, high, low, ltt, oi,
                        oi_high, oi_low, seq, int(plan.anchors[0]), self.prev_close_ticks(
                            plan.token, plan.day))
        if n:
            end = Carry(int(price[-1]), int(volume[-1]), float(turnover[-1]), int(high[-1]),
                        int(low[-1]), int(ltt[-1]), int(ltq[-1]), int(oi[-1]), int(oi_high[-1]),
                        int(oi_low[-1]), carry.seq + n)
        else:
            end = carry
        self._carries[key] = end
        if len(self._carries) > 20 * self._cache_chunks:
            self._carries.popitem(last=False)
        self._chunks[key] = blk
        if len(self._chunks) > self._cache_chunks:
            self._chunks.popitem(last=False)
        return blk

    def prev_close_ticks(self, token: int, day: int) -> int:
        """The previous trading day's last traded price (Kite's `close` field), in ticks.

        Every day's last trade lands on that day's close target (the last chunk always trades and
        its bridge ends there), so this is closed form: no need to generate yesterday.
        """
        return self._level(self.instrument(token), self.prev_trading_day(day))

    def prepare(self, token: int, t: float) -> bool:
        """Generate (and cache) the chunk of `token` that holds market time `t`; True if it had
        to. The chunks before it are generated too, as far as needed to know its starting state."""
        day = ist_day(t)
        if not self.is_trading_day(day):
            return False
        plan = self.plan(token, day)
        t_ms = math.floor(t * 1000)
        if t_ms < plan.open_ms:
            return False
        k = int(min((t_ms - plan.open_ms) // (CHUNK_S * 1000), plan.n_chunks - 1))
        if (token, day, k) in self._chunks:
            return False
        with self._lock:
            self._chunk(plan, k)
        return True

    # --- queries ------------------------------------------------------------------------------
    def ticks_between(self, token: int, t0: float, t1: float) -> list[TickBlock]:
        """Ticks of `token` with t0 < time <= t1 (epoch seconds), one block per IST day.

        A range longer than a week is cut to its last 7 days.
        """
        lo_ms, hi_ms = math.floor(t0 * 1000), math.floor(t1 * 1000)
        if hi_ms <= lo_ms:
            return []
        hot = self._hot.get(token)
        if hot is not None and hot[0] <= lo_ms and hi_ms < hot[1]:
            c = hot[2]
            i = int(c.time_ms.searchsorted(lo_ms, side="right"))
            j = int(c.time_ms.searchsorted(hi_ms, side="right"))
            return [c.slice(i, j)] if j > i else []
        d1 = ist_day(t1)
        d0 = max(ist_day(t0), d1 - 6)
        blocks = []
        for day in range(d0, d1 + 1):
            b = self._day_range(token, day, lo_ms, hi_ms)
            if b is not None:
                blocks.append(b)
        return blocks

    def _day_range(self, token: int, day: int, lo_ms: int, hi_ms: int) -> TickBlock | None:
        if not self.is_trading_day(day):
            return None
        with self._lock:
            plan = self.plan(token, day)
            a, b = max(lo_ms + 1, plan.open_ms), min(hi_ms, plan.close_ms - 1)
            if b < a:
                return None
            k0 = (a - plan.open_ms) // (CHUNK_S * 1000)
            k1 = min((b - plan.open_ms) // (CHUNK_S * 1000), plan.n_chunks - 1)
            parts = []
            for k in range(int(k0), int(k1) + 1):
                c = self._chunk(plan, k)
                c0 = plan.open_ms + k * CHUNK_S * 1000
                self._hot[token] = (c0, min(c0 + CHUNK_S * 1000, plan.close_ms), c)
                i = int(np.searchsorted(c.time_ms, lo_ms, side="right"))
                j = int(np.searchsorted(c.time_ms, hi_ms, side="right"))
                if j > i:
                    parts.append(c.slice(i, j))
            if not parts:
                return None
            return TickBlock.concat(parts)

    def day_ticks(self, token: int, day: int, until: float | None = None) -> TickBlock | None:
        """All ticks of `token` on IST day `day`, up to `until` (epoch s) when given."""
        base = day * DAY_S - IST_OFFSET_S
        end = base + DAY_S - 0.001 if until is None else min(until, base + DAY_S - 0.001)
        return self._day_range(token, day, (base - 1) * 1000, math.floor(end * 1000))

    def last_tick(self, token: int, t: float) -> TickBlock | None:
        """The latest tick of `token` at or before `t` on t's IST day (a 1-row block)."""
        day = ist_day(t)
        if not self.is_trading_day(day):
            return None
        with self._lock:
            plan = self.plan(token, day)
            t_ms = min(math.floor(t * 1000), plan.close_ms - 1)
            if t_ms < plan.open_ms:
                return None
            k = int(min((t_ms - plan.open_ms) // (CHUNK_S * 1000), plan.n_chunks - 1))
            while k >= 0:
                c = self._chunk(plan, k)
                j = int(np.searchsorted(c.time_ms, t_ms, side="right"))
                if j:
                    return c.slice(j - 1, j)
                k -= 1
            return None

    def tick_columns(self, blocks: list[TickBlock]) -> TickColumns:
        """TickColumns for the candle engine, in time order, times as whole exchange seconds."""
        if not blocks:
            return TickColumns([], [], [], [], [], [], [])
        tok, tm, px, vol, hi, lo, oi = [], [], [], [], [], [], []
        for b in blocks:
            ins = b.instrument
            n = len(b)
            tok.append(np.full(n, ins.instrument_token, np.int64))
            tm.append((b.time_ms // 1000).astype(np.float64))
            px.append(b.price / ins.ticks_per_unit)
            vol.append(np.full(n, -1, np.int64) if ins.is_index else b.volume)
            hi.append(b.high / ins.ticks_per_unit)
            lo.append(b.low / ins.ticks_per_unit)
            oi.append(b.oi if ins.has_oi else np.full(n, -1, np.int64))
        t_all = np.concatenate(tm)
        order = np.argsort(t_all, kind="stable")
        return TickColumns(
            np.concatenate(tok)[order], t_all[order], np.concatenate(px)[order],
            np.concatenate(vol)[order], np.concatenate(hi)[order], np.concatenate(lo)[order],
            np.concatenate(oi)[order],
        )
