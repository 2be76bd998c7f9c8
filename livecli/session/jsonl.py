"""JSON lines output of a session: ticks, closed candles and status, one object per line.

For scripts and pipes (`livecli stream --jsonl`, or whenever stdout is not a terminal). Events
are queued on the receiving path and serialised on a thread of their own, so a slow consumer of
stdout never stalls decoding. Times are ISO 8601 with +05:30; every status line carries
`schema` (livecli.core.status.STATUS_SCHEMA).

Bounded, and nothing lost in silence: at most `max_pending_ticks` tick lines wait to be written;
beyond that a frame's tick lines are dropped and counted (the status's `tick_lines_dropped`).
Candle and status lines are never dropped, and `close()` writes everything still queued before
it returns. When the reader goes away (`| head`), the first failed write sets `reader_gone`,
output stops, and stdout is pointed at /dev/null so that the interpreter's last flush cannot
fail either; the CLI then ends the stream quietly.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

from livecli.core.candles import ORIGINS
from livecli.core.jsontext import dumps_in_pieces
from livecli.core.rounding import change_pct_column
from livecli.core.status import STATUS_SCHEMA
from livecli.core.timeutil import iso

if TYPE_CHECKING:
    from livecli.core.candles import Candle
    from livecli.core.closed import ClosedCandles
    from livecli.core.status import LiveStatus
    from livecli.session.live import LiveSession

# About a second of a busy 3000-instrument feed: a consumer may pause that long, no longer,
# before tick lines are shed. Each pending tick holds its share of a frame (~200 bytes).
MAX_PENDING_TICKS = 30_000


class JsonLines:
    """Attach to a session before `start()`; `close()` after `stop()` drains everything."""

    def __init__(self, session: LiveSession, out: IO[str] | None = None, *,
                 max_pending_ticks: int = MAX_PENDING_TICKS) -> None:
        self.session = session
        self.out = out or sys.stdout
        self.max_pending_ticks = max_pending_ticks
        self._q: queue.SimpleQueue[tuple[str, Any, float] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="livecli-jsonl", daemon=True)
        self._pending_lock = threading.Lock()
        self._pending_ticks = 0
        self.dropped_ticks = 0
        self.reader_gone = threading.Event()
        self.failed: str | None = None  # why output stopped, when it was not the reader leaving
        self._tick_lines = TickLines(lambda: session.instruments)
        session.add_frame_listener(self._on_frame)
        batches = getattr(session, "add_candle_batch_listener", None)
        if batches is not None:
            # Whole batches: a minute's 9000 Candle objects are made on the writer's thread.
            batches(lambda b: self._put("candles", b))
        else:  # a session that hands on candles one by one (the server's client)
            session.add_candle_listener(lambda c: self._put("candle", c))
        session.add_status_listener(lambda st: self._put("status", st))
        session.add_drop_counter(lambda: self.dropped_ticks)

    @property
    def broken(self) -> bool:
        """Output stopped: the reader went away or stdout failed."""
        return self.reader_gone.is_set() or self.failed is not None

    # --- producers (receiving path, clock thread) ----------------------------------------------
    def _on_frame(self, frame: Any, received_at: float) -> None:
        if self.broken:  # nobody reads any more: queueing would only grow memory
            return
        n = len(frame)
        with self._pending_lock:
            if self._pending_ticks + n > self.max_pending_ticks:
                self.dropped_ticks += n
                return
            self._pending_ticks += n
        self._q.put(("frame", frame, received_at))

    def _put(self, kind: str, payload: Any) -> None:
        if not self.broken:
            self._q.put((kind, payload, 0.0))

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> JsonLines:
        self._thread.start()
        return self

    def close(self, final_status: LiveStatus | None = None,
              give_up: threading.Event | None = None) -> bool:
        """Write the final status after everything queued; True when all of it was written.

        Waits as long as the reader takes (a pipe's reader may be slow), unless `give_up` is set
        (a second Ctrl-C) or the reader is gone.
        """
        if final_status is not None:
            self._put("status", final_status)
        self._q.put(None)
        while self._thread.is_alive():
            self._thread.join(0.2)
            if give_up is not None and give_up.is_set():
                break
        return not self._thread.is_alive() and not self.broken

    # --- the writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        write = self.out.write
        while True:
            item = self._q.get()
            if item is None:
                break
            kind, payload, at = item
            if kind == "frame":
                with self._pending_lock:
                    self._pending_ticks -= len(payload)
            if self.broken:
                continue
            try:
                if kind == "frame":
                    write("".join(self._ticks(payload, at)))
                elif kind == "candle":
                    write(self._candle(payload))
                elif kind == "candles":
                    write("".join(self._candle(c) for c in payload.candles()))
                else:
                    write(self._status(payload))
                if self._q.empty():
                    self.out.flush()
            except (OSError, ValueError) as exc:
                self._stopped(exc)
        if not self.broken:
            try:
                self.out.flush()
            except (OSError, ValueError) as exc:
                self._stopped(exc)

    def _stopped(self, exc: BaseException) -> None:
        if isinstance(exc, BrokenPipeError | ConnectionResetError):
            self.reader_gone.set()
            _silence(self.out)
        else:  # the terminal closed, the disk filled: stop writing, keep the session going
            self.failed = f"{type(exc).__name__}: {exc}"

    def _ticks(self, frame: Any, received_at: float) -> list[str]:
        return self._tick_lines.lines(frame, received_at)

    @staticmethod
    def _candle(c: Candle) -> str:
        return candle_line(c)

    @staticmethod
    def _status(st: LiveStatus) -> str:
        return status_line(st)


def candle_line(c: Candle, *, schema: bool = False) -> str:
    """A candle's line (`schema`: with the schema version, as NATS messages carry it).

    Exactly `json.dumps({"type": "candle", **c.to_dict()})`, formatted directly: publishing
    sends every instrument's forming candle each second, and the dict and the encoder were
    most of that cost."""
    head = _CANDLE_SCHEMA_HEAD if schema else _CANDLE_HEAD
    return (
        f'{head}"symbol": {_js(c.symbol)}, "instrument_token": {_num(c.instrument_token)}, '
        f'"exchange": {_js(c.exchange)}, "interval": {_js(c.interval)}, '
        f'"start": {_start_text(c.start)}, "open": {_price(c.open)}, "high": {_price(c.high)}, '
        f'"low": {_price(c.low)}, "close": {_price(c.close)}, "volume": {_num(c.volume)}, '
        f'"oi": {_num(c.oi)}, "ticks": {_num(c.ticks)}, "partial": {_flag(c.partial)}, '
        f'"synthetic": {_flag(c.synthetic)}, "closed": {_flag(c.closed)}, '
        f'"origin": {_js(c.origin)}}}\n'
    )


def candle_lines(batch: ClosedCandles, *, closed: bool, schema: bool = False) -> list[str]:
    """The lines of a batch's candles, each exactly `candle_line` of the `Candle` that
    `batch.candles(closed)` would make for its row, without making them: a minute's closes and
    each second's forming updates of 9000 instruments are the publisher's other big cost. Each
    (instrument, interval)'s fixed part is formatted once."""
    if not len(batch):
        return []
    iv = _js(f"{batch.interval_min}min")
    hd = _CANDLE_SCHEMA_HEAD if schema else _CANDLE_HEAD
    syms, exs = batch.symbols, batch.exchanges
    ns, ne = len(syms), len(exs)
    heads = _CANDLE_HEADS
    if len(heads) > 100_000:
        heads.clear()
    tail = f'"closed": {"true" if closed else "false"}, "origin": '
    ftext, itext, price = _float_text, int.__repr__, _price
    out = []
    for s, tok, st, o, h, lo, c, v, oi, n, p, y, g in zip(*batch.lists(), strict=True):
        sym = syms[s] if s < ns else str(tok)
        ex = exs[s] if s < ne else ""
        key = (hd, tok, iv, sym, ex)
        head = heads.get(key)
        if head is None:
            head = heads[key] = (f'{hd}"symbol": {_js(sym)}, "instrument_token": {tok}, '
                                 f'"exchange": {_js(ex)}, "interval": {iv}, "start": ')
        # Prices finite (as a candle's always are) are their repr, as json.dumps writes them.
        out.append(
            f'{head}{_start_text(st)}, '
            f'"open": {ftext(o) if -_INF < o < _INF else price(o)}, '
            f'"high": {ftext(h) if -_INF < h < _INF else price(h)}, '
            f'"low": {ftext(lo) if -_INF < lo < _INF else price(lo)}, '
            f'"close": {ftext(c) if -_INF < c < _INF else price(c)}, "volume": {itext(v)}, '
            f'"oi": {itext(oi) if oi >= 0 else "null"}, "ticks": {itext(n)}, '
            f'"partial": {"true" if p else "false"}, '
            f'"synthetic": {"true" if y else "false"}, {tail}{_ORIGIN_TEXT[g]}}}\n'
        )
    return out


_CANDLE_HEADS: dict[tuple[str, int, str, str, str], str] = {}


_CANDLE_HEAD = '{"type": "candle", '
_CANDLE_SCHEMA_HEAD = f'{{"type": "candle", "schema": {STATUS_SCHEMA}, '
_ORIGIN_TEXT = tuple(json.dumps(o) for o in ORIGINS)
_STARTS: dict[float, str] = {}  # a start's text, made once (a few hundred distinct a day)


def _start_text(start: float) -> str:
    text = _STARTS.get(start)
    if text is None:
        if len(_STARTS) > 100_000:
            _STARTS.clear()
        text = _STARTS[start] = _js(iso(start))
    return text


def _price(v: float | int) -> str:
    return _float_text(v) if type(v) is float and -_INF < v < _INF else _num(v)


def _flag(v: bool) -> str:
    return "true" if v is True else "false" if v is False else _num(v)


def status_line(st: LiveStatus) -> str:
    # In pieces, as json.dumps writes it: at 9000 symbols one call would hold the GIL, and so
    # the receiving thread, for tens of milliseconds.
    return dumps_in_pieces({"type": "status", **st.to_json_dict()}) + "\n"


class TickLines:
    """The tick lines of decoded frames: what `--jsonl` writes and NATS messages carry.

    `instruments()` gives the session's {token: instrument} now (instruments may be added while
    streaming); `schema` puts the schema version in each line (the NATS messages).
    """

    def __init__(self, instruments: Callable[[], Mapping[int, Any]], *,
                 schema: bool = False) -> None:
        self._instruments = instruments
        self._type = (f'{{"type": "tick", "schema": {STATUS_SCHEMA}, ' if schema
                      else '{"type": "tick", ')
        self._heads: dict[int, tuple[Any, str]] = {}  # per token: (instrument, line's start)

    def lines(self, frame: Any, received_at: float) -> list[str]:
        """The frame's tick lines, exactly as `json.dumps` writes them, several times faster
        (the lines of a busy feed are the output's whole cost): each token's fixed part and
        each distinct timestamp are formatted once."""
        names = self._instruments()
        heads = self._heads
        stamps: dict[int, str] = {}
        got = _js(iso(received_at))
        n = len(frame)
        if not n:
            return []
        # Column-wise, as `frame.ticks()` would make each Tick, without making them: the
        # values (and so the lines) are the same, at a third of the cost.
        toks = frame.token.tolist()
        modes = frame.mode
        price_col, close_col = frame.last_price, frame.column("close")
        px = price_col.tolist()
        vol = frame.column("volume_traded").tolist()
        hi = frame.column("high").tolist()
        lo = frame.column("low").tolist()
        cl = close_col.tolist()
        chg = change_pct_column(price_col, close_col)  # for the whole frame at once
        oi = frame.column("oi").tolist()
        ets = frame.exchange_timestamp.tolist()
        ftext, itext = _float_text, int.__repr__
        out = []
        for i in range(n):
            tok = toks[i]
            inst = names.get(tok)
            cached = heads.get(tok)
            if cached is not None and cached[0] is inst:
                head = cached[1]
            else:
                symbol = inst.tradingsymbol if inst else str(tok)
                exchange = _js(inst.exchange) if inst else "null"
                head = (f'{self._type}"symbol": {_js(symbol)}, "exchange": {exchange}, '
                        f'"instrument_token": {tok}, "last_price": ')
                heads[tok] = (inst, head)
            e = ets[i]
            if e > 0:
                stamp = stamps.get(e)
                if stamp is None:
                    stamp = stamps[e] = _js(iso(float(e)))
            else:
                stamp = "null"
            mode = modes[i]
            price = px[i]
            v, o = vol[i], oi[i]
            if mode == "ltp":
                high = low = change = "null"
            else:
                # Floats, finite but for a missing field's NaN (quotients of integers): their
                # text is their repr, inline (a call per field was a third of the line's cost).
                h, lw, c = hi[i], lo[i], cl[i]
                high = ftext(h) if h == h else "NaN"
                low = ftext(lw) if lw == lw else "NaN"
                change = ftext(chg[i]) if c and c == c else ("null" if not c else "NaN")
            # Prices are quotients of integers (always finite) and volume and oi are ints:
            # their text is their repr, as json.dumps writes it.
            out.append(
                f'{head}{ftext(price)}, "volume_traded": {itext(v) if v >= 0 else "null"}, '
                f'"exchange_timestamp": {stamp}, "received_at": {got}, "oi": '
                f'{itext(o) if o >= 0 else "null"}, "day_high": {high}, "day_low": {low}, '
                f'"change_pct": {change}, "mode": "{mode}"}}\n'
            )
        return out


_js = json.dumps  # strings exactly as json.dumps writes them
_float_text = float.__repr__


def _num(v: float | int | None) -> str:
    """A number (or None) exactly as json.dumps writes it."""
    if v is None:
        return "null"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (_INF, -_INF):
            return "Infinity" if v > 0 else "-Infinity"
        return _float_text(v)
    return int.__repr__(v)


_INF = float("inf")


def _silence(out: IO[str]) -> None:
    """Point `out`'s file descriptor at /dev/null: what is still buffered can be flushed
    (at exit, by the interpreter) without another broken-pipe error."""
    try:
        fd = out.fileno()
    except (OSError, ValueError, AttributeError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
