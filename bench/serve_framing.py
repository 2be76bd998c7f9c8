"""What a WebSocket message costs the server per client: uvicorn's framing vs one shared frame.

The fan-out (livecli/server/hub.py) already encodes each batch of ticks once and hands the same
text to every client; uvicorn's websockets-sansio protocol then, per client, encodes the text
to UTF-8, frames it (websockets' ServerProtocol) and joins the output. This measures that
per-client cost for one batch as the hub sends it (250 full-mode ticks, ~76 KB) beside the
baseline of a frame built once and shared by every client (what bypassing uvicorn's protocol
would buy), and says what share of a core it is at 100 clients x 100 batches/s (25,000 ticks/s).

Run: .venv/bin/python bench/serve_framing.py
"""

from __future__ import annotations

import struct
import time

from websockets.protocol import State
from websockets.server import ServerProtocol

TICK = ('{"type":"tick","schema":1,"symbol":"RELIANCE","exchange":"NSE","instrument_token":738561,'
        '"last_price":1521.95,"volume_traded":14511,"exchange_timestamp":'
        '"2025-12-10T09:18:10+05:30","received_at":"2026-12-02T07:20:36.906693+05:30","oi":0,'
        '"day_high":1525.2,"day_low":1521.15,"change_pct":0.12,"mode":"full"}')
CLIENTS = 100
ROUNDS = 50
BATCHES_PER_S = 100  # the hub flushes at most every 10 ms


def shared_frame(data: bytes) -> bytes:
    n = len(data)
    if n < 126:
        head = bytes([0x81, n])
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + data


def main() -> None:
    msg = '{"type":"ticks","schema":1,"data":[' + ",".join([TICK] * 250) + "]}"
    conns = []
    for _ in range(CLIENTS):
        p = ServerProtocol()
        p.state = State.OPEN
        conns.append(p)
    t0 = time.perf_counter()
    for _ in range(ROUNDS):
        for c in conns:  # uvicorn's websockets-sansio `websocket.send`, as it does it
            c.send_text(msg.encode())
            b"".join(c.data_to_send())
    per_client = (time.perf_counter() - t0) / (ROUNDS * CLIENTS)
    t0 = time.perf_counter()
    for _ in range(ROUNDS):
        frame = shared_frame(msg.encode())
        for _c in conns:
            _ = frame
    shared = (time.perf_counter() - t0) / (ROUNDS * CLIENTS)
    load = CLIENTS * BATCHES_PER_S
    print(f"one batch: {len(msg):,} bytes of JSON, {CLIENTS} clients")
    print(f"uvicorn's framing per client send: {per_client * 1e6:.1f} us "
          f"({per_client * load:.0%} of a core at {CLIENTS} clients x {BATCHES_PER_S}/s)")
    print(f"baseline, one frame shared: {shared * 1e6:.2f} us per client "
          f"({shared * load:.1%} of a core); framing once would save at most "
          f"{(per_client - shared) * load:.0%} of a core")


if __name__ == "__main__":
    main()
