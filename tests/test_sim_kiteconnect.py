"""Zerodha's official KiteTicker against the stand-in, each client in its own process.

A Twisted reactor cannot be restarted in a process, so every probe runs tests/kite_client_probe.py
in a subprocess with a timeout and reads one JSON line of what kiteconnect parsed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from livecli.sim import StandIn

PROBE = Path(__file__).with_name("kite_client_probe.py")
RELIANCE, INFY, SBIN, NIFTY, NIFTY_BANK = 738561, 408065, 779521, 256265, 260105


def probe(cfg: dict, timeout: float = 40) -> dict:
    r = subprocess.run([sys.executable, str(PROBE), json.dumps(cfg)], capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def standin():
    with StandIn(speed=60, date="2025-12-10", seed=4) as s:
        yield s


def test_kiteticker_receives_and_parses_all_three_modes(standin):
    usd = standin.token("USDINR25DECFUT", "CDS")
    mcx = standin.token("CRUDEOIL25DECFUT", "MCX")
    out = probe(dict(ws_url=standin.ws_url, api_key=standin.api_key,
                     access_token=standin.access_token, ltp=[INFY], quote=[RELIANCE, NIFTY_BANK],
                     full=[SBIN, NIFTY, usd, mcx], seconds=20, min_per_mode=5))
    assert out["connected"] and out["errors"] == []
    assert all(out["counts"][m] >= 5 for m in ("ltp", "quote", "full"))
    by = {}
    for t in out["ticks"]:
        by.setdefault((t["instrument_token"], t["mode"]), t)
    assert set(by) >= {(INFY, "ltp"), (RELIANCE, "quote"), (NIFTY_BANK, "quote"), (SBIN, "full"),
                       (NIFTY, "full"), (usd, "full"), (mcx, "full")}
    full = by[(SBIN, "full")]
    assert full["tradable"] and len(full["depth"]["buy"]) == 5 and len(full["depth"]["sell"]) == 5
    assert full["depth"]["buy"][0]["price"] < full["depth"]["sell"][0]["price"]
    assert full["volume_traded"] > 0 and full["ohlc"]["low"] <= full["last_price"] <= full["ohlc"]["high"]
    # Exchange time is the simulated time (kiteconnect's naive datetime, turned back into epoch).
    assert abs(full["exchange_timestamp"] - standin.now()) < 600
    idx = by[(NIFTY, "full")]
    assert not idx["tradable"] and "exchange_timestamp" in idx and "volume_traded" not in idx
    q = by[(RELIANCE, "quote")]
    assert "depth" not in q and "exchange_timestamp" not in q and q["average_traded_price"] > 0
    # CDS prices use Kite's 10^7 divisor and the 0.0025 tick.
    cds = by[(usd, "full")]["last_price"]
    assert 50 < cds < 150 and round(cds / 0.0025, 6) == round(cds / 0.0025)
    assert set(by[(INFY, "ltp")]) == {"tradable", "mode", "instrument_token", "last_price"}
    # The stand-in saw kiteconnect's subscription and mode messages.
    assert standin.connections_accepted >= 1


def test_kiteticker_gets_403_on_wrong_credentials_and_on_reject_auth(standin):
    cfg = dict(ws_url=standin.ws_url, api_key=standin.api_key, access_token="expired",
               full=[SBIN], seconds=15)
    out = probe(cfg)
    assert not out["connected"] and out["ticks"] == []
    assert "403" in out["errors"][0][1]
    standin.reject_auth(True)
    try:
        out = probe(dict(cfg, access_token=standin.access_token))
    finally:
        standin.reject_auth(False)
    assert not out["connected"] and "403" in out["errors"][0][1]


def test_kiteticker_reconnects_and_resubscribes_after_a_drop(standin):
    cfg = dict(ws_url=standin.ws_url, api_key=standin.api_key, access_token=standin.access_token,
               ltp=[INFY], full=[SBIN], seconds=20, min_per_mode=10**9, stop_on_error=False,
               reconnect_max_tries=5)
    before = standin.connections_accepted
    p = subprocess.Popen([sys.executable, str(PROBE), json.dumps(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert standin.wait_for_connections(before + 1, 15)
        assert standin.wait_for_subscription([SBIN], "full", 10)
        assert standin.wait_for_subscription([INFY], "ltp", 10)
        assert standin.drop_connections() == 1
        # Twisted's backoff brings it back (about 1 s) and kiteconnect resubscribes per mode.
        assert standin.wait_for_connections(before + 2, 15)
        assert standin.wait_for_subscription([SBIN], "full", 10)
        assert standin.wait_for_subscription([INFY], "ltp", 10)
        assert standin.wait_for_clients(1, 5, exact=True)
        (info,) = standin.clients()
        assert info["tokens"] == {SBIN: "full", INFY: "ltp"}
    finally:
        p.kill()
        p.communicate(timeout=10)
