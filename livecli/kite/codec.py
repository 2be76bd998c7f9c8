"""Kite's WebSocket binary protocol: decode frames fast, and build packets for tests.

kiteconnect's own parser makes one struct call per field and a dict per packet, which caps a
busy subscription at tens of thousands of packets a second and gives naive host-local times.
This codec reads a whole frame column-wise with numpy (one buffer view, no object per field),
hands the candle engine `TickColumns`, and builds kiteconnect-shaped dicts only when asked,
with exchange times as aware IST datetimes.

The `encode_*` functions build one packet at a time, for clarity, not speed: tests and
bench/decode.py use them. The stand-in does not; it has its own vectorised encoder
(`livecli.sim.packets`), which tests/test_sim_packets.py holds byte-for-byte equal to these.

Layouts (KITE.md): a frame is uint16 packet count, then per packet uint16 length + packet, all
big-endian. Packet kind is told by length: 8 ltp, 44 quote, 184 full, 28 index quote, 32 index
full; other lengths are skipped. Prices are integers in the segment's unit (`price_divisor`).
A frame whose count or last packet runs past its end keeps every complete packet before the
damage (`MalformedFrame.frame`): one broken packet costs that packet, not the frame.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from livecli.core.ticks import Tick, TickColumns
from livecli.core.timeutil import IST
from livecli.kite.protocol import (
    DEFAULT_PRICE_DIVISOR,
    HEARTBEAT,  # noqa: F401  (re-exported: the codec's users read it here)
    MODE_FULL,
    MODE_LTP,
    MODE_QUOTE,
    PRICE_DIVISORS,
    SEGMENT_INDICES,
)
from livecli.kite.text import shorten

LTP_LENGTH = 8
QUOTE_LENGTH = 44
FULL_LENGTH = 184
INDEX_QUOTE_LENGTH = 28
INDEX_FULL_LENGTH = 32

# Packet kinds, as stored in DecodedFrame.kind (one int8 per packet).
KIND_LTP = 0
KIND_QUOTE = 1
KIND_FULL = 2
KIND_INDEX_QUOTE = 3
KIND_INDEX_FULL = 4
KIND_BY_LENGTH = {
    LTP_LENGTH: KIND_LTP,
    QUOTE_LENGTH: KIND_QUOTE,
    FULL_LENGTH: KIND_FULL,
    INDEX_QUOTE_LENGTH: KIND_INDEX_QUOTE,
    INDEX_FULL_LENGTH: KIND_INDEX_FULL,
}
LENGTH_BY_KIND = (LTP_LENGTH, QUOTE_LENGTH, FULL_LENGTH, INDEX_QUOTE_LENGTH, INDEX_FULL_LENGTH)
MODE_BY_KIND = (MODE_LTP, MODE_QUOTE, MODE_FULL, MODE_QUOTE, MODE_FULL)

_DIVISOR_BY_SEGMENT = np.full(256, DEFAULT_PRICE_DIVISOR)
for _segment, _divisor in PRICE_DIVISORS.items():
    _DIVISOR_BY_SEGMENT[_segment] = _divisor
_DIVISOR_LIST = _DIVISOR_BY_SEGMENT.tolist()

_U16 = struct.Struct(">H")
_LTP = struct.Struct(">II")
_QUOTE = struct.Struct(">11I")
_FULL_HEAD = struct.Struct(">16I")
_DEPTH_ENTRY = struct.Struct(">IIH2x")
_INDEX_QUOTE = struct.Struct(">6Ii")
_INDEX_FULL = struct.Struct(">6IiI")


class MalformedFrame(ValueError):
    """A binary message whose packet count or a packet's length runs past its end.

    `frame` holds every complete packet before the damage (possibly none): keep those, count
    the message as malformed. Only the packet cut short (or the packets claimed but absent)
    are lost.
    """

    def __init__(self, reason: str, frame: DecodedFrame) -> None:
        super().__init__(reason)
        self.frame = frame


def price_divisor(token: Any) -> Any:
    """Divisor from packet integers to prices for `token` (an int, or an array of tokens)."""
    if isinstance(token, int | np.integer):
        return _DIVISOR_LIST[int(token) & 0xFF]
    return _DIVISOR_BY_SEGMENT[np.asarray(token, dtype=np.int64) & 0xFF]


# ---------------------------------------------------------------------------------------------
# Encoding: one packet at a time, for the tests and the benchmark; clarity over speed. (The
# stand-in encodes whole blocks with numpy in livecli.sim.packets, checked against these.)


def _scaled(price: float, divisor: float, signed: bool = False) -> int:
    value = round(price * divisor)
    lo, hi = (-(2**31), 2**31 - 1) if signed else (0, 2**32 - 1)
    if not lo <= value <= hi:
        raise ValueError(f"price {price!r} does not fit the packet field at divisor {divisor:g}")
    return value


def _u32(value: int, name: str) -> int:
    value = int(value)
    if not 0 <= value <= 2**32 - 1:
        raise ValueError(f"{name}={value} does not fit an unsigned 32-bit packet field")
    return value


def encode_ltp(token: int, last_price: float) -> bytes:
    """An 8-byte ltp packet."""
    d = price_divisor(token)
    return _LTP.pack(_u32(token, "token"), _scaled(last_price, d))


def _quote_fields(
    token: int, last_price: float, last_traded_quantity: int, average_traded_price: float,
    volume_traded: int, total_buy_quantity: int, total_sell_quantity: int,
    open: float, high: float, low: float, close: float,
) -> tuple[int, ...]:
    d = price_divisor(token)
    return (
        _u32(token, "token"),
        _scaled(last_price, d),
        _u32(last_traded_quantity, "last_traded_quantity"),
        _scaled(average_traded_price, d),
        _u32(volume_traded, "volume_traded"),
        _u32(total_buy_quantity, "total_buy_quantity"),
        _u32(total_sell_quantity, "total_sell_quantity"),
        _scaled(open, d),
        _scaled(high, d),
        _scaled(low, d),
        _scaled(close, d),
    )


def encode_quote(
    token: int, last_price: float, last_traded_quantity: int, average_traded_price: float,
    volume_traded: int, total_buy_quantity: int, total_sell_quantity: int,
    open: float, high: float, low: float, close: float,
) -> bytes:
    """A 44-byte quote packet (`close` is the previous day's close, as Kite sends it)."""
    return _QUOTE.pack(*_quote_fields(
        token, last_price, last_traded_quantity, average_traded_price, volume_traded,
        total_buy_quantity, total_sell_quantity, open, high, low, close,
    ))


def encode_full(
    token: int, last_price: float, last_traded_quantity: int, average_traded_price: float,
    volume_traded: int, total_buy_quantity: int, total_sell_quantity: int,
    open: float, high: float, low: float, close: float,
    last_trade_time: int, oi: int, oi_day_high: int, oi_day_low: int, exchange_timestamp: int,
    depth_buy: Sequence[tuple[int, float, int]], depth_sell: Sequence[tuple[int, float, int]],
) -> bytes:
    """A 184-byte full packet; depth sides are 5 (quantity, price, orders) each (fewer: zeros)."""
    head = _quote_fields(
        token, last_price, last_traded_quantity, average_traded_price, volume_traded,
        total_buy_quantity, total_sell_quantity, open, high, low, close,
    )
    parts = [_FULL_HEAD.pack(
        *head,
        _u32(last_trade_time, "last_trade_time"), _u32(oi, "oi"),
        _u32(oi_day_high, "oi_day_high"), _u32(oi_day_low, "oi_day_low"),
        _u32(exchange_timestamp, "exchange_timestamp"),
    )]
    d = price_divisor(token)
    for side in (depth_buy, depth_sell):
        if len(side) > 5:
            raise ValueError(f"a depth side has at most 5 entries, got {len(side)}")
        entries = list(side) + [(0, 0.0, 0)] * (5 - len(side))
        for qty, price, orders in entries:
            if not 0 <= int(orders) <= 0xFFFF:
                raise ValueError(f"orders={orders} does not fit an unsigned 16-bit field")
            parts.append(_DEPTH_ENTRY.pack(_u32(qty, "quantity"), _scaled(price, d), int(orders)))
    return b"".join(parts)


def encode_index_quote(
    token: int, last_price: float, high: float, low: float, open: float, close: float,
    change: float,
) -> bytes:
    """A 28-byte index quote packet. Note Kite's order: high, low, open, close.

    `change` (bytes 24..28) is the absolute price change from the previous close, in the
    segment's unit as a signed int (gokiteconnect reads it as NetChange); kiteconnect ignores
    it and computes a percentage from last_price and close.
    """
    d = price_divisor(token)
    return _INDEX_QUOTE.pack(
        _u32(token, "token"), _scaled(last_price, d), _scaled(high, d), _scaled(low, d),
        _scaled(open, d), _scaled(close, d), _scaled(change, d, signed=True),
    )


def encode_index_full(
    token: int, last_price: float, high: float, low: float, open: float, close: float,
    change: float, exchange_timestamp: int,
) -> bytes:
    """A 32-byte index full packet: the index quote plus the exchange timestamp (epoch s)."""
    return encode_index_quote(token, last_price, high, low, open, close, change) + struct.pack(
        ">I", _u32(exchange_timestamp, "exchange_timestamp")
    )


def encode_frame(packets: Sequence[bytes]) -> bytes:
    """A binary WebSocket message carrying `packets`."""
    if len(packets) > 0xFFFF:
        raise ValueError(f"a frame carries at most 65535 packets, got {len(packets)}")
    parts = [_U16.pack(len(packets))]
    for p in packets:
        if len(p) > 0xFFFF:
            raise ValueError(f"a packet is at most 65535 bytes, got {len(p)}")
        parts.append(_U16.pack(len(p)))
        parts.append(bytes(p))
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Decoding.
#
# The first 64 bytes of every packet are read as big-endian uint32 words (16 of them; "word w" is
# byte offset 4w) into one native int64 matrix with a 17th column of -1. Index packets put other
# fields at those offsets (8 high, 12 low, 16 open, 20 close, 24 change, 28 timestamp), so a
# per-kind table maps each named column to its word, or to the -1 column where the kind has no
# such field; one gather then yields every column for every packet at once. A frame whose
# packets all share one length (the common case: one subscription mode) is read in place; a mixed
# frame is first repacked into fixed 184-byte records by one short loop over packet headers.

_ABSENT = 16  # the all -1 column of the word matrix
_COLUMNS = (
    "last_traded_quantity", "average_traded_price", "volume_traded", "total_buy_quantity",
    "total_sell_quantity", "open", "high", "low", "close", "net_change", "last_trade_time",
    "oi", "oi_day_high", "oi_day_low", "exchange_timestamp",
)
_COLUMN_INDEX = {name: i for i, name in enumerate(_COLUMNS)}
_VOLUME, _HIGH, _LOW, _OI, _ETS = (_COLUMN_INDEX[c] for c in (
    "volume_traded", "high", "low", "oi", "exchange_timestamp"))
assert _LOW == _HIGH + 1
# Byte offset of each column per kind (ltp, quote, full, index quote, index full); None = absent.
_SOURCES: dict[str, tuple[int | None, ...]] = {
    "last_traded_quantity": (None, 8, 8, None, None),
    "average_traded_price": (None, 12, 12, None, None),
    "volume_traded": (None, 16, 16, None, None),
    "total_buy_quantity": (None, 20, 20, None, None),
    "total_sell_quantity": (None, 24, 24, None, None),
    "open": (None, 28, 28, 16, 16),
    "high": (None, 32, 32, 8, 8),
    "low": (None, 36, 36, 12, 12),
    "close": (None, 40, 40, 20, 20),
    "net_change": (None, None, None, 24, 24),
    "last_trade_time": (None, None, 44, None, None),
    "oi": (None, None, 48, None, None),
    "oi_day_high": (None, None, 52, None, None),
    "oi_day_low": (None, None, 56, None, None),
    "exchange_timestamp": (None, None, 60, None, 28),
}
_WORD_BY_KIND = np.array(
    [[_ABSENT if (at := _SOURCES[c][k]) is None else at // 4 for c in _COLUMNS]
     for k in range(5)],
    dtype=np.intp,
)
_PRICE_COLUMNS = frozenset({"average_traded_price", "open", "high", "low", "close", "net_change"})
_DEPTH_DTYPE = np.dtype({
    "names": ["quantity", "price", "orders"],
    "formats": [">u4", ">u4", ">u2"],
    "offsets": [0, 4, 8],
    "itemsize": 12,
})
_PADDING = [bytes(FULL_LENGTH - length) for length in LENGTH_BY_KIND]  # by kind
_ONLY_LTP = frozenset((KIND_LTP,))


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A text message from Kite: type is "order", "error", "message" or "unknown".

    For "error" and "message", `data` is text for people, cut to `TEXT_LIMIT` characters on
    one line (`livecli.kite.text.shorten`): a server may send megabytes. `raw` is the message
    as it came; an order postback's `data` is its whole dict.
    """

    type: str
    data: Any
    raw: str


@dataclass(frozen=True, slots=True)
class PacketFields:
    """One packet's fields, read straight from its bytes (`DecodedFrame.packet`).

    For reading a few packets of many frames (the dashboard's rows, each instrument's newest
    tick): the columns decode every packet of a frame at once, which is the right cost for the
    receiving path and the wrong one for one row. None where the packet kind carries no such
    field; depth levels are (price, quantity, orders), five a side, full packets only.
    """

    kind: int
    token: int
    last_price: float
    volume_traded: int | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    oi: int | None = None
    exchange_timestamp: int | None = None  # full and index full packets; 0 kept as sent
    buy: tuple[tuple[float, int, int], ...] = ()
    sell: tuple[tuple[float, int, int], ...] = ()


_DEPTH_SIDE = struct.Struct(">" + "IIH2x" * 5)


class DecodedFrame:
    """One binary message, decoded column-wise: every column is a numpy array in packet order.

    Missing values: integer columns are -1 and price columns NaN where the packet kind does not
    carry the field (`kind` tells which kind each packet is). Raw epoch seconds are kept as
    integers; `columns()`, `ticks()` and `to_dicts()` are the views consumers use.
    """

    __slots__ = ("_buf", "_cache", "_kinds", "_n", "_offset", "_present", "_stride", "_width",
                 "_words", "heartbeat", "received_at", "skipped", "trailing")

    def __init__(self, buf: bytes, offset: int, stride: int, n: int, kinds: np.ndarray | int,
                 present: frozenset[int], received_at: float, skipped: int = 0,
                 trailing: int = 0, heartbeat: bool = False, width: int | None = None) -> None:
        # Packet i is buf[offset + i * stride:][:width] (width: stride unless packets sit in
        # place behind their length headers); `kinds` is an int when all are one kind.
        self._buf = buf
        self._offset = offset
        self._stride = stride
        self._width = stride if width is None else width
        self._n = n
        self._kinds = kinds
        self._present = present
        self.received_at = received_at
        self.skipped = skipped
        self.trailing = trailing
        self.heartbeat = heartbeat
        self._cache: dict[str, Any] = {}
        n_words = 16 if not isinstance(kinds, int) else min(16, LENGTH_BY_KIND[kinds] // 4)
        self._words = n_words

    def __len__(self) -> int:
        return self._n

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its packets, not its cached columns: a frame crosses to the NATS
        # publisher's process (livecli/bus/process.py) for a memcpy of the message.
        buf = self._buf if isinstance(self._buf, bytes) else bytes(self._buf)
        return (DecodedFrame, (buf, self._offset, self._stride, self._n, self._kinds,
                               self._present, self.received_at, self.skipped, self.trailing,
                               self.heartbeat, self._width))

    def __repr__(self) -> str:
        return (f"DecodedFrame(packets={self._n}, skipped={self.skipped}, "
                f"heartbeat={self.heartbeat})")

    def only(self, wanted: np.ndarray) -> DecodedFrame:
        """This frame without the packets whose token is not in `wanted` (a sorted int64 array,
        see `wanted_tokens`); the frame itself when every packet's token is wanted."""
        if not self._n:
            return self
        if not len(wanted):
            return self.take(())
        tok = self.token
        # A binary search per packet: a few ns each, where a set lookup costs tens.
        at = np.searchsorted(wanted, tok)
        np.minimum(at, len(wanted) - 1, out=at)
        hit = wanted[at] == tok
        if hit.all():
            return self
        return self.take(np.flatnonzero(hit))

    def take(self, keep: Sequence[int] | np.ndarray) -> DecodedFrame:
        """A frame of only the packets at the indices `keep`, in that order (e.g. to drop the
        ticks of tokens nobody subscribed); `received_at`, `skipped`, `trailing` carry over."""
        idx = np.asarray(keep, dtype=np.intp)
        k = len(idx)
        if not k:
            return _empty(self.received_at, skipped=self.skipped, trailing=self.trailing)
        rows = np.ndarray((self._n, self._width), dtype=np.uint8, buffer=self._buf,
                          offset=self._offset, strides=(self._stride, 1))
        buf = rows[idx].tobytes()
        kinds: np.ndarray | int
        if isinstance(self._kinds, int):
            kinds, present = self._kinds, self._present
        else:
            sub = self._kinds[idx]
            present = frozenset(sub.tolist())
            kinds = next(iter(present)) if len(present) == 1 else sub
        return DecodedFrame(buf, 0, self._width, k, kinds, present, self.received_at,
                            skipped=self.skipped, trailing=self.trailing)

    def packet(self, row: int, levels: int = 5) -> PacketFields:
        """Packet `row`'s fields, unpacked from its bytes alone (no column is made); of a full
        packet's depth, the best `levels` (1: the best bid and ask only) a side."""
        if not 0 <= row < self._n:
            raise IndexError(f"packet {row} of a frame of {self._n}")
        kinds = self._kinds
        kind = kinds if isinstance(kinds, int) else int(kinds[row])
        at = self._offset + row * self._stride
        buf = self._buf
        if kind == KIND_LTP:
            token, ltp = _LTP.unpack_from(buf, at)
            return PacketFields(kind, token, ltp / _DIVISOR_LIST[token & 0xFF])
        if kind == KIND_INDEX_QUOTE:
            token, ltp, hi, lo, op, cl, _change = _INDEX_QUOTE.unpack_from(buf, at)
            d = _DIVISOR_LIST[token & 0xFF]
            return PacketFields(kind, token, ltp / d, None, op / d, hi / d, lo / d, cl / d)
        if kind == KIND_INDEX_FULL:
            token, ltp, hi, lo, op, cl, _change, ets = _INDEX_FULL.unpack_from(buf, at)
            d = _DIVISOR_LIST[token & 0xFF]
            return PacketFields(kind, token, ltp / d, None, op / d, hi / d, lo / d, cl / d,
                                None, ets)
        if kind == KIND_QUOTE:
            token, ltp, _q, _avg, vol, _b, _s, op, hi, lo, cl = _QUOTE.unpack_from(buf, at)
            d = _DIVISOR_LIST[token & 0xFF]
            return PacketFields(kind, token, ltp / d, vol, op / d, hi / d, lo / d, cl / d)
        (token, ltp, _q, _avg, vol, _b, _s, op, hi, lo, cl, _ltt, oi, _oih, _oil,
         ets) = _FULL_HEAD.unpack_from(buf, at)
        d = _DIVISOR_LIST[token & 0xFF]
        if levels == 1:
            bq, bp, bo = _DEPTH_ENTRY.unpack_from(buf, at + 64)
            aq, ap, ao = _DEPTH_ENTRY.unpack_from(buf, at + 124)
            return PacketFields(kind, token, ltp / d, vol, op / d, hi / d, lo / d, cl / d, oi,
                                ets, ((bp / d, bq, bo),), ((ap / d, aq, ao),))
        b = _DEPTH_SIDE.unpack_from(buf, at + 64)
        a = _DEPTH_SIDE.unpack_from(buf, at + 124)
        n = 3 * max(0, min(levels, 5))
        return PacketFields(kind, token, ltp / d, vol, op / d, hi / d, lo / d, cl / d, oi, ets,
                            tuple((b[i + 1] / d, b[i], b[i + 2]) for i in range(0, n, 3)),
                            tuple((a[i + 1] / d, a[i], a[i + 2]) for i in range(0, n, 3)))

    def tick(self, row: int) -> Tick:
        """Packet `row` as `ticks()[row]` would give it, without decoding the other packets."""
        p = self.packet(row, levels=0)
        ets = p.exchange_timestamp
        has_ohlc = p.kind != KIND_LTP
        return Tick(
            instrument_token=p.token, last_price=p.last_price,
            time=float(ets) if ets else float(self.received_at),
            volume_traded=p.volume_traded, day_high=p.high if has_ohlc else None,
            day_low=p.low if has_ohlc else None, oi=p.oi,
            exchange_timestamp=float(ets) if ets else None, mode=MODE_BY_KIND[p.kind],
            day_open=p.open if has_ohlc else None, prev_close=p.close if has_ohlc else None)

    # -- raw columns -----------------------------------------------------------------------

    def _matrix(self) -> np.ndarray:
        """(n, 15) int64: every named column's raw integer for every packet, -1 where absent."""
        m = self._cache.get("_matrix")
        if m is None:
            n, w = self._n, self._words
            words = np.ndarray((n, w), dtype=">u4", buffer=self._buf, offset=self._offset,
                               strides=(self._stride, 4))
            h = np.empty((n, 17), dtype=np.int64)
            h[:, :w] = words
            h[:, _ABSENT] = -1
            self._cache["_head"] = h
            kinds = self._kinds
            if isinstance(kinds, int):
                m = h[:, _WORD_BY_KIND[kinds]]
            else:
                m = h[np.arange(n)[:, None], _WORD_BY_KIND[kinds]]
            self._cache["_matrix"] = m
        return m

    @property
    def kind(self) -> np.ndarray:
        """Packet kind per packet (KIND_* constants), int8."""
        if isinstance(self._kinds, int):
            return np.full(self._n, self._kinds, dtype=np.int8)
        return self._kinds

    @property
    def mode(self) -> list[str]:
        """Kite's mode name per packet (index packets: quote for 28 bytes, full for 32)."""
        return [MODE_BY_KIND[k] for k in self.kind.tolist()]

    def _word(self, w: int) -> np.ndarray:
        return np.ndarray((self._n,), dtype=">u4", buffer=self._buf,
                          offset=self._offset + 4 * w, strides=(self._stride,))

    @property
    def token(self) -> np.ndarray:
        """Instrument token per packet, int64."""
        c = self._cache.get("token")
        if c is None:
            c = self._cache["token"] = self._word(0).astype(np.int64)
        return c

    @property
    def tradable(self) -> np.ndarray:
        """False for indices (segment 9), as kiteconnect decides it: by token, not length."""
        return (self.token & 0xFF) != SEGMENT_INDICES

    @property
    def divisor(self) -> np.ndarray:
        c = self._cache.get("divisor")
        if c is None:
            c = self._cache["divisor"] = _DIVISOR_BY_SEGMENT[self.token & 0xFF]
        return c

    @property
    def last_price(self) -> np.ndarray:
        c = self._cache.get("last_price")
        if c is None:
            c = self._cache["last_price"] = self._word(1) / self.divisor
        return c

    def column(self, name: str) -> np.ndarray:
        """A field by kiteconnect's name (see `_SOURCES`): float64 for prices, else int64.

        `net_change` is the index packets' absolute change (signed), NaN for tradables.
        """
        c = self._cache.get(name)
        if c is not None:
            return c
        if name in ("token", "instrument_token"):
            return self.token
        if name == "last_price":
            return self.last_price
        raw = self._matrix()[:, _COLUMN_INDEX[name]]
        if name in _PRICE_COLUMNS:
            absent = raw == -1
            if name == "net_change":
                raw = np.where(raw >= 2**31, raw - 2**32, raw)
            c = raw / self.divisor
            if absent.any():
                c[absent] = np.nan
        else:
            c = raw
        self._cache[name] = c
        return c

    @property
    def volume_traded(self) -> np.ndarray:
        return self.column("volume_traded")

    @property
    def exchange_timestamp(self) -> np.ndarray:
        """Epoch seconds; -1 where the packet carries none (ltp, quote, index quote)."""
        return self.column("exchange_timestamp")

    @property
    def oi(self) -> np.ndarray:
        return self.column("oi")

    def depth(self, side: str) -> dict[str, np.ndarray]:
        """Market depth, `side` "buy" or "sell": quantity, price, orders as (n, 5) arrays.

        Zeros for packets that are not full quote packets.
        """
        key = "depth_" + side
        c = self._cache.get(key)
        if c is not None:
            return c
        n = self._n
        if KIND_FULL not in self._present:
            qty = np.zeros((n, 5), np.int64)
            price = np.zeros((n, 5))
            orders = np.zeros((n, 5), np.int64)
        else:
            first = 64 + (0 if side == "buy" else 60)
            d = np.ndarray((n, 5), dtype=_DEPTH_DTYPE, buffer=self._buf,
                           offset=self._offset + first, strides=(self._stride, 12))
            qty = d["quantity"].astype(np.int64)
            price = d["price"] / self.divisor[:, None]
            # Other kinds in a mixed frame read zeros: their records are zero-padded.
            orders = d["orders"].astype(np.int64)
        out = {"quantity": qty, "price": price, "orders": orders}
        self._cache[key] = out
        return out

    # -- consumer views --------------------------------------------------------------------

    def time(self) -> np.ndarray:
        """Exchange time where the packet has one (full, index full), else the receive time.

        A zero exchange timestamp counts as none: it is no instant Kite would send.
        """
        if KIND_FULL not in self._present and KIND_INDEX_FULL not in self._present:
            return np.full(self._n, float(self.received_at))
        ets = self.exchange_timestamp
        return np.where(ets > 0, ets, self.received_at).astype(np.float64)

    def columns(self, lists: bool = True) -> TickColumns:
        """The engine's input: token, time, price, volume, day high/low, oi (see ticks.py).

        `lists=True` gives Python lists (the engine's fast loop input); False gives numpy arrays.
        """
        n = self._n
        if self._present == _ONLY_LTP or not n:
            # Nothing but token and price: no matrix needed.
            token, price = self.token, self.last_price
            if lists:
                nan = [np.nan] * n
                return TickColumns(token.tolist(), [float(self.received_at)] * n,
                                   price.tolist(), [-1] * n, nan, nan, [-1] * n)
            minus = np.full(n, -1, np.int64)
            nan_a = np.full(n, np.nan)
            arrays: tuple[Any, ...] = (token, np.full(n, float(self.received_at)), price, minus,
                                       nan_a, nan_a, minus)  # TickColumns takes arrays too
            return TickColumns(*arrays)
        m = self._matrix()
        div = self.divisor
        # high and low are adjacent matrix columns: one division for both.
        hl = m[:, _HIGH:_LOW + 1] / div[:, None]
        if KIND_LTP in self._present:
            hl[self._kinds == KIND_LTP] = np.nan
        if KIND_FULL in self._present or KIND_INDEX_FULL in self._present:
            ets = m[:, _ETS]
            tm = np.where(ets > 0, ets, float(self.received_at))
        else:
            tm = np.full(n, float(self.received_at))
        cols: tuple[Any, ...] = (self.token, tm, self._word(1) / div, m[:, _VOLUME], hl[:, 0],
                                 hl[:, 1], m[:, _OI])
        if lists:
            return TickColumns(*(c.tolist() for c in cols))
        return TickColumns(*cols)

    def ticks(self) -> list[Tick]:
        """One `Tick` per packet, for callbacks and the Python API."""
        if not self._n:
            return []
        kinds = self.kind.tolist()
        tok = self.token.tolist()
        tm = self.time().tolist()
        px = self.last_price.tolist()
        vol = self.column("volume_traded").tolist()
        hi = self.column("high").tolist()
        lo = self.column("low").tolist()
        op = self.column("open").tolist()
        cl = self.column("close").tolist()
        oi = self.column("oi").tolist()
        ets = self.exchange_timestamp.tolist()
        out = []
        for i, k in enumerate(kinds):
            has_ohlc = k != KIND_LTP
            out.append(Tick(
                instrument_token=tok[i], last_price=px[i], time=tm[i],
                volume_traded=vol[i] if vol[i] >= 0 else None,
                day_high=hi[i] if has_ohlc else None,
                day_low=lo[i] if has_ohlc else None,
                oi=oi[i] if oi[i] >= 0 else None,
                exchange_timestamp=float(ets[i]) if ets[i] > 0 else None,
                mode=MODE_BY_KIND[k],
                day_open=op[i] if has_ohlc else None,
                prev_close=cl[i] if has_ohlc else None,
            ))
        return out

    def to_dicts(self) -> list[dict[str, Any]]:
        """kiteconnect-shaped tick dicts (`KiteTicker._parse_binary`), with one difference:
        `exchange_timestamp` and `last_trade_time` are aware IST datetimes, not naive local."""
        if not self._n:
            return []
        kinds = self.kind.tolist()
        tok = self.token.tolist()
        tradable = self.tradable.tolist()
        px = self.last_price.tolist()
        c = {name: self.column(name).tolist() for name in _COLUMNS}
        if KIND_FULL in self._present:
            depth_lists = [(s["quantity"].tolist(), s["price"].tolist(), s["orders"].tolist())
                           for s in (self.depth("buy"), self.depth("sell"))]
        out: list[dict[str, Any]] = []
        for i, k in enumerate(kinds):
            d: dict[str, Any] = {"tradable": tradable[i], "mode": MODE_BY_KIND[k],
                                 "instrument_token": tok[i], "last_price": px[i]}
            if k == KIND_LTP:
                out.append(d)
                continue
            close = c["close"][i]
            if k >= KIND_INDEX_QUOTE:
                d["ohlc"] = {"high": c["high"][i], "low": c["low"][i],
                             "open": c["open"][i], "close": close}
            else:
                d["last_traded_quantity"] = c["last_traded_quantity"][i]
                d["average_traded_price"] = c["average_traded_price"][i]
                d["volume_traded"] = c["volume_traded"][i]
                d["total_buy_quantity"] = c["total_buy_quantity"][i]
                d["total_sell_quantity"] = c["total_sell_quantity"][i]
                d["ohlc"] = {"open": c["open"][i], "high": c["high"][i],
                             "low": c["low"][i], "close": close}
            # kiteconnect's definition: percent change from the previous close, 0 when unknown.
            d["change"] = 0
            if close != 0:
                d["change"] = (px[i] - close) * 100 / close
            if k == KIND_INDEX_FULL:
                d["exchange_timestamp"] = datetime.fromtimestamp(c["exchange_timestamp"][i], IST)
            elif k == KIND_FULL:
                d["last_trade_time"] = datetime.fromtimestamp(c["last_trade_time"][i], IST)
                d["oi"] = c["oi"][i]
                d["oi_day_high"] = c["oi_day_high"][i]
                d["oi_day_low"] = c["oi_day_low"][i]
                d["exchange_timestamp"] = datetime.fromtimestamp(c["exchange_timestamp"][i], IST)
                depth: dict[str, list[dict[str, Any]]] = {}
                for side, (q, p, o) in zip(("buy", "sell"), depth_lists, strict=True):
                    depth[side] = [{"quantity": q[i][j], "price": p[i][j], "orders": o[i][j]}
                                   for j in range(5)]
                d["depth"] = depth
            out.append(d)
        return out


_NONE: frozenset[int] = frozenset()
_ZERO_RECORD = bytes(FULL_LENGTH)  # numpy wants a buffer even for zero packets


def _empty(received_at: float, skipped: int = 0, trailing: int = 0,
           heartbeat: bool = False) -> DecodedFrame:
    return DecodedFrame(_ZERO_RECORD, 0, FULL_LENGTH, 0, KIND_FULL, _NONE, received_at, skipped=skipped,
                        trailing=trailing, heartbeat=heartbeat)


def wanted_tokens(tokens: Iterable[int]) -> np.ndarray:
    """`tokens` as the sorted array `DecodedFrame.only` takes."""
    return np.array(sorted(set(tokens)), dtype=np.int64)


def heartbeat_frame(received_at: float) -> DecodedFrame:
    """The decoded form of a heartbeat: no ticks, `heartbeat=True`."""
    return _empty(received_at, heartbeat=True)


def decode_frame(data: bytes, received_at: float) -> DecodedFrame:
    """Decode one binary WebSocket message received at `received_at` (epoch s).

    Raises MalformedFrame (and nothing else) when the count or a length runs past the end;
    its `frame` carries the complete packets before the damage. Bytes after the last packet
    are ignored, as kiteconnect does, and counted in `trailing`.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    size = len(data)
    if size == 1:
        return heartbeat_frame(received_at)
    if size < 2:
        raise MalformedFrame("empty binary message", _empty(received_at))
    n = (data[0] << 8) | data[1]
    if n == 0:
        return _empty(received_at, trailing=size - 2)
    if size >= 4:
        # Fast path: one mode for the whole frame, read in place.
        length = (data[2] << 8) | data[3]
        kind = KIND_BY_LENGTH.get(length)
        if kind is not None and size == 2 + n * (2 + length):
            lengths = np.ndarray((n,), dtype=">u2", buffer=data, offset=2, strides=(length + 2,))
            if (lengths == length).all():
                return DecodedFrame(data, 4, length + 2, n, kind, frozenset((kind,)),
                                    received_at, width=length)
    parts: list[bytes] = []
    kinds = bytearray()
    add_part = parts.append
    add_kind = kinds.append
    skipped = 0
    j = 2
    start = 2
    kind = None
    kind_by_length = KIND_BY_LENGTH
    padding = _PADDING
    damage = None
    try:
        for _ in range(n):
            length = (data[j] << 8) | data[j + 1]
            start = j + 2
            j = start + length
            kind = kind_by_length.get(length)
            if kind is None:
                skipped += 1
            else:
                add_kind(kind)
                add_part(data[start:j])
                add_part(padding[kind])
    except IndexError:
        # A header past the end: the count claims more than follows, or the packet before
        # it ran past the end (checked below, with the loop's own end check).
        damage = "count"
    if j > size:
        # The last packet walked runs past the end: it was taken cut short; give it back.
        if kind is None:
            skipped -= 1
        else:
            kinds.pop()
            del parts[-2:]
        complete = len(kinds) + skipped
        damage = (f"packet {complete + 1} of {n} is cut short "
                  f"({size - start} of its {j - start} bytes)")
    elif damage is not None:
        complete = len(kinds) + skipped
        damage = f"the frame claims {n} packets but carries {complete}"
    frame = _assemble(parts, kinds, received_at, skipped, size - j if damage is None else 0)
    if damage is not None:
        raise MalformedFrame(damage, frame)
    return frame


def _assemble(parts: list[bytes], kinds: bytearray, received_at: float, skipped: int,
              trailing: int) -> DecodedFrame:
    if not kinds:
        return _empty(received_at, skipped=skipped, trailing=trailing)
    present = frozenset(kinds)
    karr: np.ndarray | int = (kinds[0] if len(present) == 1
                              else np.frombuffer(bytes(kinds), dtype=np.int8))
    # Repacked records are all FULL_LENGTH long: every kind reads as a zero-padded full packet.
    return DecodedFrame(b"".join(parts), 0, FULL_LENGTH, len(kinds), karr, present, received_at,
                        skipped=skipped, trailing=trailing)


def decode_text(payload: bytes | str) -> TextMessage:
    """A text message: order postback, error or broker message; anything else is "unknown"."""
    try:
        raw = payload.decode("utf-8") if isinstance(payload, bytes | bytearray) else str(payload)
    except UnicodeDecodeError:
        return TextMessage("unknown", None, payload.decode("utf-8", "replace"))  # type: ignore[union-attr]
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return TextMessage("unknown", None, raw)
    if isinstance(obj, dict) and obj.get("type") in ("order", "error", "message"):
        data = obj.get("data")
        if obj["type"] != "order" and data is not None:
            data = shorten(data if isinstance(data, str) else json.dumps(data))
        return TextMessage(obj["type"], data, raw)
    return TextMessage("unknown", obj, raw)
