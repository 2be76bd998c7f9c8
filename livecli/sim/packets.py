"""Kite ticker packets for a whole block of simulated ticks at once, vectorised with numpy.

At speed 60 a liquid instrument ticks 120 times per real second; encoding each packet with
struct calls would make the stand-in, not the client under test, the bottleneck. These encoders
fill numpy structured arrays laid out exactly as Kite's packets (each row prefixed by its uint16
length, as inside a frame) and are held byte-for-byte equal to `livecli.kite.codec`'s reference
encoders by tests/test_sim_packets.py.

The order book (depth, total buy/sell quantity) is not modelled tick by tick: it is derived
deterministically from the instrument, the tick's sequence number and its price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from livecli.kite.codec import price_divisor
from livecli.kite.protocol import MODE_FULL, MODE_LTP
from livecli.sim.market import TickBlock
from livecli.sim.universe import Instrument

# A frame's packet count is a uint16.
MAX_FRAME_PACKETS = 65_535

_U4 = ">u4"
LTP_ROW = np.dtype([("len", ">u2"), ("token", _U4), ("last", _U4)])
_QUOTE_FIELDS = [
    ("len", ">u2"), ("token", _U4), ("last", _U4), ("ltq", _U4), ("avg", _U4), ("volume", _U4),
    ("buy", _U4), ("sell", _U4), ("open", _U4), ("high", _U4), ("low", _U4), ("close", _U4),
]
QUOTE_ROW = np.dtype(_QUOTE_FIELDS)
_DEPTH = np.dtype([("qty", _U4), ("price", _U4), ("orders", ">u2"), ("pad", ">u2")])
FULL_ROW = np.dtype([
    *_QUOTE_FIELDS, ("ltt", _U4), ("oi", _U4), ("oi_high", _U4), ("oi_low", _U4), ("ts", _U4),
    ("depth", _DEPTH, (10,)),
])
INDEX_QUOTE_ROW = np.dtype([
    ("len", ">u2"), ("token", _U4), ("last", _U4), ("high", _U4), ("low", _U4), ("open", _U4),
    ("close", _U4), ("change", ">i4"),
])
INDEX_FULL_ROW = np.dtype([*INDEX_QUOTE_ROW.descr, ("ts", _U4)])

def divisor(token: int) -> int:
    """Packet integers per rupee for `token`'s segment (Kite's price divisor)."""
    return int(price_divisor(token))


def unit_factor(ins: Instrument) -> int:
    """Packet integer units per price tick (e.g. 5 for a 0.05 tick at divisor 100)."""
    return divisor(ins.instrument_token) // ins.ticks_per_unit


def _mix(seq: np.ndarray, token: np.ndarray | int, salt: int) -> np.ndarray:
    """A cheap deterministic hash of (sequence, token, salt) into [0, 2**32)."""
    key = (np.asarray(token, np.uint64) * np.uint64(40503) + np.uint64(salt)) & np.uint64(0xFFFFFFFF)
    x = seq.astype(np.uint64) * np.uint64(2654435761) + key
    x ^= x >> np.uint64(15)
    x *= np.uint64(2246822519)
    x ^= x >> np.uint64(13)
    return (x & np.uint64(0xFFFFFFFF)).astype(np.int64)


@dataclass(slots=True)
class Cols:
    """Several blocks' ticks concatenated, with each row's instrument constants beside them."""

    token: np.ndarray
    factor: np.ndarray
    open: np.ndarray
    prev: np.ndarray
    unit: np.ndarray
    typical: np.ndarray
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


def _typical(ins: Instrument) -> tuple[int, int]:
    unit = max(ins.lot_size, 1)
    return unit, max(1, int(40_000 / max(ins.base_price, 0.01)) // unit) * unit


def columns(blocks: list[TickBlock]) -> Cols:
    lens = [len(b) for b in blocks]

    def per_block(values: list[int]) -> np.ndarray:
        return np.repeat(np.asarray(values, np.int64), lens)

    def cat(name: str) -> np.ndarray:
        arrs = [getattr(b, name) for b in blocks]
        return arrs[0] if len(arrs) == 1 else np.concatenate(arrs)

    ins = [b.instrument for b in blocks]
    ut = [_typical(i) for i in ins]
    return Cols(
        per_block([i.instrument_token for i in ins]), per_block([unit_factor(i) for i in ins]),
        per_block([b.open_ticks for b in blocks]), per_block([b.prev_close_ticks for b in blocks]),
        per_block([u for u, _ in ut]), per_block([t for _, t in ut]),
        cat("time_ms"), cat("price"), cat("ltq"), cat("volume"), cat("turnover"), cat("high"),
        cat("low"), cat("ltt_ms"), cat("oi"), cat("oi_high"), cat("oi_low"), cat("seq"),
    )


@dataclass(slots=True)
class Book:
    """Derived order book columns: totals and 5 levels per side (prices in ticks)."""

    buy_total: np.ndarray
    sell_total: np.ndarray
    bid_price: np.ndarray  # (n, 5) ticks
    bid_qty: np.ndarray
    bid_orders: np.ndarray
    ask_price: np.ndarray
    ask_qty: np.ndarray
    ask_orders: np.ndarray


def book_cols(c: Cols) -> Book:
    n = len(c.seq)
    h1 = _mix(c.seq, c.token, 1)
    h2 = _mix(c.seq, c.token, 2)
    buy_total = c.typical * 300 * (700 + (h1 & 0x3FF) // 2) // 1000
    sell_total = c.typical * 300 * (700 + (h2 & 0x3FF) // 2) // 1000
    lv = np.arange(5)
    spread0 = (h1 >> 12) & 1  # best bid one tick under the last price, or at it
    bid_price = np.maximum(c.price[:, None] - spread0[:, None] - lv[None, :], 0)
    ask_price = bid_price[:, :1] + 1 + lv[None, :]
    hq = _mix(np.repeat(c.seq, 10) * 16 + np.tile(np.arange(10), n), np.repeat(c.token, 10),
              3).reshape(n, 10)
    lots = np.maximum(1, c.typical // c.unit // 4)
    qty = (1 + hq % 40) * (c.unit * lots)[:, None]
    orders = 1 + (hq >> 8) % 25
    return Book(buy_total, sell_total, bid_price, qty[:, :5], orders[:, :5], ask_price,
                qty[:, 5:], orders[:, 5:])


def book(b: TickBlock) -> Book:
    return book_cols(columns([b]))


def _avg_units(b: TickBlock | Cols, f: int | np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(b.volume > 0, b.turnover / np.maximum(b.volume, 1), b.price)
    return np.rint(avg * f).astype(np.int64)


def encode_rows(b: TickBlock, mode: str) -> tuple[np.ndarray, int]:
    """Length-prefixed packet rows for every tick of `b` in `mode`: (structured array, row size)."""
    return encode_cols(columns([b]), mode, b.instrument.is_index)


def encode_cols(c: Cols, mode: str, index: bool) -> tuple[np.ndarray, int]:
    """Rows for concatenated blocks of one kind (indices, or tradables) in one mode."""
    n = len(c.seq)
    f = c.factor
    if mode == MODE_LTP:
        rows = np.zeros(n, LTP_ROW)
        rows["len"] = 8
        rows["token"] = c.token
        rows["last"] = c.price * f
        return rows, LTP_ROW.itemsize
    if index:
        dt = INDEX_FULL_ROW if mode == MODE_FULL else INDEX_QUOTE_ROW
        rows = np.zeros(n, dt)
        rows["len"] = dt.itemsize - 2
        rows["token"] = c.token
        rows["last"] = c.price * f
        rows["high"] = c.high * f
        rows["low"] = c.low * f
        rows["open"] = c.open * f
        rows["close"] = c.prev * f
        rows["change"] = (c.price - c.prev) * f
        if mode == MODE_FULL:
            rows["ts"] = c.time_ms // 1000
        return rows, dt.itemsize
    dt = FULL_ROW if mode == MODE_FULL else QUOTE_ROW
    rows = np.zeros(n, dt)
    rows["len"] = dt.itemsize - 2
    rows["token"] = c.token
    rows["last"] = c.price * f
    rows["ltq"] = c.ltq
    rows["avg"] = _avg_units(c, f)
    rows["volume"] = c.volume
    bk = book_cols(c)
    rows["buy"] = bk.buy_total
    rows["sell"] = bk.sell_total
    rows["open"] = c.open * f
    rows["high"] = c.high * f
    rows["low"] = c.low * f
    rows["close"] = c.prev * f
    if mode == MODE_FULL:
        rows["ltt"] = c.ltt_ms // 1000
        rows["oi"] = c.oi
        rows["oi_high"] = c.oi_high
        rows["oi_low"] = c.oi_low
        rows["ts"] = c.time_ms // 1000
        d = rows["depth"]
        d["qty"][:, :5] = bk.bid_qty
        d["price"][:, :5] = bk.bid_price * f[:, None]
        d["orders"][:, :5] = bk.bid_orders
        d["qty"][:, 5:] = bk.ask_qty
        d["price"][:, 5:] = bk.ask_price * f[:, None]
        d["orders"][:, 5:] = bk.ask_orders
    return rows, dt.itemsize


@dataclass(slots=True)
class Packed:
    """Length-prefixed packets in exchange-time order, one bytes object, cut anywhere cheaply.

    Packet k is `data[offsets[k]:offsets[k + 1]]` (its uint16 length included) and was stamped
    `time_ms[k]` (sorted). A frame is the 2-byte count followed by a run of consecutive packets,
    so cutting the ticks of any time span out of it is two binary searches and one slice.
    """

    time_ms: np.ndarray  # int64, sorted
    token: np.ndarray  # int64, each packet's instrument
    offsets: np.ndarray  # int64, len(time_ms) + 1
    data: bytes

    def __len__(self) -> int:
        return len(self.time_ms)

    def pick(self, rows: np.ndarray) -> Packed:
        """The packets at indices `rows` (ascending), as a Packed of their own."""
        o = self.offsets
        starts, ends = o[rows].tolist(), o[rows + 1].tolist()
        view = memoryview(self.data)
        sizes = o[rows + 1] - o[rows]
        return Packed(self.time_ms[rows], self.token[rows],
                      np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                      b"".join(view[a:b] for a, b in zip(starts, ends, strict=True)))

    @staticmethod
    def join(first: Packed, then: Packed) -> Packed:
        """`first`'s packets followed by `then`'s (the caller keeps the time order)."""
        if not len(first):
            return then
        if not len(then):
            return first
        return Packed(np.concatenate([first.time_ms, then.time_ms]),
                      np.concatenate([first.token, then.token]),
                      np.concatenate([first.offsets, then.offsets[1:] + first.offsets[-1]]),
                      first.data + then.data)

    def index_after(self, t_ms: int) -> int:
        """The first packet stamped later than `t_ms`."""
        return int(self.time_ms.searchsorted(t_ms, side="right"))

    def frames(self, lo: int = 0, hi: int | None = None,
               max_packets: int = MAX_FRAME_PACKETS) -> list[bytes]:
        """Packets lo..hi-1 as Kite frames of at most `max_packets` each."""
        hi = len(self) if hi is None else hi
        out = []
        offs = self.offsets
        view = memoryview(self.data)
        for start in range(lo, hi, max_packets):
            end = min(start + max_packets, hi)
            out.append((end - start).to_bytes(2, "big") + view[int(offs[start]):int(offs[end])])
        return out


EMPTY = Packed(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(1, np.int64), b"")


class FrameBuilder:
    """Collects blocks of ticks and emits Kite frames with packets in exchange-time order.

    Blocks are grouped by (mode, index or not) and each group is encoded in one vectorised pass,
    so a cycle over thousands of instruments costs a few numpy calls per group, not per block.
    """

    MAX_PACKETS = MAX_FRAME_PACKETS

    def __init__(self) -> None:
        self._groups: dict[tuple[str, bool], list[TickBlock]] = {}
        self.count = 0

    def add(self, b: TickBlock, mode: str) -> None:
        if not len(b):
            return
        index = b.instrument.is_index and mode != MODE_LTP
        self._groups.setdefault((mode, index), []).append(b)
        self.count += len(b)

    def packed(self) -> Packed:
        """Every collected packet, encoded and merged into exchange-time order."""
        if not self.count:
            return EMPTY
        groups = []
        for (mode, index), blocks in self._groups.items():
            c = columns(blocks)
            rows, size = encode_cols(c, mode, index)
            order = np.argsort(c.time_ms, kind="stable")
            groups.append((c.time_ms[order], rows[order].tobytes(), size, c.token[order]))
        if len(groups) == 1:
            times, flat, size, tokens = groups[0]
            return Packed(times, tokens, np.arange(len(times) + 1, dtype=np.int64) * size, flat)
        # Each group is sorted already: merge them (stable, so equal times keep group order),
        # then copy whole runs of one group's consecutive packets, not packet by packet.
        times = np.concatenate([g[0] for g in groups])
        tokens = np.concatenate([g[3] for g in groups])
        gid = np.repeat(np.arange(len(groups)), [len(g[0]) for g in groups])
        order = np.argsort(times, kind="stable")
        sg = gid[order]
        cuts = np.flatnonzero(np.diff(sg)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(sg)]])
        first_row = np.concatenate([[0], np.cumsum([len(g[0]) for g in groups])])
        parts = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            g = int(sg[a])
            _, flat, size, _ = groups[g]
            r0 = int(order[a]) - int(first_row[g])
            parts.append(flat[r0 * size:(r0 + b - a) * size])
        sizes = np.asarray([g[2] for g in groups], np.int64)[sg]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        return Packed(times[order], tokens[order], offsets, b"".join(parts))

    def frames(self, max_packets: int = MAX_PACKETS) -> list[bytes]:
        """The collected packets as one frame (several when there are over `max_packets`)."""
        return self.packed().frames(max_packets=max_packets)
