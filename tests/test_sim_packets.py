"""The stand-in's vectorised packets equal livecli.kite.codec's reference encoders, byte for byte."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from livecli.core.timeutil import day_of
from livecli.kite import codec
from livecli.kite.protocol import MODES
from livecli.sim import packets as P
from livecli.sim.market import Market
from livecli.sim.universe import builtin_universe

DAY = date(2025, 12, 10)


@pytest.fixture(scope="module")
def market():
    return Market(builtin_universe(DAY), seed=7)


def _reference(ins, b, bk, i, mode):
    tpu = ins.ticks_per_unit

    def pr(t):
        return int(t) / tpu

    if mode == "ltp":
        return codec.encode_ltp(ins.instrument_token, pr(b.price[i]))
    if ins.is_index:
        args = (ins.instrument_token, pr(b.price[i]), pr(b.high[i]), pr(b.low[i]),
                pr(b.open_ticks), pr(b.prev_close_ticks), pr(b.price[i] - b.prev_close_ticks))
        if mode == "full":
            return codec.encode_index_full(*args, int(b.time_ms[i] // 1000))
        return codec.encode_index_quote(*args)
    avg = int(P._avg_units(b, P.unit_factor(ins))[i]) / P.divisor(ins.instrument_token)
    q = (ins.instrument_token, pr(b.price[i]), int(b.ltq[i]), avg, int(b.volume[i]),
         int(bk.buy_total[i]), int(bk.sell_total[i]), pr(b.open_ticks), pr(b.high[i]),
         pr(b.low[i]), pr(b.prev_close_ticks))
    if mode == "quote":
        return codec.encode_quote(*q)
    return codec.encode_full(
        *q, int(b.ltt_ms[i] // 1000), int(b.oi[i]), int(b.oi_high[i]), int(b.oi_low[i]),
        int(b.time_ms[i] // 1000),
        [(int(bk.bid_qty[i, j]), pr(bk.bid_price[i, j]), int(bk.bid_orders[i, j])) for j in range(5)],
        [(int(bk.ask_qty[i, j]), pr(bk.ask_price[i, j]), int(bk.ask_orders[i, j])) for j in range(5)],
    )


@pytest.mark.parametrize("mode", MODES)
def test_every_instrument_kind_matches_the_codec(market, mode):
    d = day_of(DAY)
    for ins in market.instruments:
        b = market.day_ticks(ins.instrument_token, d).slice(0, 40)
        rows, size = P.encode_rows(b, mode)
        raw = rows.tobytes()
        bk = P.book(b)
        for i in range(len(b)):
            assert raw[i * size:i * size + 2] == (size - 2).to_bytes(2, "big")
            assert raw[i * size + 2:(i + 1) * size] == _reference(ins, b, bk, i, mode), (
                ins.tradingsymbol, mode, i)


def test_depth_is_a_sane_book(market):
    b = market.day_ticks(738561, day_of(DAY)).slice(0, 500)
    bk = P.book(b)
    assert (bk.bid_price[:, 0] < bk.ask_price[:, 0]).all()
    assert (np.diff(bk.bid_price, axis=1) < 0).all() and (np.diff(bk.ask_price, axis=1) > 0).all()
    assert (bk.bid_price[:, 0] <= b.price).all() and (bk.ask_price[:, 0] > b.price - 1).all()
    assert (bk.bid_qty > 0).all() and (bk.bid_orders >= 1).all() and (bk.ask_orders <= 25).all()


def test_frames_order_packets_by_exchange_time_and_split_at_the_limit(market):
    d = day_of(DAY)
    fb = P.FrameBuilder()
    blocks = [(market.day_ticks(738561, d).slice(0, 120), "full"),
              (market.day_ticks(256265, d).slice(0, 60), "quote"),
              (market.day_ticks(408065, d).slice(0, 90), "ltp")]
    for b, m in blocks:
        fb.add(b, m)
    (frame,) = fb.frames()
    dec = codec.decode_frame(frame, 0.0)
    assert len(dec) == 270
    times = np.concatenate([b.time_ms for b, _ in blocks])
    tokens = np.concatenate([np.full(len(b), b.instrument.instrument_token) for b, _ in blocks])
    order = np.argsort(times, kind="stable")
    assert list(dec.columns().token) == tokens[order].tolist()
    parts = fb.frames(max_packets=100)
    assert [len(codec.decode_frame(p, 0.0)) for p in parts] == [100, 100, 70]
    assert b"".join(p[2:] for p in parts) == frame[2:]
