"""Candles of any whole-minute interval derived from 1-minute candles, vectorised.

Used wherever 1-minute candles already exist: the store (`livecli candles --interval 45min`) and
the batch rebuild. Anchoring follows CANDLES.md rule 2 (session open, last candle cut at the
close), so a derived candle equals the one built straight from the ticks. Synthetic (gap-filled)
1-minute candles carry no trade and are left out.

Input and output are `CandleArrays`: one numpy array per field, rows sorted by (token, start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from livecli.core.candles import Candle
from livecli.core.sessions import Session, exchange_of_token, session_for
from livecli.core.timeutil import DAY_S, IST_OFFSET_S

NO_OI = -1


@dataclass(slots=True)
class CandleArrays:
    """Candles column-wise. `oi` is -1 where there is none; `start` is epoch seconds."""

    token: np.ndarray
    start: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    oi: np.ndarray
    ticks: np.ndarray
    partial: np.ndarray
    synthetic: np.ndarray

    def __len__(self) -> int:
        return len(self.token)

    def take(self, idx: np.ndarray) -> CandleArrays:
        return CandleArrays(*(getattr(self, f.name)[idx] for f in fields(self)))

    @classmethod
    def empty(cls) -> CandleArrays:
        i8, f8, b = np.int64, np.float64, np.bool_
        return cls(
            np.empty(0, i8), np.empty(0, i8), np.empty(0, f8), np.empty(0, f8),
            np.empty(0, f8), np.empty(0, f8), np.empty(0, i8), np.empty(0, i8),
            np.empty(0, i8), np.empty(0, b), np.empty(0, b),
        )

    @classmethod
    def from_candles(cls, candles: list[Candle]) -> CandleArrays:
        if not candles:
            return cls.empty()
        return cls(
            np.array([c.instrument_token for c in candles], np.int64),
            np.array([c.start for c in candles], np.int64),
            np.array([c.open for c in candles], np.float64),
            np.array([c.high for c in candles], np.float64),
            np.array([c.low for c in candles], np.float64),
            np.array([c.close for c in candles], np.float64),
            np.array([c.volume for c in candles], np.int64),
            np.array([NO_OI if c.oi is None else c.oi for c in candles], np.int64),
            np.array([c.ticks for c in candles], np.int64),
            np.array([c.partial for c in candles], np.bool_),
            np.array([c.synthetic for c in candles], np.bool_),
        )

    def to_candles(
        self, interval_min: int, names: Mapping[int, tuple[str, str]] | None = None
    ) -> list[Candle]:
        names = names or {}
        out = []
        cols = zip(
            self.token.tolist(), self.start.tolist(), self.open.tolist(), self.high.tolist(),
            self.low.tolist(), self.close.tolist(), self.volume.tolist(), self.oi.tolist(),
            self.ticks.tolist(), self.partial.tolist(), self.synthetic.tolist(), strict=True,
        )
        for tok, st, o, h, lo, c, v, oi, n, p, s in cols:
            sym, ex = names.get(tok, (str(tok), exchange_of_token(tok)))
            out.append(
                Candle(tok, interval_min, st, o, h, lo, c, v, None if oi < 0 else oi, n, p, s,
                       True, sym, ex)
            )
        return out

    def sorted(self) -> CandleArrays:
        """Rows ordered by (token, start); a no-op copy-free return when already so."""
        if len(self) < 2:
            return self
        tok, st = self.token, self.start
        ordered = np.all((tok[1:] > tok[:-1]) | ((tok[1:] == tok[:-1]) & (st[1:] >= st[:-1])))
        if ordered:
            return self
        return self.take(np.lexsort((st, tok)))


def session_offsets(
    tokens: np.ndarray,
    exchanges: Mapping[int, str] | None = None,
    sessions: Mapping[str, Session] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the session's open and close as seconds after IST midnight."""
    if not exchanges:
        # The segment byte names the exchange: a 256-entry table, no hashing.
        opens = np.zeros(256, np.int64)
        closes = np.zeros(256, np.int64)
        for seg in range(256):
            s = session_for(exchange_of_token(seg), sessions)
            opens[seg], closes[seg] = s.open_s, s.close_s
        seg_of = tokens & 0xFF
        return opens[seg_of], closes[seg_of]
    import pandas as pd

    codes, uniq = pd.factorize(tokens)
    opens = np.empty(len(uniq), np.int64)
    closes = np.empty(len(uniq), np.int64)
    for i, tok in enumerate(uniq.tolist()):
        s = session_for(exchanges.get(tok) or exchange_of_token(tok), sessions)
        opens[i], closes[i] = s.open_s, s.close_s
    return opens[codes], closes[codes]


def bucket_starts(
    start: np.ndarray, interval_min: int, open_off: np.ndarray
) -> np.ndarray:
    """The start of the `interval_min` candle holding each 1-minute start (rule 2)."""
    day0 = (start + IST_OFFSET_S) // DAY_S * DAY_S - IST_OFFSET_S
    anchor = day0 + open_off
    span = interval_min * 60
    return anchor + (start - anchor) // span * span


def derive(
    m1: CandleArrays,
    interval_min: int,
    exchanges: Mapping[int, str] | None = None,
    sessions: Mapping[str, Session] | None = None,
) -> CandleArrays:
    """Candles of `interval_min` minutes from 1-minute candles (any order in, sorted out)."""
    if interval_min == 1:
        real = m1.take(np.flatnonzero(~m1.synthetic)) if m1.synthetic.any() else m1
        return real.sorted()
    src = m1
    if src.synthetic.any():
        src = src.take(np.flatnonzero(~src.synthetic))
    src = src.sorted()
    n = len(src)
    if n == 0:
        return CandleArrays.empty()
    open_off, _ = session_offsets(src.token, exchanges, sessions)
    b = bucket_starts(src.start, interval_min, open_off)
    new = np.empty(n, np.bool_)
    new[0] = True
    np.not_equal(src.token[1:], src.token[:-1], out=new[1:])
    new[1:] |= b[1:] != b[:-1]
    first = np.flatnonzero(new)
    last = np.empty_like(first)
    last[:-1] = first[1:] - 1
    last[-1] = n - 1
    # Open interest: the last minute that had any, per bucket.
    pos = np.where(src.oi >= 0, np.arange(n), -1)
    last_oi_pos = np.maximum.reduceat(pos, first)
    oi = np.where(last_oi_pos >= first, src.oi[np.maximum(last_oi_pos, 0)], NO_OI)
    return CandleArrays(
        src.token[first],
        b[first],
        src.open[first],
        np.maximum.reduceat(src.high, first),
        np.minimum.reduceat(src.low, first),
        src.close[last],
        np.add.reduceat(src.volume, first),
        oi,
        np.add.reduceat(src.ticks, first),
        np.logical_or.reduceat(src.partial, first),
        np.zeros(len(first), np.bool_),
    )
