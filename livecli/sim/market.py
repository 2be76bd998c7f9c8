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
from typing import Any, NamedTuple

import numpy as np

from livecli.core.sessions import Session, is_trading_day, session_for
from livecli.core.ticks import TickColumns
from livecli.core.timeutil import DAY_S, IST_OFFSET_S, date_of, ist_day
from livecli.sim import chunkgen
from livecli.sim.chunkgen import CHUNK_S, ChunkSpec
from livecli.sim.universe import Instrument

_AUCTION_FACTOR = 150  # opening auction volume, in average trade sizes
_COLD_CARRIES = 4096  # end states of chunks made for history and not kept (see Market._chunk)


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
        self._cold_carries: OrderedDict[tuple[int, int, int], Carry] = OrderedDict()
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
    def _start_carry(self, plan: DayPlan) -> Carry:
        pc = self.prev_close_ticks(plan.token, plan.day)
        return Carry(pc, 0, 0.0, 0, 0, 0, 0, plan.open_oi, plan.open_oi, plan.open_oi, 0)

    def _carry_before(self, plan: DayPlan, k: int) -> Carry:
        """The state at the start of chunk k (generating earlier chunks as needed)."""
        if k == 0:
            return self._start_carry(plan)
        key = (plan.token, plan.day, k - 1)
        c = self._carries.get(key) or self._cold_carries.get(key)
        if c is not None:
            return c
        j = k - 1
        while j > 0 and (plan.token, plan.day, j - 1) not in self._carries \
                and (plan.token, plan.day, j - 1) not in self._cold_carries:
            j -= 1
        for i in range(j, k):  # only their end states are wanted: the chunks are not kept
            self._make(plan, i, keep=False)
        return self._cold_carries[key]

    def _spec(self, plan: DayPlan, k: int, carry: Carry) -> ChunkSpec:
        ins = self.instrument(plan.token)
        s = self.session(plan.token)
        sd = ins.base_price * ins.volatility * math.sqrt(CHUNK_S / s.length_s) / ins.tick_size
        return ChunkSpec(ins, plan, k, carry, sd, self._avg_qty(ins),
                         self.prev_close_ticks(plan.token, plan.day))

    def _store(self, plan: DayPlan, k: int, blk: TickBlock, end: Carry) -> None:
        key = self._store_carry(plan, k, end)
        self._chunks[key] = blk
        if len(self._chunks) > self._cache_chunks:
            self._chunks.popitem(last=False)

    def _store_carry(self, plan: DayPlan, k: int, end: Carry,
                     cold: bool = False) -> tuple[int, int, int]:
        # History's end states go to a cache of their own: they are only needed for the next
        # chunk of the same read, and five days of 9000 instruments would push out the live ones.
        key = (plan.token, plan.day, k)
        carries = self._cold_carries if cold else self._carries
        carries[key] = end
        if len(carries) > (_COLD_CARRIES if cold else 20 * self._cache_chunks):
            carries.popitem(last=False)
        return key

    def _chunk(self, plan: DayPlan, k: int, keep: bool = True) -> TickBlock:
        """Chunk k of `plan`, from the cache or made. With `keep` False (history) a cached chunk
        is not refreshed and a made one is not cached, only its end state: the day after day
        a warm start reads would otherwise push out the chunks the links are about to send."""
        key = (plan.token, plan.day, k)
        blk = self._chunks.get(key)
        if blk is not None:
            if keep:
                self._chunks.move_to_end(key)
            return blk
        return self._make(plan, k, keep)

    def _make(self, plan: DayPlan, k: int, keep: bool) -> TickBlock:
        carry = self._carry_before(plan, k)
        ((blk, end),) = chunkgen.generate(self.seed, [self._spec(plan, k, carry)])
        if keep:
            self._store(plan, k, blk, end)
        else:
            self._store_carry(plan, k, end, cold=True)
        return blk

    def prev_close_ticks(self, token: int, day: int) -> int:
        """The previous trading day's last traded price (Kite's `close` field), in ticks.

        Every day's last trade lands on that day's close target (the last chunk always trades and
        its bridge ends there), so this is closed form: no need to generate yesterday.
        """
        return self._level(self.instrument(token), self.prev_trading_day(day))

    def prepare(self, tokens: list[int], t: float, batch: int = 256) -> int:
        """Generate (and cache) the chunk of each of `tokens` that holds market time `t`, with
        the chunks before it as far as needed to know its starting state, `batch` instruments
        at a time in one vectorised pass (livecli.sim.chunkgen). Returns how many it made."""
        day = ist_day(t)
        if not self.is_trading_day(day):
            return 0
        t_ms = math.floor(t * 1000)
        todo: list[tuple[DayPlan, int, int]] = []  # (plan, next chunk to make, target chunk)
        for tok in tokens:
            plan = self.plan(tok, day)
            if t_ms < plan.open_ms:
                continue
            k = int(min((t_ms - plan.open_ms) // (CHUNK_S * 1000), plan.n_chunks - 1))
            if (tok, day, k) in self._chunks:
                continue
            j = k
            while j > 0 and (tok, day, j - 1) not in self._carries:
                j -= 1
            todo.append((plan, j, k))
        made = 0
        while todo:  # one chunk number deeper per round, in batches
            nxt: list[Any] = []
            for lo in range(0, len(todo), batch):
                part = todo[lo:lo + batch]
                with self._lock:
                    specs = [self._spec(p, j, self._carry_before(p, j)) for p, j, _ in part]
                    for (p, j, _), (blk, end) in zip(part, chunkgen.generate(self.seed, specs),
                                                     strict=True):
                        self._store(p, j, blk, end)
                made += len(part)
                nxt.extend((p, j + 1, k) for p, j, k in part if j < k)
            todo = nxt
        return made

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

    def _day_range(self, token: int, day: int, lo_ms: int, hi_ms: int,
                   keep: bool = True) -> TickBlock | None:
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
                c = self._chunk(plan, k, keep)
                if keep:
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
        # Not kept in the cache: see `_chunk` (the API caches the rows it builds from these).
        return self._day_range(token, day, (base - 1) * 1000, math.floor(end * 1000),
                               keep=False)

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
