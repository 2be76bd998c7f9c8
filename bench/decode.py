"""Decode speed: livecli's column-wise codec against kiteconnect's `_parse_binary`, same bytes.

What is measured, per binary frame:
  livecli     `decode_frame(frame, t).columns()`: the decode plus the engine's input
              (TickColumns as Python lists), i.e. everything a consumer needs per frame.
  kiteconnect `KiteTicker._parse_binary(frame)`: its full decode into dicts.
Both run in this process on the same frames, interleaved, best of N repetitions; each case is
checked once (untimed) for equal output (`to_dicts()` vs `_parse_binary`, times as instants).
Figures are packets per second. Run: .venv/bin/python bench/decode.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from kiteconnect import KiteTicker

from livecli.kite.codec import (
    decode_frame,
    encode_frame,
    encode_full,
    encode_index_full,
    encode_index_quote,
    encode_ltp,
    encode_quote,
)

SEGMENTS = (1, 2, 3, 7, 12)


def make_packet(kind: str, i: int, rng: np.random.Generator) -> bytes:
    if kind.startswith("index"):
        token = ((1000 + i) << 8) | 9
    else:
        token = ((1000 + i) << 8) | SEGMENTS[i % len(SEGMENTS)]
    px = round(float(rng.uniform(10, 400)), 2)  # CDS at 1e7 fits up to ~429
    q = [int(x) for x in rng.integers(0, 10**6, 8)]
    ts = 1_700_000_000 + i
    if kind == "ltp":
        return encode_ltp(token, px)
    if kind == "quote":
        return encode_quote(token, px, q[0], px, q[1], q[2], q[3], px, px + 1, px - 1, px)
    if kind == "full":
        depth = [(q[j], px, j) for j in range(5)]
        return encode_full(token, px, q[0], px, q[1], q[2], q[3], px, px + 1, px - 1, px,
                           ts, q[4], q[5], q[6], ts, depth, depth)
    if kind == "index_quote":
        return encode_index_quote(token, px, px + 1, px - 1, px, px, 0.5)
    return encode_index_full(token, px, px + 1, px - 1, px, px, -0.5, ts)


def make_frame(kinds: list[str], n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_frame([make_packet(kinds[i % len(kinds)], i, rng) for i in range(n)])


def same(ours: object, theirs: object) -> bool:
    if hasattr(theirs, "timestamp"):
        return ours.timestamp() == theirs.timestamp()  # type: ignore[union-attr]
    if isinstance(theirs, dict):
        return isinstance(ours, dict) and list(ours) == list(theirs) and all(
            same(ours[k], theirs[k]) for k in theirs)
    if isinstance(theirs, list):
        return isinstance(ours, list) and len(ours) == len(theirs) and all(
            same(a, b) for a, b in zip(ours, theirs, strict=True))
    return type(ours) is type(theirs) and ours == theirs


def best_rate(fn, frame: bytes, packets: int, loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        fn(frame)
    return packets * loops / (time.perf_counter() - t0)


def main() -> None:
    mixed = ["full", "quote", "ltp", "index_quote", "index_full"]
    cases = [
        ("full x500", ["full"], 500),
        ("quote x500", ["quote"], 500),
        ("ltp x500", ["ltp"], 500),
        ("mixed x500", mixed, 500),
        ("mixed x50", mixed, 50),
    ]
    kt = KiteTicker("k", "t")

    def ours(frame: bytes) -> object:
        return decode_frame(frame, 1_700_000_000.0).columns()

    theirs = kt._parse_binary
    for name, kinds, n in cases:
        frame = make_frame(kinds, n, seed=n)
        if not same(decode_frame(frame, 0.0).to_dicts(), theirs(frame)):
            raise SystemExit(f"{name}: livecli and kiteconnect disagree")
        # Loop counts sized to about 20 ms per timing; best of 15 interleaved repetitions.
        ours_loops = max(1, int(0.02 * best_rate(ours, frame, n, 3) / n))
        theirs_loops = max(1, int(0.02 * best_rate(theirs, frame, n, 1) / n))
        a = b = 0.0
        for _ in range(15):
            a = max(a, best_rate(ours, frame, n, ours_loops))
            b = max(b, best_rate(theirs, frame, n, theirs_loops))
        print(f"{name}: livecli {a:,.0f}/s, kiteconnect {b:,.0f}/s, ratio {a / b:.1f}x")


if __name__ == "__main__":
    main()
