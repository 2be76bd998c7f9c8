"""The dashboard's parts without a terminal: key decoding, the sort, column priority, the chart
as its docstring says it is drawn, and an interval added to a running engine."""

from __future__ import annotations

import random

import pytest

from livecli.core.candles import Candle
from livecli.core.engine import CandleEngine
from livecli.core.ticks import Tick
from livecli.dashboard.builder import sort_tokens
from livecli.dashboard.chart import chart_lines, price_range, row_of, tick_decimals
from livecli.dashboard.keys import decode
from livecli.dashboard.render import PRIORITY, fit_columns
from livecli.session.view import LatestTick

DAY_OPEN = 1_765_338_300  # 2025-12-10 09:15 IST


def test_keys_decode_arrows_paging_controls_and_swallow_unknown_sequences():
    assert decode("jk?q") == ["j", "k", "?", "q"]
    assert decode("\x1b[A\x1b[B\x1bOA\x1b[5~\x1b[6~\x1b[H\x1b[F\x1b[1~\x1b[4~") == [
        "up", "down", "up", "pgup", "pgdn", "home", "end", "home", "end"]
    assert decode("\x1b") == ["esc"] and decode("\x1bx") == ["esc", "x"]
    assert decode("\r\n\x7f\x08\t\x03\x15") == ["enter", "enter", "backspace", "backspace",
                                                "tab", "ctrl-c", "ctrl-u"]
    # F-keys, mouse-ish and modified sequences are dropped whole; their bytes never leak.
    assert decode("\x1b[15~a\x1b[1;5Cb\x1b[200~") == ["a", "right", "b"]
    assert decode("\x1b[1;") == []  # cut short: nothing typed
    assert decode("\x00\x01") == []


def _lt(tok: int, chg: float | None, vol: int | None, ticks: int, age: float) -> LatestTick:
    prev = None if chg is None else 100.0
    price = 100.0 if chg is None else 100.0 + chg
    return LatestTick(tok, price, prev, ticks, 1000.0 - age, volume_traded=vol)


class _Inst:
    def __init__(self, name: str) -> None:
        self.tradingsymbol = name


def test_sort_orders_and_missing_values_stay_last():
    names = {1: _Inst("TCS"), 2: _Inst("INFY"), 3: _Inst("SBIN"), 4: _Inst("ITC")}
    latest = {1: _lt(1, 1.5, 900, 5, 3.0), 2: _lt(2, -2.0, 50, 9, 0.5), 3: _lt(3, 0.2, None, 1, 9.0)}
    toks = [1, 2, 3, 4]
    assert sort_tokens(toks, None, False, names, latest, 1000.0) == [1, 2, 3, 4]
    assert sort_tokens(toks, None, True, names, latest, 1000.0) == [4, 3, 2, 1]
    assert sort_tokens(toks, "symbol", False, names, latest, 1000.0) == [2, 4, 3, 1]
    assert sort_tokens(toks, "chg", False, names, latest, 1000.0) == [1, 3, 2, 4]
    assert sort_tokens(toks, "chg", True, names, latest, 1000.0) == [2, 3, 1, 4]
    assert sort_tokens(toks, "volume", False, names, latest, 1000.0) == [1, 2, 3, 4]
    assert sort_tokens(toks, "ticks", False, names, latest, 1000.0) == [2, 1, 3, 4]
    assert sort_tokens(toks, "age", False, names, latest, 1000.0) == [2, 1, 3, 4]  # freshest


@pytest.mark.parametrize("width", [40, 60, 76, 80, 100, 136, 156, 200, 400])
def test_narrow_terminals_keep_columns_in_order_of_importance(width):
    keys = [c[0] for c in fit_columns(width, frozenset({"bid", "ask", "oi"}))]
    used = sum(c[2] for c in fit_columns(width, frozenset({"bid", "ask", "oi"}))) + len(keys) - 1
    assert used <= width
    kept = [k for k in PRIORITY if k in keys]
    # What is kept is a prefix of the priority order (the arrow may be skipped for room).
    prefix = [k for k in PRIORITY[:len(kept) + 1] if k != "arrow"][:len([k for k in kept if k != "arrow"])]
    assert [k for k in kept if k != "arrow"] == prefix, (width, keys)
    assert keys[:1] == ["symbol"]
    if width >= 76:
        assert {"last", "chg", "open", "high", "low", "close"} <= set(keys)
    # The book and OI columns come only when some row has them.
    assert not {"bid", "ask", "oi"} & {c[0] for c in fit_columns(width, frozenset())}


def _candle(i: int, o: float, h: float, lo: float, c: float, v: int) -> Candle:
    return Candle(1, 1, DAY_OPEN + 60 * i, o, h, lo, c, v, None, 3)


def test_chart_draws_what_its_docstring_says():
    rng = random.Random(5)
    candles, p = [], 1500.0
    for i in range(30):
        o = p
        c = round((o + rng.uniform(-3, 3)) * 20) / 20
        h = max(o, c) + round(rng.uniform(0, 2) * 20) / 20
        lo = min(o, c) - round(rng.uniform(0, 2) * 20) / 20
        candles.append(_candle(i, o, h, lo, c, rng.randrange(100, 5000)))
        p = c
    width, height = 60, 20
    day_high = max(c.high for c in candles[-24:])  # inside the range of the 24 that fit
    lines = chart_lines(candles, width, height, 0.05, day_high=day_high)
    assert len(lines) == height and all(sum(len(s.text) for s in ln) <= width for ln in lines)
    rows = height - 3 - 1
    text = ["".join(s.text for s in ln) for ln in lines]
    shown = candles[-((width - 12) // 2):]
    n = len(shown)
    lo, hi = price_range(shown, 0.05)
    assert f"{hi:,.2f}" in text[0] and f"{lo:,.2f}" in text[rows - 1]
    plot_w = (width - (max(len(f"{hi:,.2f}"), len(f"{lo:,.2f}")) + 3)) // 2 * 2
    for j, c in enumerate(shown):
        x = plot_w - (n - j) * 2
        col = [text[r][x] for r in range(rows)]
        marks = [r for r, ch in enumerate(col) if ch in "│█"]
        assert (marks[0], marks[-1]) == (row_of(c.high, lo, hi, rows), row_of(c.low, lo, hi, rows))
        body = [r for r, ch in enumerate(col) if ch == "█"]
        assert (body[0], body[-1]) == (row_of(max(c.open, c.close), lo, hi, rows),
                                       row_of(min(c.open, c.close), lo, hi, rows))
    assert "vol" in text[rows] and "IST" in text[-1]
    assert f" H {day_high:,.2f}" in text[0]  # the day's high, marked where it is
    assert tick_decimals(0.05) == 2 and tick_decimals(0.0025) == 4 and tick_decimals(1.0) == 0


def _ticks(seed: int, tokens: list[int], minutes: int) -> list[Tick]:
    rng = random.Random(seed)
    out = []
    state = {t: (1000.0 + 10 * t, 0) for t in tokens}
    t = DAY_OPEN + 1.0
    while t < DAY_OPEN + minutes * 60:
        tok = rng.choice(tokens)
        p, v = state[tok]
        p = round(max(1.0, p + rng.choice((-1, 0, 1)) * 0.05 * rng.randrange(1, 4)), 2)
        v += rng.randrange(1, 50)
        state[tok] = (p, v)
        out.append(Tick(tok, p, t, v, None, None))
        t += rng.uniform(0.2, 4.0)
    return out


def test_an_interval_added_to_a_running_engine_makes_the_candles_it_would_have_made():
    tokens = [11, 12, 13]
    ticks = _ticks(3, tokens, 47)
    whole = CandleEngine(["5min", "15min"], history=1000)
    late = CandleEngine([], history=1000)
    delivered: list[Candle] = []
    late.on_close(delivered.append)
    for tk in ticks:
        whole.update(tk)
    cut = len(ticks) // 2 + 7  # mid-way through a 5- and a 15-minute bucket
    for tk in ticks[:cut]:
        late.update(tk)
    before = len(delivered)
    late.add_interval("5min")
    late.add_interval("15min")
    assert late.add_interval("5min").minutes == 5  # twice: nothing changes
    for tk in ticks[cut:]:
        late.update(tk)
    assert [iv.name for iv in late.intervals] == ["1min", "5min", "15min"]
    for tok in tokens:
        for iv in ("5min", "15min"):
            assert [c.to_dict() for c in late.history(tok, iv)] == \
                [c.to_dict() for c in whole.history(tok, iv)], (tok, iv)
            assert late.forming(tok, iv).to_dict() == whole.forming(tok, iv).to_dict()
    # The folded history was not delivered again (the store saw those minutes); later closes were.
    after = [c for c in delivered[before:] if c.interval_min > 1]
    assert after and all(c.start + c.interval_min * 60 > ticks[cut - 1].time for c in after)
