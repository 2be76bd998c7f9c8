"""A real `nats-server -js` for the NATS tests: a free loopback port, a tmp store, stopped after.

The Debian package `nats-server` provides the binary (`.ci/run` installs it when missing);
where it is absent the tests skip, saying so. `restart()` keeps the port and the store folder,
as a server restarted by its operator does.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

BINARY = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)
needs_nats = pytest.mark.skipif(
    BINARY is None, reason="nats-server is not installed (apt-get install nats-server)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NatsServer:
        assert BINARY is not None
        self.proc = subprocess.Popen(
            [BINARY, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return self
            except OSError:
                assert self.proc.poll() is None, "nats-server exited at start"
                time.sleep(0.05)
        raise AssertionError("nats-server did not listen within 15 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)  # the feed goes on without its server for a while
        self.start()


@pytest.fixture
def nats_server(tmp_path: Path):
    if BINARY is None:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    srv = NatsServer(tmp_path / "jetstream").start()
    try:
        yield srv
    finally:
        srv.stop()


def read_stream(url: str, subject: str = "livecli.>", stream: str = "LIVECLI",
                timeout: float = 30) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """Every message the stream holds on `subject`: (subject, JSON, headers), in order."""
    async def main() -> list[tuple[str, dict[str, Any], dict[str, str]]]:
        import nats

        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            last = info.state.last_seq
            out: list[tuple[str, dict[str, Any], dict[str, str]]] = []
            if not info.state.messages:
                return out
            sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    msg = await sub.next_msg(timeout=2)
                except Exception:
                    break
                out.append((msg.subject, json.loads(msg.data), dict(msg.headers or {})))
                if msg.metadata.sequence.stream >= last:
                    break
            await sub.unsubscribe()
            return out
        finally:
            await nc.close()

    return asyncio.run(main())


def closed_candle_key(d: dict[str, Any]) -> tuple[int, str, str]:
    return (d["instrument_token"], d["interval"], d["start"])
