"""`livecli serve`'s engine: the auth policy, the socket, the session and uvicorn, in order.

Everything that can refuse is decided before anything is served: the API key (a non-loopback
bind without a usable key stops here), the port (bound by us, so "in use" is one clear line),
then the session's start when symbols were given (an unknown symbol exits 7 before any client
could connect). uvicorn then serves on the main thread and owns SIGINT/SIGTERM (SIGHUP is sent
the same way); when it returns, however it stopped, the session is stopped here, with the
stream's guarantees: every closed candle written, the forming ones stored as not closed.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livecli.errors import LivecliError, UsageError
from livecli.server.auth import AuthPolicy, policy_for

log = logging.getLogger("livecli.server")

# Each client's kernel send buffer (accepted sockets inherit it from the listening one). Left to
# autotuning, a client that stops reading hides up to 4 MB in the kernel before its queue even
# starts to fill: bounded, a stalled client is noticed within about a second of a busy feed and
# costs bounded memory. 512 KiB (Linux doubles it) still carries hundreds of MB/s on loopback
# and ~50 MB/s to a client 20 ms away.
SEND_BUFFER_BYTES = 512 * 1024


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    symbols: tuple[str, ...] = ()
    exchange: str = "NSE"
    mode: str = "full"
    duration: float | None = None
    require_key: bool = False
    cors_origins: tuple[str, ...] = ()
    client_queue: int = 256


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on host:port; UsageError naming the fix when it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise UsageError(f"cannot bind {host!r}: not an address or host name of this machine; "
                         "use e.g. --host 127.0.0.1") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        sock.bind(addr)
        sock.listen(2048)  # connections made from now on wait for uvicorn to accept them
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use: pass --port with another one, "
                             "or --port 0 for any free port") from None
        if exc.errno == errno.EACCES:
            raise UsageError(f"port {port} needs privileges: use a port above 1023") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise UsageError(f"{host} is not an address of this machine: use e.g. --host "
                             "127.0.0.1") from None
        raise UsageError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class ServeRunner:
    """One `livecli serve` run. `run()` blocks until the server stops; returns the reason."""

    def __init__(self, session: Any, settings: Any, opts: ServeOptions) -> None:
        self.session = session
        self.settings = settings
        self.opts = opts
        self.reason = "stopped"
        self.url: str | None = None
        self.auth = AuthPolicy()
        self._server: Any = None

    def prepare(self) -> socket.socket:
        """Decide auth and bind; nothing is served yet (errors here exit before any start)."""
        self.auth = policy_for(self.opts.host, self.settings.data_dir,
                               require=self.opts.require_key)
        sock = bind(self.opts.host, self.opts.port)
        self.url = url_of(sock)
        return sock

    def run(self, announce: Any = None) -> str:
        import uvicorn

        from livecli.server.app import ServerContext, create_app
        from livecli.server.control import SessionControl
        from livecli.server.hub import Hub
        from livecli.server.tap import Inbox, attach

        sock = self.prepare()
        served: Path | None = None
        try:
            inbox = Inbox()
            attach(self.session, inbox)  # before start: no frame is missed
            hub = Hub(self.session, inbox, queue_size=self.opts.client_queue)
            control = SessionControl(self.session, hub)
            if self.opts.symbols:
                self.session.start(list(self.opts.symbols), exchange=self.opts.exchange,
                                   mode=self.opts.mode)
                control.watch()
            served = self._record_served()
            ctx = ServerContext(self.session, hub, control, self.auth, self.opts.cors_origins,
                                self.settings)
            config = uvicorn.Config(
                create_app(ctx), lifespan="on", log_config=None, log_level="warning",
                access_log=False, ws="websockets-sansio", ws_per_message_deflate=False,
                ws_max_size=1 << 20, ws_ping_interval=20.0, ws_ping_timeout=20.0,
                timeout_graceful_shutdown=3, server_header=False, proxy_headers=False,
            )
            self._server = server = uvicorn.Server(config)
            self._signals(server)  # before the announcement: a signal right after it counts
            if announce is not None:
                announce(self)
            timer = None
            if self.opts.duration is not None:
                timer = threading.Timer(self.opts.duration, self._timeout)
                timer.daemon = True
                timer.start()
            try:
                server.run(sockets=[sock])
            except SystemExit as exc:  # uvicorn's own start-up failure: not a livecli code
                raise RuntimeError(f"the server could not start (uvicorn exit {exc.code})") from None
            finally:
                if timer is not None:
                    timer.cancel()
                control.close()
        finally:
            sock.close()
            self.session.stop(self.reason)
            if served is not None:
                from livecli.store.served import clear_served

                clear_served(served)
        return self.reason

    def _record_served(self) -> Path | None:
        """Record this server's URL in its store, so `livecli stream` and `status` on that
        store attach to it (livecli.store.served); the store it returns is cleared at exit.
        Not when another process writes the store: attaching here would lead to a session
        that cannot start."""
        from livecli.store.owner import holder_of
        from livecli.store.served import record_served

        db = getattr(self.session, "db_path", None)
        if db is None or self.url is None:
            return None
        holder = holder_of(db)
        if holder is not None and holder.pid != os.getpid():
            log.warning("the store %s is written by another livecli (%s): this server does not "
                        "record itself there, so nobody attaches to it by the store",
                        db, holder.describe())
            return None
        try:
            record_served(db, self.url, create_folder=getattr(self.session, "_db_default",
                                                                   False))
        except LivecliError as exc:
            log.warning("cannot record this server in the store %s: %s", db, exc)
            return None
        return Path(db)

    def shutdown(self, reason: str = "stopped") -> None:
        """Ask a running server to stop (from any thread); `run()` then returns."""
        self.reason = reason
        if self._server is not None:
            self._server.should_exit = True

    def _timeout(self) -> None:
        self.reason = f"stopped after {self.opts.duration:g} s (--duration)"
        if self._server is not None:
            self._server.should_exit = True

    def _signals(self, server: Any) -> None:
        """uvicorn handles SIGINT/SIGTERM while it serves and re-raises them once it has
        stopped: these handlers only note why, so the run ends with exit 0 like `stream`."""
        if threading.current_thread() is not threading.main_thread():
            return

        def noted(_signum: int, _frame: Any) -> None:
            self.reason = "stopped by signal"
            server.should_exit = True  # came before uvicorn took the signals: it stops at once

        def hangup(_signum: int, frame: Any) -> None:
            self.reason = "stopped by signal"
            server.handle_exit(signal.SIGTERM, frame)

        signal.signal(signal.SIGINT, noted)
        signal.signal(signal.SIGTERM, noted)
        if hasattr(signal, "SIGHUP") and sys.platform != "win32":
            signal.signal(signal.SIGHUP, hangup)
