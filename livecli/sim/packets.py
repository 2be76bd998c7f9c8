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

from livecli.sim.market import TickBlock
from livecli.sim.universe import Instrument

MODES = ("ltp", "quote", "full")

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

_DIVISOR = {3: 10_000_000, 6: 10_000, 12: 10_000}


def divisor(token: int) -> int:
    return _DIVISOR.get(token & 0xFF, 100)


def unit_factor(ins: Instrument) -> int:
    """Packet integer units per price tick (e.g. 5 for a 0.05 tick at divisor 100)."""
    return divisor(ins.instrument_token) // ins.ticks_per_unit


def _mix(seq: np.ndarray, token: int, salt: int) -> np.ndarray:
    """A cheap deterministic hash of (sequence, token, salt) into [0, 2**32)."""
    x = (seq.astype(np.uint64) * np.uint64(2654435761) + np.uint64((token * 40503 + salt) & 0xFFFFFFFF))
    x ^= x >> np.uint64(15)
    x *= np.uint64(2246822519)
    x ^= x >> np.uint64(13)
    return (x & np.uint64(0xFFFFFFFF)).astype(np.int64)


@dataclass(slots=True)
class Book:
    """Derived order book columns for a block: totals and 5 levels per side."""

    buy_total: np.ndarray
    sell_total: np.ndarray
    bid_price: np.ndarray  # (n, 5) ticks
    bid_qty: np.ndarray
    bid_orders: np.ndarray
    ask_price: np.ndarray
    ask_qty: np.ndarray
    ask_orders: np.ndarray


def book(b: TickBlock) -> Book:
    ins = b.instrument
    token = ins.instrument_token
    n = len(b)
    unit = max(ins.lot_size, 1)
    typical = max(1, int(40_000 / max(ins.base_price, 0.01)) // unit) * unit
    h1 = _mix(b.seq, token, 1)
    h2 = _mix(b.seq, token, 2)
    buy_total = typical * 300 * (700 + (h1 & 0x3FF) // 2) // 1000
    sell_total = typical * 300 * (700 + (h2 & 0x3FF) // 2) // 1000
    lv = np.arange(5)
    spread0 = (h1 >> 12) & 1  # best bid one tick under the last price, or at it
    bid_price = np.maximum(b.price[:, None] - spread0[:, None] - lv[None, :], 0)
    ask_price = bid_price[:, :1] + 1 + lv[None, :]
    hq = _mix(np.repeat(b.seq, 10) * 16 + np.tile(np.arange(10), n), token, 3).reshape(n, 10)
    qty = (1 + hq % 40) * unit * max(1, typical // unit // 4)
    orders = 1 + (hq >> 8) % 25
    return Book(buy_total, sell_total, bid_price, qty[:, :5], orders[:, :5], ask_price,
                qty[:, 5:], orders[:, 5:])


def _avg_units(b: TickBlock, f: int) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(b.volume > 0, b.turnover / np.maximum(b.volume, 1), b.price)
    return np.rint(avg * f).astype(np.int64)


def encode_rows(b: TickBlock, mode: str) -> tuple[np.ndarray, int]:
    """Length-prefixed packet rows for every tick of `b` in `mode`: (structured array, row size)."""
    ins = b.instrument
    f = unit_factor(ins)
    n = len(b)
    token = ins.instrument_token
    if mode == "ltp":
        rows = np.zeros(n, LTP_ROW)
        rows["len"] = 8
        rows["token"] = token
        rows["last"] = b.price * f
        return rows, LTP_ROW.itemsize
    if ins.is_index:
        dt = INDEX_FULL_ROW if mode == "full" else INDEX_QUOTE_ROW
        rows = np.zeros(n, dt)
        rows["len"] = dt.itemsize - 2
        rows["token"] = token
        rows["last"] = b.price * f
        rows["high"] = b.high * f
        rows["low"] = b.low * f
        rows["open"] = b.open_ticks * f
        rows["close"] = b.prev_close_ticks * f
        rows["change"] = (b.price - b.prev_close_ticks) * f
        if mode == "full":
            rows["ts"] = b.time_ms // 1000
        return rows, dt.itemsize
    dt = FULL_ROW if mode == "full" else QUOTE_ROW
    rows = np.zeros(n, dt)
    rows["len"] = dt.itemsize - 2
    rows["token"] = token
    rows["last"] = b.price * f
    rows["ltq"] = b.ltq
    rows["avg"] = _avg_units(b, f)
    rows["volume"] = b.volume
    bk = book(b)
    rows["buy"] = bk.buy_total
    rows["sell"] = bk.sell_total
    rows["open"] = b.open_ticks * f
    rows["high"] = b.high * f
    rows["low"] = b.low * f
    rows["close"] = b.prev_close_ticks * f
    if mode == "full":
        rows["ltt"] = b.ltt_ms // 1000
        rows["oi"] = b.oi
        rows["oi_high"] = b.oi_high
        rows["oi_low"] = b.oi_low
        rows["ts"] = b.time_ms // 1000
        d = rows["depth"]
        d["qty"][:, :5] = bk.bid_qty
        d["price"][:, :5] = bk.bid_price * f
        d["orders"][:, :5] = bk.bid_orders
        d["qty"][:, 5:] = bk.ask_qty
        d["price"][:, 5:] = bk.ask_price * f
        d["orders"][:, 5:] = bk.ask_orders
    return rows, dt.itemsize


class FrameBuilder:
    """Collects encoded blocks and emits Kite frames with packets in exchange-time order."""

    MAX_PACKETS = 65_535

    def __init__(self) -> None:
        self._bufs: list[bytes] = []
        self._sizes: list[int] = []
        self._times: list[np.ndarray] = []
        self.count = 0

    def add(self, b: TickBlock, mode: str) -> None:
        if not len(b):
            return
        rows, size = encode_rows(b, mode)
        self._bufs.append(rows.tobytes())
        self._sizes.append(size)
        self._times.append(b.time_ms)
        self.count += len(b)

    def frames(self, max_packets: int = MAX_PACKETS) -> list[bytes]:
        """The collected packets as one frame (several when there are over `max_packets`)."""
        if not self.count:
            return []
        if len(self._bufs) == 1 and self.count <= max_packets:
            return [self.count.to_bytes(2, "big") + self._bufs[0]]  # one block: already in order
        times = np.concatenate(self._times)
        sizes = np.concatenate([np.full(len(t), s) for t, s in zip(self._times, self._sizes, strict=True)])
        offsets = (np.cumsum(sizes) - sizes).tolist()
        size_l = sizes.tolist()
        order = np.argsort(times, kind="stable").tolist()
        mv = memoryview(b"".join(self._bufs))
        out = []
        for start in range(0, self.count, max_packets):
            chunk = order[start:start + max_packets]
            parts: list[bytes | memoryview] = [len(chunk).to_bytes(2, "big")]
            parts.extend(mv[offsets[i]:offsets[i] + size_l[i]] for i in chunk)
            out.append(b"".join(parts))
        return out
