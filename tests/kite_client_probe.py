"""Run Zerodha's own KiteTicker against a ticker URL and print what it saw, as one JSON line.

A Twisted reactor cannot be restarted, so each probe is its own process (the tests run it with
a timeout). Usage: python kite_client_probe.py '<json config>' where the config has ws_url,
api_key, access_token, ltp/quote/full token lists, seconds (upper bound), min_per_mode (stop
early once every requested mode has that many ticks) and stop_on_error.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any


def _plain(v: Any) -> Any:
    if hasattr(v, "timestamp"):  # kiteconnect gives naive local datetimes; .timestamp() undoes it
        return v.timestamp()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def main() -> None:
    cfg = json.loads(sys.argv[1])
    from kiteconnect import KiteTicker

    modes = {m: list(cfg.get(m, [])) for m in ("ltp", "quote", "full")}
    tokens = [t for m in modes.values() for t in m]
    want = [m for m, toks in modes.items() if toks]
    min_per_mode = int(cfg.get("min_per_mode", 3))
    out: dict[str, Any] = {"connected": False, "errors": [], "closes": [], "ticks": [],
                           "counts": {"ltp": 0, "quote": 0, "full": 0}, "heartbeats": 0,
                           "binary_messages": 0}
    done = threading.Event()
    lock = threading.Lock()

    kt = KiteTicker(cfg["api_key"], cfg["access_token"], root=cfg["ws_url"],
                    reconnect_max_tries=int(cfg.get("reconnect_max_tries", 1)))

    def on_connect(ws: Any, response: Any) -> None:
        out["connected"] = True
        ws.subscribe(tokens)
        for m, toks in modes.items():
            if toks and m != "quote":
                ws.set_mode(m, toks)

    def on_ticks(ws: Any, ticks: list[dict[str, Any]]) -> None:
        with lock:
            for t in ticks:
                out["counts"][t["mode"]] = out["counts"].get(t["mode"], 0) + 1
                out["ticks"].append(_plain(t))
            if want and all(out["counts"][m] >= min_per_mode for m in want):
                done.set()

    def on_message(ws: Any, payload: bytes, is_binary: bool) -> None:
        with lock:
            if is_binary:
                out["binary_messages"] += 1
                if len(payload) == 1:
                    out["heartbeats"] += 1

    def on_error(ws: Any, code: Any, reason: Any) -> None:
        out["errors"].append([code, str(reason)])
        if cfg.get("stop_on_error", True):
            done.set()

    def on_close(ws: Any, code: Any, reason: Any) -> None:
        out["closes"].append([code, str(reason)])

    kt.on_connect = on_connect
    kt.on_ticks = on_ticks
    kt.on_message = on_message
    kt.on_error = on_error
    kt.on_close = on_close
    kt.connect(threaded=True)
    done.wait(float(cfg.get("seconds", 10)))
    with lock:
        sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    time.sleep(0.05)
    os._exit(0)  # the reactor thread is a daemon; skip Twisted's shutdown


if __name__ == "__main__":
    main()
