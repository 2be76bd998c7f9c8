"""The Live Data API's JSON, both ways: what `livecli serve` sends and what its clients read.

One shape per thing across livecli: a tick or candle of the API is the object
`livecli stream --jsonl` writes (docs/jsonl.md: same field names, times ISO 8601 with +05:30),
plus `"schema": 1`. REST answers wrap them in a small envelope
(`{"schema": 1, "symbol": ..., "tick": {...}}`); WebSocket messages carry a batch:
`{"type": "ticks", "schema": 1, "data": [tick, ...]}` or `{"type": "candles", ...}` (forming
updates have `"closed": false`, closes `true`), plus `status`, `subscribed` and `error` messages.

It lives in the core, below both ends, because the server (livecli.server) and the attached
session (livecli.session.remote) must agree on it and neither may import the other: the server
encodes with these functions (its hot-path tick encoder, which reads decoded frames, stays in
livecli.server.shapes), the client decodes with them. Pure data and `json`: no sockets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from livecli.core.candles import Candle
from livecli.core.timeutil import parse_instant

# Bumped when a field changes meaning or is removed; adding a field keeps the version.
API_SCHEMA = 1
PREFIX = "/api/live"

# The WebSocket close codes a client may see, with the reason text beside them.
CLOSE_TOO_SLOW = 1008  # policy violation: the client did not read fast enough
CLOSE_SHUTDOWN = 1001  # going away: the server stops
CLOSE_UNKNOWN_SYMBOL = 4404
CLOSE_BAD_REQUEST = 4422
CLOSE_NOT_STREAMING = 4409

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj: Any) -> str:
    """Compact JSON text, as every message of the API is sent."""
    return _dumps(obj)


# --- encoding (the server) ---------------------------------------------------------------------
def candle_obj(candle: Mapping[str, Any]) -> dict[str, Any]:
    """A candle (`Candle.to_dict()`) as the JSON lines write it."""
    return {"type": "candle", "schema": API_SCHEMA, **candle}


def encode_candle(c: Candle) -> str:
    return _dumps(candle_obj(c.to_dict()))


def batch(kind: str, items: list[str]) -> str:
    """A WebSocket message carrying already-encoded objects: `{"type": kind, ..., "data": [...]}`."""
    return batch_of(kind, ",".join(items))


def batch_of(kind: str, body: str) -> str:
    """`batch` from the objects already comma-joined."""
    return f'{{"type":"{kind}","schema":{API_SCHEMA},"data":[{body}]}}'


def message(kind: str, **fields: Any) -> str:
    """A control message (`subscribed`, `error`, `status`)."""
    return _dumps({"type": kind, "schema": API_SCHEMA, **fields})


def error_body(status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Every error's JSON: `{"schema": 1, "error": {"status", "code", "message", ...}}`."""
    return {"schema": API_SCHEMA, "error": {"status": status, "code": code, "message": message,
                                            **extra}}


# --- decoding (the attached session) -------------------------------------------------------------
def candle_from_obj(obj: Mapping[str, Any]) -> Candle:
    """The `Candle` a JSON candle object stands for (what LiveSession's callbacks get)."""
    interval = str(obj["interval"])
    return Candle(
        instrument_token=int(obj["instrument_token"]),
        interval_min=int(interval.removesuffix("min")),
        start=int(parse_instant(str(obj["start"]))),
        open=float(obj["open"]), high=float(obj["high"]), low=float(obj["low"]),
        close=float(obj["close"]), volume=int(obj["volume"]),
        oi=None if obj.get("oi") is None else int(obj["oi"]), ticks=int(obj["ticks"]),
        partial=bool(obj.get("partial")), synthetic=bool(obj.get("synthetic")),
        closed=bool(obj.get("closed")), symbol=str(obj.get("symbol") or ""),
        exchange=str(obj.get("exchange") or ""),
        origin=str(obj.get("origin") or "live"),
    )


def callback_tick(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A wire tick as `LiveSession.on_tick` callbacks get theirs: the same fields plus `time`
    (the exchange's time, or the receive time where the packet has none)."""
    out = {k: v for k, v in obj.items() if k not in ("type", "schema")}
    out["time"] = obj.get("exchange_timestamp") or obj.get("received_at")
    return out


def jsonl_tick(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A wire tick as `livecli stream --jsonl` writes its tick line (the same object without
    `schema`, in the same field order)."""
    return {k: v for k, v in obj.items() if k != "schema"}


@dataclass(frozen=True, slots=True)
class WireTick:
    """The fields of a wire tick that readers compute with, typed (instants as epoch seconds).

    `prev_close` is not sent; it is recovered from `change_pct` (rounded to 4 decimals on the
    wire, so to about a paisa on a 10,000-rupee price), None where the packet had no close.
    """

    instrument_token: int
    symbol: str
    exchange: str
    last_price: float
    volume_traded: int | None
    exchange_timestamp: float | None
    received_at: float
    change_pct: float | None

    @property
    def time(self) -> float:
        """The tick's own time: the exchange's, or the receive time where it has none."""
        return self.exchange_timestamp if self.exchange_timestamp is not None else self.received_at

    @property
    def prev_close(self) -> float | None:
        ch = self.change_pct
        if ch is None or ch <= -100.0:
            return None
        return self.last_price * 100.0 / (100.0 + ch)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> WireTick:
        ets = obj.get("exchange_timestamp")
        px = obj.get("last_price")
        vol = obj.get("volume_traded")
        ch = obj.get("change_pct")
        return cls(
            instrument_token=int(obj["instrument_token"]), symbol=str(obj.get("symbol") or ""),
            exchange=str(obj.get("exchange") or ""),
            last_price=float(px) if px is not None else float("nan"),
            volume_traded=None if vol is None else int(vol),
            exchange_timestamp=parse_instant(str(ets)) if ets else None,
            received_at=parse_instant(str(obj["received_at"])),
            change_pct=None if ch is None else float(ch),
        )
