"""The API's request bodies and documented answers, as pydantic models for FastAPI.

Request bodies are validated here (a bad body is a 422 naming the field); answers are built as
plain JSON by the routes (`livecli.server.shapes`) and these models only document them in
/openapi.json, where tests hold the two together (schemathesis checks every answer against its
schema). A JSON key `schema` is the field `schema_version` here (pydantic reserves the name).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from livecli.config.schema import EXCHANGES
from livecli.kite.protocol import MAX_INSTRUMENTS

Exchange = Literal[EXCHANGES]  # type: ignore[valid-type]
Mode = Literal["full", "quote", "ltp"]
# As users write symbols: RELIANCE, NSE:INFY, NSE:NIFTY 50. No control characters.
SYMBOL_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Symbol = Annotated[str, Field(min_length=1, max_length=64, pattern=SYMBOL_PATTERN,
                              examples=["RELIANCE", "NSE:NIFTY 50"])]
SchemaVersion = Annotated[int, Field(alias="schema", examples=[1])]


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# --- requests ----------------------------------------------------------------------------------
class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbols: list[Symbol] = Field(min_length=1, max_length=MAX_INSTRUMENTS,
                                  examples=[["RELIANCE", "INFY"]])
    exchange: Exchange | None = Field(
        None, description="exchange of symbols written without one (default: [stream] exchange)")
    mode: Mode | None = Field(
        None, description="tick mode, one for the whole session (default: the running "
                          "session's, else [stream] mode)")


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    exchange: Exchange | None = None
    mode: Mode | None = Field(None, description="must equal the session's mode when given")


# --- answers -----------------------------------------------------------------------------------
class Tick(_Out):
    """A tick as the JSON lines write it (docs/jsonl.md)."""

    type: Literal["tick"]
    schema_version: SchemaVersion
    symbol: str
    exchange: str | None
    instrument_token: int
    last_price: float | None
    volume_traded: int | None
    exchange_timestamp: str | None
    received_at: str
    oi: int | None
    day_high: float | None
    day_low: float | None
    change_pct: float | None
    mode: str


class Candle(_Out):
    """A candle as the JSON lines write it (CANDLES.md fields; `closed` false while forming)."""

    type: Literal["candle"]
    schema_version: SchemaVersion
    symbol: str
    instrument_token: int
    exchange: str
    interval: str
    start: str
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int | None
    ticks: int
    partial: bool
    synthetic: bool
    closed: bool
    origin: Literal["live", "history", "repaired"] = "live"


class TickAnswer(_Out):
    schema_version: SchemaVersion
    symbol: str
    exchange: str | None
    tick: Tick | None = Field(description="null until the instrument's first tick")


class CandleAnswer(_Out):
    schema_version: SchemaVersion
    symbol: str
    exchange: str | None
    interval: str
    candle: Candle | None = Field(description="null when no candle is forming")


class CandlesAnswer(_Out):
    schema_version: SchemaVersion
    symbol: str
    exchange: str | None
    interval: str
    derived: bool = Field(description="derived from 1-minute candles (an interval not streamed)")
    candles: list[Candle]


class ServerStats(_Out):
    clients: int
    clients_total: int
    clients_dropped: int = Field(description="WebSocket clients dropped as too slow")
    messages_sent: int
    frames_shed: int
    client_queue: int
    auth: bool = Field(description="requests must carry the API key")


class StatusAnswer(_Out):
    """The session's status (docs/jsonl.md "status"), with the server's own counters."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: Literal["status"]
    schema_version: SchemaVersion
    state: str
    server: ServerStats


class StartAnswer(_Out):
    schema_version: SchemaVersion
    started: bool = Field(description="true when this request started streaming")
    state: str | None
    mode: str | None
    added: list[str]
    symbols: list[str]


class StopAnswer(_Out):
    schema_version: SchemaVersion
    state: str | None
    candles_stored: int | None


class SubscribeAnswer(_Out):
    schema_version: SchemaVersion
    symbol: str
    exchange: str | None
    instrument_token: int
    added: bool = Field(description="false when it was subscribed already")


class UnsubscribeAnswer(_Out):
    schema_version: SchemaVersion
    symbol: str
    exchange: str | None
    instrument_token: int
    removed: bool


class ErrorDetail(_Out):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    status: int
    code: str = Field(examples=["unknown_symbol"])
    message: str
    matches: list[str] | None = None
    errors: list[dict[str, Any]] | None = None


class ErrorAnswer(_Out):
    schema_version: SchemaVersion
    error: ErrorDetail


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: its error statuses, each with the error body."""
    what = {401: "the API key is missing or wrong", 404: "symbol not subscribed (closest given)",
            409: "streaming has not started (or is stopped)", 422: "bad input or interval",
            502: "Kite's REST API failed", 503: "the feed is down (Retry-After)"}
    return {c: {"model": ErrorAnswer, "description": what.get(c, "error")} for c in codes}
