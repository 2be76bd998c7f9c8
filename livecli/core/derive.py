"""Candles of any whole-minute interval derived from 1-minute candles, vectorised.

Used wherever 1-minute candles already exist: the store (`livecli candles --interval 45min`) and
the batch rebuild. Anchoring follows CANDLES.md rule 2 (session open, last candle cut at the
close), so a derived candle equals the one built straight from the ticks. Synthetic (gap-filled)
1-minute candles carry no trade and are left out.

A derived candle is closed only when every minute in it is closed and its whole interval is over
(CANDLES.md, a candle's fields). "Over" is judged by the recording itself, not the wall clock
(a simulated day, or last week's store, is over whatever the hour): an interval is over once the
feed is known to have passed its end, that is once some instrument of the same exchange has a
closed minute ending at or after it on that day (the feed's clock, rule 8, as the stored minutes
witness it). So a 5-minute candle holding the one minute recorded before a stream stopped is
not closed, while an illiquid instrument's last candle is, once the rest of its market moved on.

Input and output are `CandleArrays`: one numpy array per field, rows sorted by (token, start).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from livecli.core.candles import ORIGIN_CODE, ORIGINS, Candle
from livecli.core.sessions import Session, exchange_of_token, session_for
from livecli.core.timeutil import DAY_S, IST_OFFSET_S

NO_OI = -1
_ALL_CLOSED = np.empty(0, np.bool_)  # sentinel default: "every row closed"
_ALL_LIVE = np.empty(0, np.int8)  # sentinel default: "every row live" (origin code 0)
_NEVER = np.iinfo(np.int64).min  # the clock of a day with no closed minute

# {(exchange, IST midnight as epoch seconds): end of the latest closed minute recorded that day}
RecordingClocks = Mapping[tuple[str, int], int]


@dataclass(slots=True)
class CandleArrays:
    """Candles column-wise. `oi` is -1 where there is none; `start` is epoch seconds.

    `closed` may be left out: every row is then closed (what a rebuild from ticks makes);
    `origin` too: every row is then live. `origin` holds codes, indexes of `candles.ORIGINS`.
    """

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
    closed: np.ndarray = field(default_factory=lambda: _ALL_CLOSED)
    origin: np.ndarray = field(default_factory=lambda: _ALL_LIVE)

    def __post_init__(self) -> None:
        if self.closed is _ALL_CLOSED:
            self.closed = np.ones(len(self.token), np.bool_)
        if self.origin is _ALL_LIVE:
            self.origin = np.zeros(len(self.token), np.int8)

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
            np.empty(0, i8), np.empty(0, b), np.empty(0, b), np.empty(0, b), np.empty(0, np.int8),
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
            np.array([c.closed for c in candles], np.bool_),
            np.array([ORIGIN_CODE[c.origin] for c in candles], np.int8),
        )

    def to_candles(
        self, interval_min: int, names: Mapping[int, tuple[str, str]] | None = None
    ) -> list[Candle]:
        names = names or {}
        out = []
        cols = zip(
            self.token.tolist(), self.start.tolist(), self.open.tolist(), self.high.tolist(),
            self.low.tolist(), self.close.tolist(), self.volume.tolist(), self.oi.tolist(),
            self.ticks.tolist(), self.partial.tolist(), self.synthetic.tolist(),
            self.closed.tolist(), self.origin.tolist(), strict=True,
        )
        for tok, st, o, h, lo, c, v, oi, n, p, s, done, org in cols:
            sym, ex = names.get(tok, (str(tok), exchange_of_token(tok)))
            out.append(
                Candle(tok, interval_min, st, o, h, lo, c, v, None if oi < 0 else oi, n, p, s,
                       done, sym, ex, ORIGINS[org])
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


def _exchange_codes(
    tokens: np.ndarray, exchanges: Mapping[int, str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Per row: a small integer naming its exchange, and the names those integers stand for."""
    names: list[str] = []
    index: dict[str, int] = {}

    def code(ex: str) -> int:
        if ex not in index:
            index[ex] = len(names)
            names.append(ex)
        return index[ex]

    if not exchanges:
        table = np.array([code(exchange_of_token(seg)) for seg in range(256)], np.int64)
        return table[tokens & 0xFF], names
    uniq, inv = np.unique(tokens, return_inverse=True)
    per = np.array([code(exchanges.get(t) or exchange_of_token(t)) for t in uniq.tolist()],
                   np.int64)
    return per[inv], names


def _recording_clock(
    src: CandleArrays, day0: np.ndarray, first: np.ndarray,
    exchanges: Mapping[int, str] | None, clocks: RecordingClocks | None,
) -> np.ndarray:
    """Per bucket (`first`: its first row): the recording's clock for its exchange and day.

    `src` is sorted by (token, start) and holds no synthetic minute, so each token's minutes of
    one day form a run: reduce the runs (thousands, not a million rows), then the runs of one
    exchange and day, and hand each bucket the clock of its run.
    """
    n = len(src)
    run = np.empty(n, np.bool_)
    run[0] = True
    np.not_equal(src.token[1:], src.token[:-1], out=run[1:])
    run[1:] |= day0[1:] != day0[:-1]
    run_first = np.flatnonzero(run)
    if src.closed.all():  # the usual case: a run's latest closed minute is its last row
        run_clock = src.start[np.append(run_first[1:] - 1, n - 1)] + 60
    else:
        ends = np.where(src.closed, src.start + 60, _NEVER)
        run_clock = np.maximum.reduceat(ends, run_first)
    ex, ex_names = _exchange_codes(src.token[run_first], exchanges)
    run_day = day0[run_first]
    day_min = int(run_day.min())
    day_idx = (run_day - day_min) // DAY_S
    width = int(day_idx.max()) + 1
    uniq, inv = np.unique(ex * width + day_idx, return_inverse=True)
    key_clock = np.full(len(uniq), _NEVER, np.int64)
    np.maximum.at(key_clock, inv, run_clock)
    if clocks:
        for k, key in enumerate(uniq.tolist()):
            known = clocks.get((ex_names[key // width], day_min + key % width * DAY_S))
            if known is not None and known > key_clock[k]:
                key_clock[k] = known
    return key_clock[inv][np.searchsorted(run_first, first, side="right") - 1]


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
    *,
    clocks: RecordingClocks | None = None,
) -> CandleArrays:
    """Candles of `interval_min` minutes from 1-minute candles (any order in, sorted out).

    `closed` follows the rule in the module docstring, with the recording's clock taken from
    `m1` itself; `clocks` adds what is known beyond it (the store's other instruments, when
    `m1` holds only some of them), keyed by (exchange, IST midnight as epoch seconds).
    """
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
    open_off, close_off = session_offsets(src.token, exchanges, sessions)
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
    day0 = (src.start + IST_OFFSET_S) // DAY_S * DAY_S - IST_OFFSET_S
    # The last candle of a day is cut at the close (rule 2): it is over at the close.
    end = np.minimum(b[first] + interval_min * 60, day0[first] + close_off[first])
    closed = end <= _recording_clock(src, day0, first, exchanges, clocks)
    if not src.closed.all():
        closed &= np.logical_and.reduceat(src.closed, first)
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
        closed,
        # The "least live" origin of a bucket's minutes (candles.ORIGINS is in that order).
        np.maximum.reduceat(src.origin, first).astype(np.int8),
    )
