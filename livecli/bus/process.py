"""The NATS publisher in a process of its own, so publishing costs the receiving path ~nothing.

Encoding a tick as JSON and handing it to nats-py costs ~12 us of Python; at 50,000 ticks/s
that is more than half a core, and in the session's process every microsecond of it would be
taken from the receiving path (one GIL). So the session's process only queues references and
ships them, pickled in batches (a decoded frame pickles as its raw packets: a memcpy), down a
pipe to a child process that runs `NatsPublisher` (publisher.py) with the session's encoder.

The same contract as `NatsPublisher`, whose methods these are:

* `put_ticks` / `put_candles` / `put_other` from any thread are O(1) and never wait: they append
  to a bounded queue (ticks shed and counted beyond three quarters of `buffer`, closed candles
  only when it is full); a sender thread here pickles and writes whatever is queued;
* the child stops reading the pipe while a quarter of `buffer` waits in its own queue, so when
  it falls behind, the items wait here and ticks are shed here, at admission (or when they
  have waited past `TICK_MAX_AGE_S`), before being pickled and shipped only to be shed;
* the child reports its counters four times a second; `stats()` adds what was shed here;
* `start()` raises ConnectionFailedError when the child cannot reach NATS; `close()` sends what
  waits, lets the child wait for the closed candles' acks, and joins it.

`encoder_factory` is a module-level function (picklable by name) the child calls once to make
its encoder; the encoder is the session's (livecli/session/publish.py), so this package knows
nothing of what a message says.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from livecli.bus.options import PublishOptions
from livecli.bus.publisher import CANDLE, OTHER, TICK_MAX_AGE_S, TICKS, Encoder
from livecli.bus.room import Room
from livecli.core.status import PublishStatus
from livecli.errors import ConnectionFailedError

log = logging.getLogger("livecli.bus")

SEND_BATCH = 256  # items pickled into one pipe write, at most
SEND_WEIGHT = 5000  # ... and messages (a frame counting as its ticks): ~1 MB of frames
SEND_EVERY_S = 0.01  # how often the sender looks for queued items
CHILD_NICE = 5  # the publisher's process runs this much below the session's
STATS_EVERY_S = 0.25
READ_WAIT_S = 1.0  # a pump that takes nothing this long is not waited for
_CLOSE = "close"


class ProcessPublisher:
    """`NatsPublisher`'s surface, with the publishing done in a child process."""

    def __init__(self, opts: PublishOptions, encoder_factory: Callable[[], Encoder]) -> None:
        self.opts = opts
        self._factory = encoder_factory
        self._items: deque[tuple[int, Any, int]] = deque()
        self.room = Room(opts.buffer)  # what waits here; its drops are shed before the child
        self._wake = threading.Event()
        self._closing = False
        self._child_stats = PublishStatus(url=opts.shown_url, stream=opts.stream)
        self._oldest = 0.0
        self._proc: Any = None
        self._conn: Any = None
        self._sender = threading.Thread(target=self._send_loop, name="livecli-nats-send",
                                        daemon=True)
        self._reader = threading.Thread(target=self._read_loop, name="livecli-nats-stats",
                                        daemon=True)
        self._final = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> ProcessPublisher:
        # A fresh interpreter (`python -m livecli.bus.process`), not multiprocessing: forking
        # a process with the reactor's threads is unsafe, and spawn would re-run the user's
        # script (no `if __name__ == "__main__"` guard needed in strategy code).
        down_r, down_w = os.pipe()  # parent -> child: batches
        up_r, up_w = os.pipe()  # child -> parent: stats
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "livecli.bus.process", str(down_r), str(up_w)],
            pass_fds=(down_r, up_w), env=env, stdin=subprocess.DEVNULL)
        os.close(down_r)
        os.close(up_w)
        parent = _Duplex(Connection(up_r, writable=False), Connection(down_w, readable=False))
        self._conn = parent
        parent.send((self.opts, self._factory))
        ok, why, advised = False, "the publisher's process did not start", False
        if parent.poll(30):
            try:
                ok, why, advised = parent.recv()
            except (EOFError, OSError) as exc:
                why = f"the publisher's process ended: {exc}"
        if not ok:
            self._stop_child()
            if advised:  # a whole message that names its own fix
                raise ConnectionFailedError(why)
            raise ConnectionFailedError(
                f"cannot publish to {self.opts.shown_url} ({why}): start nats-server with -js "
                "there, or fix --publish / [publish] url"
            )
        self._sender.start()
        self._reader.start()
        return self

    def close(self, timeout: float = 10.0) -> bool:
        self._closing = True
        self._wake.set()
        self._sender.join(timeout + 5)
        self._final.wait(timeout + 10)
        self._stop_child()
        st = self._child_stats
        return self._final.is_set() and st.acks_pending == 0 and st.pending == 0

    def _stop_child(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self._conn.close()

    # --- producers: O(1), never wait ---------------------------------------------------------
    def put_ticks(self, frame: Any, n: int, received_at: float) -> None:
        if self.room.ticks(n):
            self._items.append((TICKS, (frame, received_at), n))

    def put_candles(self, item: Any, n: int) -> None:
        if self.room.candles(n):
            self._items.append((CANDLE, item, n))

    def put_other(self, item: Any, weight: int = 1) -> bool:
        if not self.room.other(weight):
            return False
        self._items.append((OTHER, item, weight))
        return True

    def stats(self) -> PublishStatus:
        st = self._child_stats
        return dataclasses.replace(
            st, ticks_dropped=st.ticks_dropped + self.room.ticks_dropped,
            candles_dropped=st.candles_dropped + self.room.candles_dropped,
            pending=st.pending + self.room.held,
        )

    # --- this process's threads ----------------------------------------------------------------
    def _send_loop(self) -> None:
        items, conn = self._items, self._conn
        dumps = pickle.dumps
        # No write bigger than the child takes in while holding back (a quarter of the buffer).
        weight = max(1, min(SEND_WEIGHT, self.opts.buffer // 4))
        try:
            while True:
                # Polled, never woken by a producer: waking this thread for each frame would
                # hand it the GIL (and back) once per frame, which halved the receiving path.
                self._wake.wait(SEND_EVERY_S)
                while items:
                    batch: list[tuple[int, Any, int]] = []
                    held = 0
                    # Ticks that waited here (the child holding back) past the child's own
                    # bound would be shed there: shed them here, unpickled.
                    stale = time.time() - TICK_MAX_AGE_S
                    while items and len(batch) < SEND_BATCH and held < weight:
                        kind, item, n = items.popleft()
                        held += n
                        if kind == TICKS and item[1] < stale:
                            self.room.shed_ticks(n)
                            continue
                        batch.append((kind, item, n))
                    if batch:
                        conn.send_bytes(dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
                    self.room.release(held)
                if self._closing and not items:
                    conn.send_bytes(dumps(_CLOSE))
                    return
        except (OSError, EOFError, ValueError) as exc:  # the child died: say so, shed the rest
            self._child_stats = dataclasses.replace(
                self._child_stats, state="failed", last_error=f"publisher process: {exc}")
            while items:
                kind, _, n = items.popleft()
                if kind == TICKS:
                    self.room.shed_ticks(n)
                elif kind == CANDLE:
                    self.room.shed_candles(n)
            self._final.set()

    def _read_loop(self) -> None:
        conn = self._conn
        try:
            while True:
                msg = conn.recv()
                if isinstance(msg, PublishStatus):
                    self._child_stats = msg
                elif msg == _CLOSE:
                    self._final.set()
                    return
        except (OSError, EOFError):
            self._final.set()


class _Duplex:
    """Two one-way pipe connections as one (send down one, receive from the other)."""

    def __init__(self, rx: Connection, tx: Connection) -> None:
        self.rx, self.tx = rx, tx
        self.send, self.send_bytes = tx.send, tx.send_bytes
        self.recv, self.recv_bytes, self.poll = rx.recv, rx.recv_bytes, rx.poll

    def close(self) -> None:
        for c in (self.rx, self.tx):
            try:
                c.close()
            except OSError:
                pass


# --- the child process -------------------------------------------------------------------------
def _child_main(conn: Any) -> None:
    from livecli.bus.publisher import NatsPublisher

    if hasattr(os, "nice"):
        # Below the receiving path: when the CPU is short, publishing sheds ticks (counted),
        # the receiving path does not slow down.
        try:
            os.nice(CHILD_NICE)
        except OSError:
            pass

    opts, factory = conn.recv()

    pub = NatsPublisher(opts, factory())
    try:
        pub.start()
    except BaseException:
        conn.send((False, pub.startup_reason, pub.startup_advised))
        return
    conn.send((True, None, False))
    lock = threading.Lock()
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(STATS_EVERY_S):
            with lock:
                conn.send(pub.stats())

    threading.Thread(target=report, name="livecli-nats-report", daemon=True).start()
    loads = pickle.loads
    # Backpressure: while a quarter of the buffer waits here, the pipe is not read; it fills,
    # and the session's side holds its items and sheds ticks at admission, before pickling
    # them (ticks it would ship here only to be shed cost its receiving path). A pump that
    # takes nothing for READ_WAIT_S (NATS down, closed candles held for their acks) is not
    # waited for until it takes a batch again: meanwhile items are read and this side's room
    # sheds, as before.
    read_below = opts.buffer // 4
    stuck_at: int | None = None  # pub.batches_taken when the pump was found stuck
    try:
        while True:
            if stuck_at is not None and pub.batches_taken != stuck_at:
                stuck_at = None
            if stuck_at is None and not pub.wait_below(read_below, READ_WAIT_S):
                stuck_at = pub.batches_taken
            batch = loads(conn.recv_bytes())
            if batch == _CLOSE:
                break
            for kind, item, n in batch:
                if kind == TICKS:
                    frame, at = item
                    pub.put_ticks(frame, n, at)
                elif kind == CANDLE:
                    pub.put_candles(item, n)
                else:
                    pub.put_other(item, n)
    except (EOFError, OSError):
        pass  # the session's process went away: send what is here, then stop
    pub.close()
    stop.set()
    with lock:
        try:
            conn.send(pub.stats())
            conn.send(_CLOSE)
        except OSError:
            pass
    time.sleep(0.05)


if __name__ == "__main__":
    _down, _up = (int(a) for a in sys.argv[1:3])
    _child_main(_Duplex(Connection(_down, writable=False), Connection(_up, readable=False)))
