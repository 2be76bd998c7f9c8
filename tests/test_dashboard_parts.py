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


def _drawn(segments, selected: bool) -> list[tuple[str, object]]:
    """Each character with how it looks: a space in a style that shows nothing on a space
    (`_space_plain`) looks like a plain one."""
    from rich.style import Style

    from livecli.dashboard.render import _space_plain

    out = []
    for seg in segments:
        style = seg.style or Style()
        for ch in seg.text:
            looks = style
            if ch == " " and not selected and _space_plain(style):
                looks = Style()
            out.append((ch, looks))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_a_row_in_few_segments_draws_what_a_segment_per_cell_drew(seed):
    """Rows are drawn in as few segments as look the same (rich measures each segment on
    every pass): character by character, with every style a cell can take, selected or not,
    they look as one segment per cell and per gap did."""
    from rich.segment import Segment

    from livecli.dashboard.render import S_NONE, S_SELECTED, _cells, _fit, _row_segments
    from livecli.dashboard.snapshot import InstrumentRow

    rng = random.Random(seed)

    def maybe(v):
        return v if rng.random() < 0.8 else None

    p = rng.uniform(10, 5000)
    row = InstrumentRow(
        f"SYM{seed}", "NSE", 1000 + seed, last_price=maybe(p), prev_close=maybe(p * 0.99),
        change_pct=maybe(rng.uniform(-3, 3)), day_change=maybe(rng.uniform(-9, 9)),
        candle=Candle(1000 + seed, 1, DAY_OPEN, p, p + 1, p - 1, p + rng.uniform(-1, 1),
                      rng.randrange(10**6), None, 3) if rng.random() < 0.8 else None,
        seconds_left=maybe(rng.uniform(0, 60)),
        closes=[p + rng.uniform(-2, 2) for _ in range(rng.randrange(0, 30))],
        ticks=rng.randrange(10**5), last_tick_age_s=maybe(rng.uniform(0, 5)),
        direction=rng.choice((-1, 0, 1)), flash=rng.random() < 0.5,
        bid=maybe(p - 0.05), bid_qty=maybe(10), ask=maybe(p + 0.05), ask_qty=maybe(12),
        oi=maybe(rng.randrange(10**6)), oi_change=maybe(rng.randrange(-500, 500)))
    cells = _cells(row)
    cols = fit_columns(rng.choice((80, 120, 160, 240)), frozenset({"bid", "ask", "oi"}))
    for selected in (False, True):
        per_cell = []
        for i, (key, _h, width, right) in enumerate(cols):
            if i:
                per_cell.append(Segment(" ", S_SELECTED if selected else S_NONE))
            text, style = cells[key]
            per_cell.append(Segment(_fit(text, width, right),
                                    style + S_SELECTED if selected else style))
        merged = _row_segments(cells, cols, selected)
        assert _drawn(merged, selected) == _drawn(per_cell, selected)
        assert len(merged) < len(per_cell)
