"""The stand-in's REST API through Zerodha's own KiteConnect client, over loopback HTTP."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time as time_mod
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
import requests

from livecli.core.sessions import session_for
from livecli.core.timeutil import IST, at_ist, day_of
from livecli.sim import StandIn
from livecli.sim.universe import CSV_COLUMNS
from tests.sim_client import SimClient

MOCKS = Path(__file__).resolve().parents[2] / "shared" / "kite-mocks"
DATE = date(2025, 12, 10)
RELIANCE, NIFTY = 738561, 256265


@pytest.fixture(scope="module")
def standin():
    with StandIn(speed=600, date=DATE.isoformat(), seed=3) as s:
        yield s


@pytest.fixture
def kite(standin):
    from kiteconnect import KiteConnect

    return KiteConnect(standin.api_key, standin.access_token, root=standin.api_url, timeout=20)


def test_instruments_all_and_per_exchange(kite, standin):
    everything = kite.instruments()
    assert len(everything) == len(standin.instruments)
    assert {r["exchange"] for r in everything} == {"NSE", "NFO", "CDS", "MCX"}
    nse = kite.instruments("NSE")
    assert {r["exchange"] for r in nse} == {"NSE"}
    rel = next(r for r in nse if r["tradingsymbol"] == "RELIANCE")
    assert rel["instrument_token"] == RELIANCE and rel["tick_size"] == 0.05 and rel["lot_size"] == 1
    nifty = next(r for r in nse if r["tradingsymbol"] == "NIFTY 50")
    assert nifty["segment"] == "INDICES" and nifty["instrument_token"] == NIFTY
    fut = kite.instruments("NFO")[0]
    assert isinstance(fut["expiry"], date) and fut["instrument_type"] == "FUT"
    raw = requests.get(standin.api_url + "/instruments/MCX", timeout=10)
    assert raw.headers["content-type"] == "text/csv"
    assert tuple(next(csv.reader(io.StringIO(raw.text)))) == CSV_COLUMNS


def test_instrument_csv_header_is_the_kite_mock_header(standin):
    if not MOCKS.is_dir():
        pytest.skip("../shared/kite-mocks is absent (a user's clone has none)")
    mock_header = (MOCKS / "instruments_nse.csv").read_text().splitlines()[0]
    assert requests.get(standin.api_url + "/instruments/NSE", timeout=10).text.splitlines()[0] == mock_header


def test_historical_minute_candles_of_previous_days_and_today(kite, standin):
    prev = DATE - timedelta(days=1)
    rows = kite.historical_data(RELIANCE, f"{prev} 09:15:00", f"{prev} 15:30:00", "minute")
    assert len(rows) == 375
    assert rows[0]["date"] == datetime.combine(prev, time(9, 15), IST)
    assert rows[-1]["date"] == datetime.combine(prev, time(15, 29), IST)
    assert all(r["low"] <= min(r["open"], r["close"]) <= max(r["open"], r["close"]) <= r["high"]
               for r in rows)
    # Five previous trading days (and the weekend between) are served.
    week = kite.historical_data(RELIANCE, DATE - timedelta(days=8), DATE - timedelta(days=1), "day")
    assert [r["date"].date() for r in week] == [
        date(2025, 12, d) for d in (2, 3, 4, 5, 8, 9)]
    assert all(r["date"].time() == time(0, 0) for r in week)
    # Today runs up to the simulated now and no further.
    today = kite.historical_data(RELIANCE, f"{DATE} 09:00:00", f"{DATE} 23:59:59", "minute")
    assert today and today[-1]["date"].timestamp() <= standin.now()
    assert today[0]["date"] == datetime.combine(DATE, time(9, 15), IST)


def test_raw_historical_json_is_kites_shape(standin):
    if not MOCKS.is_dir():
        pytest.skip("../shared/kite-mocks is absent (a user's clone has none)")
    mock = json.loads((MOCKS / "historical_minute.json").read_text())
    r = requests.get(
        f"{standin.api_url}/instruments/historical/{RELIANCE}/minute",
        params={"from": "2025-12-09 09:15:00", "to": "2025-12-09 09:20:00"},
        headers={"Authorization": f"token {standin.api_key}:{standin.access_token}"}, timeout=20)
    body = r.json()
    assert body.keys() == mock.keys() and body["data"].keys() == mock["data"].keys()
    assert len(body["data"]["candles"]) == 6  # 09:15 .. 09:20, both ends included
    first, ref = body["data"]["candles"][0], mock["data"]["candles"][0]
    assert len(first) == len(ref) == 6
    assert first[0] == "2025-12-09T09:15:00+0530" and ref[0].endswith("T09:15:00+0530")
    assert all(isinstance(x, int | float) for x in first[1:])


def test_historical_intervals_and_open_interest(kite, standin):
    day = DATE - timedelta(days=1)
    one = kite.historical_data(RELIANCE, f"{day} 09:15:00", f"{day} 15:30:00", "minute")
    for name, minutes, count in (("5minute", 5, 75), ("10minute", 10, 38), ("60minute", 60, 7)):
        rows = kite.historical_data(RELIANCE, f"{day} 09:15:00", f"{day} 15:30:00", name)
        assert len(rows) == count, name
        assert rows[1]["date"] - rows[0]["date"] == timedelta(minutes=minutes)
        assert sum(r["volume"] for r in rows) == sum(r["volume"] for r in one)
        assert rows[-1]["close"] == one[-1]["close"]
    sixty = kite.historical_data(RELIANCE, f"{day} 09:15:00", f"{day} 15:30:00", "60minute")
    assert [r["date"].strftime("%H:%M") for r in sixty][:2] == ["09:15", "10:15"]  # 09:15 anchor
    fut = standin.token("NIFTY25DECFUT", "NFO")
    with_oi = kite.historical_data(fut, f"{day} 09:15:00", f"{day} 09:30:00", "minute", oi=True)
    assert all(r["oi"] > 0 for r in with_oi)
    idx = kite.historical_data(NIFTY, f"{day} 09:15:00", f"{day} 09:30:00", "minute")
    assert idx and all(r["volume"] == 0 for r in idx)


def test_historical_errors_have_kites_shape(kite, standin):
    from kiteconnect import exceptions as kex

    with pytest.raises(kex.InputException):
        kite.historical_data(RELIANCE, "2025-12-09", "2025-12-09", "7minute")
    with pytest.raises(kex.InputException):
        kite.historical_data(123, "2025-12-09", "2025-12-09", "minute")
    r = requests.get(f"{standin.api_url}/instruments/historical/{RELIANCE}/minute",
                     params={"from": "2025-12-09", "to": "2025-12-09"},
                     headers={"Authorization": "token nope:nope"}, timeout=10)
    assert r.status_code == 403
    assert r.json() == {"status": "error", "message": "Incorrect `api_key` or `access_token`.",
                        "data": None, "error_type": "TokenException"}
    assert requests.get(standin.api_url + "/nowhere", timeout=10).status_code == 404


def test_generate_session_checks_the_checksum(standin):
    from kiteconnect import KiteConnect
    from kiteconnect import exceptions as kex

    k = KiteConnect(standin.api_key, root=standin.api_url)
    sess = k.generate_session("any-request-token", standin.api_secret)
    assert sess["access_token"] == standin.access_token
    assert k.access_token == standin.access_token
    if MOCKS.is_dir():
        mock = json.loads((MOCKS / "generate_session.json").read_text())["data"]
        assert set(mock) <= set(sess)
    with pytest.raises(kex.TokenException) as e:
        KiteConnect(standin.api_key, root=standin.api_url).generate_session("x", "wrong-secret")
    assert e.value.code == 403
    # The checksum is the one Kite documents.
    body = {"api_key": standin.api_key, "request_token": "r1",
            "checksum": hashlib.sha256(f"{standin.api_key}r1{standin.api_secret}".encode()).hexdigest()}
    assert requests.post(standin.api_url + "/session/token", data=body, timeout=10).status_code == 200


def test_profile_needs_the_right_token_and_reject_auth(kite, standin):
    from kiteconnect import KiteConnect
    from kiteconnect import exceptions as kex

    assert kite.profile()["user_id"]
    with pytest.raises(kex.TokenException):
        KiteConnect(standin.api_key, "wrong", root=standin.api_url).profile()
    standin.reject_auth(True)
    try:
        with pytest.raises(kex.TokenException):
            kite.profile()
    finally:
        standin.reject_auth(False)
    if MOCKS.is_dir():
        mock = json.loads((MOCKS / "profile.json").read_text())["data"]
        assert set(kite.profile()) == set(mock)


def test_login_page_redirects_with_a_request_token(standin):
    r = requests.get(standin.api_url + "/connect/login",
                     params={"api_key": standin.api_key, "v": "3",
                             "redirect_url": "http://127.0.0.1:9/cb"},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("http://127.0.0.1:9/cb?")
    assert "request_token=" in r.headers["Location"]


def test_history_agrees_with_the_ticks_the_ticker_sent():
    """Minute candles from the historical endpoint equal candles rebuilt from received ticks."""
    from kiteconnect import KiteConnect

    from livecli.core.batch import rebuild

    gangotri = 3419393
    tokens = [RELIANCE, NIFTY, gangotri]
    with StandIn(speed=600, date=DATE.isoformat(), seed=11) as s:
        with SimClient(s.ws_url, s.api_key, s.access_token) as c:
            c.subscribe(tokens, "full")
            c.collect(3.0)  # about 30 simulated minutes
        cols = c.got.columns()
        names = {t: (s.market.instrument(t).tradingsymbol, "NSE") for t in tokens}
        live = rebuild(cols, ["1min"], names)
        k = KiteConnect(s.api_key, s.access_token, root=s.api_url)
        for tok in tokens:
            mine = [x for x in live if x.instrument_token == tok]
            ticks_t = [t for t, tk in zip(cols.time, cols.token, strict=True) if tk == tok]
            first, last = min(ticks_t), max(ticks_t)
            # Minutes wholly inside what the client received (after its first tick's minute).
            covered = [x for x in mine if x.start > first and x.start + 60 <= last]
            assert len(covered) >= (5 if tok == gangotri else 15), tok
            hist = k.historical_data(tok, f"{DATE} 09:15:00", f"{DATE} 15:30:00", "minute")
            by_start = {int(r["date"].timestamp()): r for r in hist}
            for x in covered:
                r = by_start[x.start]
                assert (r["open"], r["high"], r["low"], r["close"], r["volume"]) == (
                    x.open, x.high, x.low, x.close, x.volume), (tok, x.start)
        # And the model's own ticks for the day give the same volume as history up to now.
        last = max(t for t, tk in zip(cols.time, cols.token, strict=True) if tk == RELIANCE)
        blk = s.market.day_ticks(RELIANCE, day_of(DATE), until=last)
        hist = k.historical_data(RELIANCE, f"{DATE} 09:15:00", f"{DATE} 15:30:00", "minute")
        upto = [r for r in hist if r["date"].timestamp() + 60 <= last]
        assert sum(r["volume"] for r in upto) == int(
            blk.volume[(blk.time_ms // 1000) < upto[-1]["date"].timestamp() + 60][-1])
        assert session_for("NSE").open_at(day_of(DATE)) == at_ist(DATE, time(9, 15))


def test_history_rate_limit_answers_429_like_kite():
    from kiteconnect import KiteConnect
    from kiteconnect import exceptions as kex

    with StandIn(speed=60, date=DATE.isoformat(), history_rate_limit=3) as s:
        k = KiteConnect(s.api_key, s.access_token, root=s.api_url)
        codes = []
        t0 = time_mod.monotonic()
        for _ in range(5):
            try:
                k.historical_data(RELIANCE, f"{DATE} 09:15:00", f"{DATE} 09:20:00", "minute")
                codes.append(200)
            except kex.NetworkException as e:
                codes.append(e.code)
        if time_mod.monotonic() - t0 < 1.0:  # all five inside one second (the normal case)
            assert codes == [200, 200, 200, 429, 429]
        else:
            assert codes[:3] == [200, 200, 200]
