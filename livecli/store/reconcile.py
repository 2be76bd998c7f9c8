"""The store's live-built candles against Kite's own, minute by minute: `livecli reconcile`.

A user deciding whether to trust livecli's candles needs them checked against the candles Kite
serves from its historical API for the same minutes. Both sides are taken as 1-minute candles
and any longer interval is derived from them the same way (core.derive: session-anchored, "One
answer everywhere"), so an N-minute difference is a difference of its minutes.

Only candles livecli built from ticks are judged: stored candles whose origin is history or
repaired are Kite's already, and the recording's first candle of the day (its join: the trades
of that minute before the first tick were not seen, CANDLES.md rule 12) and any partial one
are known to have missed the start of their minute; all of these are counted as skipped. A
minute is compared where both sides have it; the minutes only one side has are listed, within
the span the store recorded that day (from its first to its last closed candle: minutes before
a stream started are not missing). Fields: open, high, low, close, volume. Two values match
when they differ by at most `tolerance` times Kite's value (0: exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from livecli.core.candles import LIVE, Candle
from livecli.core.timeutil import iso

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class FieldReport:
    """One field of one symbol: how many compared candles match, and the largest difference."""

    field: str
    matched: int
    compared: int
    max_diff: float = 0.0  # livecli's value minus Kite's, the largest in size
    max_at: int | None = None  # the candle's start (epoch s) where it is

    def to_json_dict(self) -> dict[str, Any]:
        return {"field": self.field, "matched": self.matched, "compared": self.compared,
                "max_diff": self.max_diff,
                "max_at": None if self.max_at is None else iso(self.max_at)}


@dataclass(frozen=True, slots=True)
class SymbolReport:
    """One symbol's reconciliation."""

    symbol: str
    instrument_token: int
    compared: int
    fields: tuple[FieldReport, ...]
    only_store: tuple[int, ...]  # candle starts livecli has and Kite does not
    only_kite: tuple[int, ...]
    skipped: int  # stored candles not judged (history, repaired or partial)

    @property
    def mismatches(self) -> int:
        return sum(f.compared - f.matched for f in self.fields)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and not self.only_store and not self.only_kite

    def to_json_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "instrument_token": self.instrument_token,
                "compared": self.compared, "ok": self.ok, "mismatches": self.mismatches,
                "fields": [f.to_json_dict() for f in self.fields],
                "only_store": [iso(s) for s in self.only_store],
                "only_kite": [iso(s) for s in self.only_kite], "skipped": self.skipped}


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """Every symbol's reconciliation for one day and interval."""

    date: str
    interval: str
    tolerance: float
    symbols: tuple[SymbolReport, ...]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.symbols)

    @property
    def differences(self) -> int:
        return sum(s.mismatches + len(s.only_store) + len(s.only_kite) for s in self.symbols)

    def to_json_dict(self) -> dict[str, Any]:
        return {"date": self.date, "interval": self.interval, "tolerance": self.tolerance,
                "ok": self.ok, "differences": self.differences,
                "symbols": [s.to_json_dict() for s in self.symbols]}


def _matches(a: float, b: float, tolerance: float) -> bool:
    return a == b or abs(a - b) <= tolerance * abs(b)


def compare(symbol: str, token: int, stored: Sequence[Candle], kite: Sequence[Candle],
            tolerance: float = 0.0) -> SymbolReport:
    """Reconcile one symbol's stored candles (closed, one interval, one day) with Kite's."""
    real = [c for c in stored if c.closed and not c.synthetic]
    judged = {c.start: c for c in real if c.origin == LIVE and not c.partial}
    if real and min(c.start for c in real) in judged:  # the join, unless history replaced it
        del judged[min(c.start for c in real)]
    held = {c.start for c in real}
    skipped = len(real) - len(judged)
    if real:
        lo, hi = min(held), max(held)
        theirs = {c.start: c for c in kite if lo <= c.start <= hi}
    else:
        theirs = {}
    both = sorted(judged.keys() & theirs.keys())
    fields = []
    for name in FIELDS:
        matched, worst, at = 0, 0.0, None
        for s in both:
            a, b = float(getattr(judged[s], name)), float(getattr(theirs[s], name))
            if _matches(a, b, tolerance):
                matched += 1
            if abs(a - b) > abs(worst):
                worst, at = a - b, s
        fields.append(FieldReport(name, matched, len(both), worst, at))
    return SymbolReport(
        symbol, token, len(both), tuple(fields),
        only_store=tuple(sorted(judged.keys() - theirs.keys())),
        only_kite=tuple(sorted(theirs.keys() - held)),
        skipped=skipped,
    )


__all__ = ["FIELDS", "FieldReport", "ReconcileReport", "SymbolReport", "compare"]
