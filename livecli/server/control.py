"""Driving the served session: start, stop, subscribe, unsubscribe, and the API's errors.

The routes call these from worker threads (they block: instrument lookups over REST, the feed's
start, the store's flush at stop); one lock keeps two requests from starting or stopping the
session at once. Reads (`token`, `require_live`) are non-blocking and safe on the event loop.

Every failure becomes an `ApiError`: an HTTP status that fits, a stable `code`, and livecli's
one-line message. The mapping from livecli's error classes is `api_error` below.
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
import time
from collections.abc import Iterable
from typing import Any

from livecli import errors as e
from livecli.server.shapes import API_SCHEMA, PREFIX
from livecli.server.status import StatusView, Unavailable, availability, status_json

log = logging.getLogger("livecli.server")

STATUS_FRESH_S = 1.5  # the session pushes its status every second while it runs
WATCH_EVERY_S = 0.5


class ApiError(Exception):
    """An error answer: status code, stable code, message, extra JSON fields, headers."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra

    @classmethod
    def unavailable(cls, u: Unavailable) -> ApiError:
        headers = {"Retry-After": str(round(u.retry_after_s))} if u.retry_after_s else None
        return cls(u.status, u.code, u.message, headers=headers)


# Most specific first, as in livecli.cli.errors: (class, HTTP status, code).
_STATUS = (
    (e.IntervalError, 422, "bad_interval"),
    (e.SymbolError, 404, "unknown_symbol"),
    (e.TooManyInstrumentsError, 422, "too_many_instruments"),
    (e.UsageError, 422, "bad_request"),
    (e.AuthError, 503, "kite_credentials"),
    (e.KiteApiError, 502, "kite_api"),
    (e.ConnectionFailedError, 503, "feed_failed"),
    (e.StoreError, 503, "store"),
    (e.ConfigError, 500, "config"),
)


def api_error(exc: BaseException) -> ApiError:
    """The API's answer to a livecli error (or any other exception: a 500)."""
    if isinstance(exc, ApiError):
        return exc
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            if cls is e.SymbolError:
                return ApiError(status, code, str(exc), matches=closest_in_message(str(exc)))
            return ApiError(status, code, str(exc))
    return ApiError(500, "internal", f"unexpected {type(exc).__name__}: {exc}")


def closest_in_message(message: str) -> list[str]:
    """The symbols the instrument master suggested in a SymbolError's message."""
    out: list[str] = []
    for group in re.findall(r"\(closest: ([^)]*)\)", message):
        out += [s.strip() for s in group.split(",") if s.strip()]
    return out


def shown(symbol: str) -> str:
    """A symbol as it may be echoed: control characters escaped, at most 60 characters."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in symbol)
    return text if len(text) <= 60 else text[:57] + "..."


class SessionControl:
    """The session as the API sees it."""

    def __init__(self, session: Any, hub: Any) -> None:
        self.session = session
        self.hub = hub
        self._lock = threading.Lock()
        self._watching = threading.Event()
        self._reported: BaseException | None = None
        self._watcher: threading.Thread | None = None

    # --- reads ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        raw = self.hub.last_status
        fresh = raw is not None and time.monotonic() - self.hub.last_status_at < STATUS_FRESH_S
        if not (fresh and self.session.running):
            raw = self.session.status()
        return status_json(raw)

    def view(self) -> StatusView:
        return StatusView.of(self.status())

    def require_started(self) -> None:
        """409 unless the session has streamed in this server's life (history then exists)."""
        if not self.session.running and not self.session.instruments:
            u = availability(False, StatusView("idle", False, None, None, None))
            assert u is not None
            raise ApiError.unavailable(u)

    def require_live(self) -> None:
        """409 when not streaming, 503 while the feed is down."""
        u = availability(self.session.running, self.view())
        if u is not None:
            raise ApiError.unavailable(u)

    def token(self, symbol: str) -> int:
        """The token of a subscribed symbol; 409 before any start, 404 with the closest."""
        self.require_started()
        try:
            return self.session.token_of(symbol)
        except e.SymbolError:
            pass
        names = self.names()
        matches = difflib.get_close_matches(symbol.strip().upper(), names, n=5, cutoff=0.6)
        hint = f"; closest: {', '.join(matches)}" if matches else ""
        raise ApiError(404, "unknown_symbol",
                       f"{shown(symbol)} is not subscribed in this session{hint}; add it with "
                       f"POST {PREFIX}/subscribe", matches=matches)

    def names(self) -> list[str]:
        out = []
        for inst in list(self.session.instruments.values()):
            out += [inst.tradingsymbol, f"{inst.exchange}:{inst.tradingsymbol}"]
        return out

    def subscribed(self) -> list[str]:
        return sorted(f"{i.exchange}:{i.tradingsymbol}"
                      for i in list(self.session.instruments.values()))

    # --- control (blocking: call from a worker thread) -------------------------------------------
    def start(self, symbols: Iterable[str], exchange: str, mode: str,
              mode_given: bool = True) -> dict[str, Any]:
        """Start streaming, or add to what streams (in its mode; a different mode given
        explicitly is a 409)."""
        symbols = [s.strip() for s in symbols if s.strip()]
        if not symbols:
            raise ApiError(422, "bad_request", "no symbols given: name at least one, e.g. "
                                               '{"symbols": ["RELIANCE", "NSE:INFY"]}')
        with self._lock:
            try:
                if not self.session.running:
                    self.session.start(symbols, exchange=exchange, mode=mode)
                    self.hub.last_status = None
                    self.watch()
                    return self._started(True, self.subscribed())
                if mode_given:
                    self._same_mode(mode)
                added = []
                for sym in symbols:
                    if self._known(sym, exchange):
                        continue
                    self.session.subscribe_symbol(sym, exchange=exchange)
                    added.append(sym)
                return self._started(False, added)
            except ApiError:
                raise
            except e.LivecliError as exc:
                raise api_error(exc) from None

    def stop(self) -> dict[str, Any]:
        with self._lock:
            if not self.session.running:
                u = availability(False, self.view())
                raise ApiError(409, "not_streaming", u.message if u else "not streaming")
            self.session.stop(f"stopped by POST {PREFIX}/stop")
            self.hub.last_status = None
            st = self.status()
            return {"schema": API_SCHEMA, "state": st.get("state"),
                    "candles_stored": st.get("candles_stored")}

    def subscribe(self, symbol: str, exchange: str, mode: str | None) -> dict[str, Any]:
        with self._lock:
            if not self.session.running:
                self.require_live()
            if mode is not None:
                self._same_mode(mode)
            added = not self._known(symbol, exchange)
            try:
                tok = (self.session.subscribe_symbol(symbol, exchange=exchange) if added
                       else self.session.token_of(self._qualified(symbol, exchange)))
            except e.LivecliError as exc:
                raise api_error(exc) from None
            inst = self.session.instruments.get(tok)
            return {"schema": API_SCHEMA, "symbol": inst.tradingsymbol if inst else symbol,
                    "exchange": inst.exchange if inst else exchange, "instrument_token": tok,
                    "added": added}

    def unsubscribe(self, symbol: str) -> dict[str, Any]:
        with self._lock:
            if not self.session.running:
                self.require_live()
            tok = self.token(symbol)
            inst = self.session.instruments.get(tok)
            try:
                self.session.unsubscribe_symbol(symbol)
            except e.LivecliError as exc:
                raise api_error(exc) from None
            return {"schema": API_SCHEMA, "symbol": inst.tradingsymbol if inst else symbol,
                    "exchange": inst.exchange if inst else None, "instrument_token": tok,
                    "removed": True}

    def _started(self, started: bool, added: list[str]) -> dict[str, Any]:
        st = self.status()
        return {"schema": API_SCHEMA, "started": started, "state": st.get("state"),
                "mode": st.get("mode"), "added": added, "symbols": self.subscribed()}

    def _same_mode(self, mode: str) -> None:
        current = self.status().get("mode")
        if current and mode != current:
            raise ApiError(409, "mode_conflict",
                           f"this session streams in {current} mode; every symbol shares it "
                           f"(POST {PREFIX}/stop, then start again in {mode} mode)")

    @staticmethod
    def _qualified(symbol: str, exchange: str) -> str:
        return symbol if ":" in symbol else f"{exchange}:{symbol}"

    def _known(self, symbol: str, exchange: str) -> bool:
        try:
            self.session.token_of(self._qualified(symbol, exchange))
            return True
        except e.SymbolError:
            return False

    # --- watching for a feed that dies -----------------------------------------------------------
    def watch(self) -> None:
        """A thread that lets the session notice a fatal feed error (`wait()` tears it down)."""
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._watcher = threading.Thread(target=self._watch_loop, name="livecli-serve-watch",
                                         daemon=True)
        self._watcher.start()

    def _watch_loop(self) -> None:
        while not self._watching.is_set():
            if self.session.running:
                self.session.wait(timeout=WATCH_EVERY_S)
                failure = self.session.failure
                if failure is not None and failure is not self._reported:
                    self._reported = failure
                    log.warning("streaming stopped: %s (the server stays up: POST %s/start "
                                "to stream again)", failure, PREFIX)
            else:
                self._watching.wait(WATCH_EVERY_S)

    def close(self) -> None:
        self._watching.set()
        if self._watcher is not None:
            self._watcher.join(timeout=2)
