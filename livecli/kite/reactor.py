"""One Twisted reactor per process, running in a daemon thread and never stopped.

kiteconnect's KiteTicker runs on Twisted. A Twisted reactor cannot start again once stopped
(`ReactorNotRestartable`), so if a connection stopped the reactor, no later connection in the
same process could ever run. livecli therefore starts the reactor once, on first use, and
leaves it running until the process exits; every ticker connection shares it and ends with
`close()`, never with `KiteTicker.stop()`.

Twisted is not thread-safe: everything that touches a connection must run on the reactor
thread. `call()` marshals a call there; `in_reactor_thread()` tells callbacks where they are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from livecli.errors import ConnectionFailedError

_lock = threading.Lock()
_thread: threading.Thread | None = None
_thread_ident: int | None = None
_START_TIMEOUT_S = 10.0


def get_reactor() -> Any:
    """The process's Twisted reactor, started in a daemon thread if it is not running yet."""
    global _thread
    from twisted.internet import reactor as installed  # heavy: only when a connection is made

    reactor: Any = installed  # Twisted types it as a module; it is the running reactor

    with _lock:
        if _thread is not None and _thread.is_alive() and reactor.running:
            return reactor
        if reactor.running and _thread is None:
            # Someone else (e.g. KiteTicker.connect(threaded=True)) already runs it: share it.
            _adopt_running(reactor)
            return reactor
        if getattr(reactor, "_startedBefore", False):
            raise ConnectionFailedError(
                "the Twisted reactor was stopped earlier in this process and cannot restart; "
                "start a new process"
            )
        started = threading.Event()
        reactor.callWhenRunning(_mark_started, started)
        thread = threading.Thread(
            target=reactor.run,
            kwargs={"installSignalHandlers": False},  # signals only work on the main thread
            name="livecli-reactor",
            daemon=True,  # never blocks interpreter exit
        )
        thread.start()
        if not started.wait(_START_TIMEOUT_S):
            raise ConnectionFailedError(
                "the network event loop (Twisted reactor) did not start; restart the process"
            )
        _thread = thread
        return reactor


def _mark_started(started: threading.Event) -> None:
    global _thread_ident
    _thread_ident = threading.get_ident()
    started.set()


def _adopt_running(reactor: Any) -> None:
    """Learn the thread of a reactor somebody else started, so `in_reactor_thread` works."""
    done = threading.Event()

    def learn() -> None:
        global _thread_ident
        _thread_ident = threading.get_ident()
        done.set()

    reactor.callFromThread(learn)
    done.wait(_START_TIMEOUT_S)


def in_reactor_thread() -> bool:
    """True when the caller runs on the reactor thread (inside a connection callback)."""
    return _thread_ident is not None and threading.get_ident() == _thread_ident


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Queue `fn(*args, **kwargs)` on the reactor thread.

    Always queued, even from the reactor thread itself, so a callback that closes or drops its
    own connection never re-enters the protocol code that is calling it.
    """
    get_reactor().callFromThread(fn, *args, **kwargs)
