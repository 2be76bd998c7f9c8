"""Kite Connect's protocol facts, written once: modes, limits, divisors, heartbeat, advice.

The client side (codec, connection, REST, instruments), the config schema and the local
stand-in all read these constants from here, so a rule of Kite's is changed in one place.
This module imports nothing of livecli's, so any layer may use it (the import-linter contracts
in pyproject.toml name each layer that does). Source: docs/KITE.md.
"""

from __future__ import annotations

from typing import Final

# --- tick modes ----------------------------------------------------------------------------
MODE_LTP: Final = "ltp"
MODE_QUOTE: Final = "quote"
MODE_FULL: Final = "full"
MODES: Final = (MODE_LTP, MODE_QUOTE, MODE_FULL)

# --- limits per api_key ----------------------------------------------------------------------
MAX_PER_CONNECTION: Final = 3000
MAX_CONNECTIONS: Final = 3
MAX_INSTRUMENTS: Final = MAX_PER_CONNECTION * MAX_CONNECTIONS
# Kite's largest real binary message is about 12 MB (3000 full packets with depth and the
# per-packet headers); anything much larger is not Kite's and is refused before it is buffered.
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
# Historical API: about 3 requests a second, at most 60 days of minute candles per request.
HISTORICAL_REQUESTS_PER_S: Final = 3
HISTORICAL_MINUTE_DAYS_PER_REQUEST: Final = 60

# --- binary messages -------------------------------------------------------------------------
# A 1-byte binary message: Kite's heartbeat, sent when there is nothing else to send.
HEARTBEAT: Final = b"\x00"

# The low byte of an instrument token is its segment; the segment decides the price divisor.
SEGMENT_CDS: Final = 3
SEGMENT_BCD: Final = 6
SEGMENT_INDICES: Final = 9
# kiteconnect also divides segment 12 ("nco") by 10_000; matching it keeps our prices equal to its.
SEGMENT_NCO: Final = 12
DEFAULT_PRICE_DIVISOR: Final = 100.0
PRICE_DIVISORS: Final = {
    SEGMENT_CDS: 10_000_000.0,
    SEGMENT_BCD: 10_000.0,
    SEGMENT_NCO: 10_000.0,
}

# --- what users are told -----------------------------------------------------------------------
LOGIN_ADVICE: Final = "run `livecli login`"
TOKEN_ADVICE: Final = f"access token invalid or expired, {LOGIN_ADVICE}"

# --- the local stand-in ------------------------------------------------------------------------
# The stand-in answers the WebSocket upgrade with these headers (real Kite never does), so that
# livecli's client knows it talks to a simulated market and which clock that market keeps:
# STANDIN_CLOCK_HEADER is the market's epoch seconds at the moment of the upgrade, and
# STANDIN_SPEED_HEADER how many market seconds pass per real second.
STANDIN_HEADER: Final = "X-Livecli-Standin"
STANDIN_CLOCK_HEADER: Final = "X-Livecli-Standin-Clock"
STANDIN_SPEED_HEADER: Final = "X-Livecli-Standin-Speed"
