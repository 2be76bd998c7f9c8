"""Each instrument's newest tick, count and receipt time (livecli/session/latest.py).

The receiving path keeps these as arrays by slot, updated once per frame; these tests hold it
to what the dict of (frame, row) it replaced did tick by tick, on real decoded frames.
"""

from __future__ import annotations

import random

from livecli.kite.codec import decode_frame, encode_frame, encode_ltp
from livecli.session.latest import LatestTicks

A, B, C = 408065, 738561, 2953217  # NSE tokens (divisor 100)


def frame(ticks: list[tuple[int, float]], at: float):
    return decode_frame(encode_frame([encode_ltp(t, p) for t, p in ticks]), at)


def feed(lt: LatestTicks, ticks: list[tuple[int, float]], at: float):
    f = frame(ticks, at)
    cols = f.columns(lists=False)
    lt.update(f, cols.token, cols.price, at)
    return f


def test_a_tokens_later_row_in_a_frame_is_its_newest_tick():
    lt = LatestTicks()
    f1 = feed(lt, [(A, 1.0), (B, 2.0), (A, 3.0)], 100.0)
    assert lt.get(A) == (f1, 2) and lt.get(B) == (f1, 1) and lt.get(C) is None
    assert (lt.count(A), lt.count(B), lt.count(C)) == (2, 1, 0)
    f2 = feed(lt, [(B, 5.0)], 101.5)
    assert lt.get(B) == (f2, 0) and lt.get(A) == (f1, 2)
    assert lt.columns([A, B, C]) == ([3.0, 5.0, None], [100.0, 101.5, None], [2, 2, 0])
    assert lt.seen_at(B) == 101.5 and lt.seen_at(C) is None
    assert lt.tokens() == [A, B] and len(lt) == 2


def test_it_agrees_with_a_dict_kept_tick_by_tick():
    rng = random.Random(7)
    tokens = [256265 + i * 256 for i in range(60)]  # distinct NSE-style tokens
    lt = LatestTicks()
    want: dict[int, tuple[object, int, float, int, float]] = {}
    for k in range(400):
        ticks = [(rng.choice(tokens), round(rng.uniform(1, 900), 2))
                 for _ in range(rng.randint(1, 40))]
        at = 1000.0 + k * 0.1
        f = feed(lt, ticks, at)
        for row, (tok, price) in enumerate(ticks):
            count = want[tok][3] + 1 if tok in want else 1
            want[tok] = (f, row, price, count, at)
    for tok, (f, row, _price, count, at) in want.items():
        assert lt.get(tok) == (f, row) and lt.count(tok) == count and lt.seen_at(tok) == at
    prices, seen, counts = lt.columns(tokens)
    for tok, p, s, c in zip(tokens, prices, seen, counts, strict=True):
        hit = want.get(tok)
        assert (p, s, c) == ((None, None, 0) if hit is None else (hit[2], hit[4], hit[3]))


def test_frames_no_instrument_points_at_are_let_go():
    lt = LatestTicks()
    first = feed(lt, [(A, 1.0)], 1.0)
    for k in range(2000):
        feed(lt, [(B, 2.0 + k)], 2.0 + k)
    # A's only tick keeps its frame; B's older frames go: what is held stays bounded.
    assert lt.get(A) == (first, 0)
    assert lt.frames_held <= 512
    assert lt.count(B) == 2000


def test_frames_held_stay_close_to_those_pinned():
    # 1000 quiet instruments each pin the frame of their one tick; then one busy instrument
    # ticks in frame after frame. What is held beyond the pinned frames stays a small share:
    # held twice over, the frames of a 9000-instrument session grew the RSS by 200 MB a minute.
    lt = LatestTicks()
    for k in range(1000):
        feed(lt, [(1000 + k, 1.0)], 1.0)
    most = 0
    for k in range(3000):
        feed(lt, [(B, 2.0 + k)], 2.0 + k)
        most = max(most, lt.frames_held)
    assert 1001 <= most <= 1001 + 1001 // 8 + 64
    assert lt.count(B) == 3000 and lt.count(1999) == 1


def test_before_any_tick_and_after_an_empty_frame_every_token_reads_empty():
    # The status is made from the first second, often before the first tick.
    lt = LatestTicks()
    assert lt.columns([A, B]) == ([None, None], [None, None], [0, 0])
    f = frame([], 5.0)
    cols = f.columns(lists=False)
    lt.update(f, cols.token, cols.price, 5.0)
    assert len(lt) == 0 and lt.columns([A]) == ([None], [None], [0])
    assert lt.columns([]) == ([], [], [])
    feed(lt, [(A, 1.0)], 6.0)
    assert lt.columns([]) == ([], [], [])
