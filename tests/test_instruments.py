"""The instrument master against the local Kite stand-in: symbol forms, close matches, the daily
cache (reused all day, stale after the 08:30 IST publication), errors, and `livecli instruments`."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import date, time
from pathlib import Path

import pytest

from livecli.core.timeutil import DAY_S, at_ist
from livecli.errors import AuthError, KiteApiError, SymbolError
from livecli.kite.instruments import InstrumentMaster, is_fresh, last_publication, parse_symbol
from tests.conftest import hermetic_env

StandIn = pytest.importorskip("livecli.sim").StandIn

API_KEY, TOKEN, SECRET = "livecli-sim", "sim-access-token", "sim-secret"
DAY = date(2025, 12, 10)  # a Wednesday
T_1000 = at_ist(DAY, time(10, 0))


class Clock:
    """A settable clock: the master's idea of "now" (the cache's freshness depends on it)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def sim():
    with StandIn(api_key=API_KEY, access_token=TOKEN, api_secret=SECRET, seed=1, speed=60) as s:
        yield s


def master(api_url: str, cache: Path, now: float = T_1000, token: str = TOKEN) -> InstrumentMaster:
    return InstrumentMaster(API_KEY, token, api_url, cache, clock=Clock(now))


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- pure parts ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RELIANCE", ("NSE", "RELIANCE")),
        ("reliance", ("NSE", "RELIANCE")),
        ("NSE:RELIANCE", ("NSE", "RELIANCE")),
        (" nfo:nifty25decfut ", ("NFO", "NIFTY25DECFUT")),
        ("NSE:NIFTY 50", ("NSE", "NIFTY 50")),
        ("NSE:NIFTY  50", ("NSE", "NIFTY 50")),
    ],
)
def test_parse_symbol_forms(text, expected):
    assert parse_symbol(text) == expected


def test_parse_symbol_default_exchange_and_errors():
    assert parse_symbol("GOLD", "MCX") == ("MCX", "GOLD")
    for bad in ("", "NSE:", ":RELIANCE"):
        with pytest.raises(SymbolError, match="incomplete"):
            parse_symbol(bad)
    with pytest.raises(SymbolError, match="unknown exchange 'XYZ'"):
        parse_symbol("XYZ:ABC")


def test_publication_boundary_is_0830_ist():
    t0829, t0831 = at_ist(DAY, time(8, 29)), at_ist(DAY, time(8, 31))
    assert last_publication(t0831) == at_ist(DAY, time(8, 30))
    assert last_publication(t0829) == at_ist(DAY, time(8, 30)) - DAY_S
    fetched_0700 = at_ist(DAY, time(7, 0))
    assert is_fresh(fetched_0700, t0829) and not is_fresh(fetched_0700, t0831)
    assert is_fresh(T_1000, T_1000 + 22 * 3600)  # 08:00 next day: no new dump yet
    assert not is_fresh(T_1000, T_1000 + 22 * 3600 + 40 * 60)  # 08:40 next day


# --- against the stand-in ------------------------------------------------------------------
def test_resolve_symbol_forms(sim, tmp_path):
    m = master(sim.api_url, tmp_path)
    nfo_future = next(i for i in m.load("NFO") if i.instrument_type == "FUT" and i.name == "NIFTY")
    got = m.resolve(
        ["RELIANCE", "NSE:INFY", "NSE:NIFTY 50", "nse:nifty 50", f"NFO:{nfo_future.tradingsymbol}"]
    )
    assert [i.key for i in got] == ["NSE:RELIANCE", "NSE:INFY", "NSE:NIFTY 50", nfo_future.key]
    reliance, infy, nifty, fut = got
    assert reliance.instrument_token == 738561 and infy.instrument_token == 408065
    assert nifty.instrument_token == 256265 and nifty.segment == "INDICES" and nifty.is_index
    assert nifty.exchange == "NSE"
    assert fut.exchange == "NFO" and fut.expiry is not None and fut.lot_size > 0
    assert m.resolve(["INDICES:NIFTY 50"]) == [nifty]
    assert m.resolve(["INFY"], default_exchange="NSE") == [infy]


def test_unknown_symbols_name_closest_matches(sim, tmp_path):
    m = master(sim.api_url, tmp_path)
    with pytest.raises(SymbolError) as info:
        m.resolve(["RELIANCE", "RELIANC", "NSE:INFYY"])
    msg = str(info.value)
    assert "unknown symbol NSE:RELIANC (closest: NSE:RELIANCE" in msg
    assert "unknown symbol NSE:INFYY (closest: NSE:INFY" in msg
    assert "livecli instruments --exchange NSE" in msg and "\n" not in msg


def test_unknown_exchange_fails_before_any_request(tmp_path):
    m = master(closed_port_url(), tmp_path)
    with pytest.raises(SymbolError, match="unknown exchange"):
        m.resolve(["XYZ:ABC"])
    assert m.fetches == 0


def test_search_ranks_symbol_matches_before_name_matches(sim, tmp_path):
    m = master(sim.api_url, tmp_path)
    hits = m.search("reli", "NSE")
    assert hits[0].tradingsymbol == "RELIANCE"
    by_name = m.search("bank of", "NSE")
    assert {"SBIN", "BANKBARODA"} <= {i.tradingsymbol for i in by_name}
    assert len(m.search("", "NSE", limit=3)) == 3


def test_cache_reused_all_day_then_stale_after_0830_next_day(tmp_path):
    cache = tmp_path / "cache"
    with StandIn(api_key=API_KEY, access_token=TOKEN, api_secret=SECRET, seed=1, speed=60) as s:
        api_url = s.api_url
        first = master(api_url, cache, T_1000)
        nse = first.load("NSE")
        assert first.fetches == 1 and (cache / "NSE.json").is_file()
    # The stand-in is gone: anything served now comes from the cache.
    later_today = master(api_url, cache, T_1000 + 5 * 3600)
    assert later_today.load("NSE") == nse and later_today.fetches == 0
    before_publication = master(api_url, cache, at_ist(date(2025, 12, 11), time(8, 29)))
    assert before_publication.resolve(["RELIANCE"])[0].instrument_token == 738561
    assert before_publication.fetches == 0
    # After the next morning's 08:30 IST the cache is stale: the master must go to the server.
    after_publication = master(api_url, cache, at_ist(date(2025, 12, 11), time(8, 31)))
    with pytest.raises(KiteApiError, match="cannot reach"):
        after_publication.load("NSE")
    # A cache made from another API root (real Kite vs the stand-in) is never reused.
    elsewhere = master(closed_port_url(), cache, T_1000 + 60)
    with pytest.raises(KiteApiError):
        elsewhere.load("NSE")


def test_in_memory_table_goes_stale_with_the_clock(sim, tmp_path):
    m = master(sim.api_url, tmp_path)
    m.load("NSE")
    m.load("NSE")
    assert m.fetches == 1
    m.clock.now = at_ist(date(2025, 12, 11), time(9, 0))  # type: ignore[attr-defined]
    m.load("NSE")
    assert m.fetches == 2
    m.load("NSE", refresh=True)
    assert m.fetches == 3


def test_unreachable_api_is_one_line_kite_api_error(tmp_path):
    url = closed_port_url()
    with pytest.raises(KiteApiError) as info:
        master(url, tmp_path).load("NSE")
    msg = str(info.value)
    assert msg.startswith("fetching the NSE instrument list: cannot reach " + url) and "\n" not in msg


def test_rejected_token_is_auth_error(sim):
    """Kite serves the dumps without auth; any authenticated call shows the 403 mapping."""
    from livecli.kite.rest import call, client

    kite = client(API_KEY, "not-the-token", sim.api_url)
    with pytest.raises(AuthError) as info:
        call(kite.profile, doing="reading the profile", api_url=sim.api_url)
    assert str(info.value) == "reading the profile: access token invalid or expired, run `livecli login`"
    assert call(client(API_KEY, TOKEN, sim.api_url).profile, doing="x", api_url=sim.api_url)


# --- `livecli instruments` -----------------------------------------------------------------
def run_cli(args: list[str], tmp_path: Path, api_url: str) -> subprocess.CompletedProcess[str]:
    env = hermetic_env(tmp_path, LIVECLI_KITE_API_URL=api_url, KITE_API_KEY=API_KEY,
                       KITE_ACCESS_TOKEN=TOKEN)
    return subprocess.run(
        [sys.executable, "-m", "livecli", *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )


def test_cli_instruments_search_plain_table(sim, tmp_path):
    r = run_cli(["instruments", "--exchange", "NSE", "RELI", "--limit", "5"], tmp_path, sim.api_url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["token", "symbol", "name"]
    first = lines[1].split("\t")
    assert first[:2] == ["738561", "RELIANCE"]
    assert (tmp_path / "cache" / "instruments" / "NSE.json").is_file()

    r = run_cli(["instruments", "--limit", "2"], tmp_path, sim.api_url)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3 and "2 of " in r.stderr


@pytest.mark.parametrize("exchange", ["XYZ", "NSEE"])
def test_cli_instruments_bad_exchange_is_a_usage_error(sim, tmp_path, exchange):
    """A mistyped --exchange is bad usage (exit 2) naming the option and every exchange."""
    from tests.cli import assert_one_line_error

    r = run_cli(["instruments", "--exchange", exchange], tmp_path, sim.api_url)
    assert_one_line_error(r, 2, f"--exchange '{exchange}'", "NSE, BSE, NFO, BFO, CDS, BCD, MCX, MCXSX")
    assert r.stdout == ""


def test_cli_instruments_unreachable_exit_13(tmp_path):
    r = run_cli(["instruments"], tmp_path, closed_port_url())
    assert r.returncode == 13
    assert r.stderr.startswith("livecli: error: fetching the NSE instrument list: cannot reach")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_cli_instruments_without_credentials_lists_the_simulated_market(tmp_path):
    from tests.cli import run as run_hermetic

    r = run_hermetic(["instruments", "--exchange", "NFO", "NIFTY"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "simulated market" in r.stderr
    rows = [ln.split("\t") for ln in r.stdout.splitlines()[1:]]
    assert rows and all("NIFTY" in row[1] and row[3] == "FUT" for row in rows)
    assert any(row[1].startswith("NIFTY") for row in rows)


# --- many symbols, and what an error echoes ----------------------------------------------------
def test_nine_thousand_symbols_resolve_in_order_without_duplicates(tmp_path):
    """Kite's limit per api_key. The duplicate check was a list scan (9000 took ~24 CPU-s);
    this is not a timed test, but the old code makes it take minutes on a loaded machine."""
    with StandIn(api_key=API_KEY, access_token=TOKEN, seed=1, extra_instruments=9000) as s:
        m = master(s.api_url, tmp_path)
        nse = m.load("NSE")
    symbols = [i.tradingsymbol for i in nse][:9000]
    got = m.resolve([*symbols, *(f"nse:{x.lower()}" for x in symbols[:100])])  # repeats dropped
    assert [i.tradingsymbol for i in got] == symbols
    assert len({i.instrument_token for i in got}) == 9000


def test_an_error_names_a_few_unknown_symbols_and_counts_the_rest(sim, tmp_path):
    m = master(sim.api_url, tmp_path)
    with pytest.raises(SymbolError) as info:
        m.resolve(["RELIANCE", *(f"NOPE{i}" for i in range(40))])
    msg = str(info.value)
    assert "unknown symbol NSE:NOPE0" in msg and "unknown symbol NSE:NOPE4" in msg
    assert "NOPE5" not in msg and msg.endswith("and 35 more unknown symbols")


@pytest.mark.parametrize(
    ("symbol", "shown"),
    [("RELI\x1b[2JANCE", "NSE:RELI\\x1b[2JANCE"), ("NSE:INF\x07Y", "NSE:INF\\x07Y"),
     ("X\x1b]0;t\x07:ABC", "'X\\x1b]0;t\\x07:ABC'"), ("\x00:", "'\\x00:'")],
    ids=["escape-sequence", "bell", "in-the-exchange", "nul"],
)
def test_a_symbol_echoed_in_an_error_has_control_characters_escaped(sim, tmp_path, symbol, shown):
    m = master(sim.api_url, tmp_path)
    with pytest.raises(SymbolError) as info:
        m.resolve([symbol])
    msg = str(info.value)
    assert shown in msg, msg
    assert not any(ch in msg for ch in "\x1b\n\x07\x00")


def test_cli_stream_unknown_symbol_is_escaped_in_its_one_line(tmp_path):
    from tests.cli import assert_one_line_error
    from tests.cli import run as run_hermetic

    r = run_hermetic(["stream", "RELI\x1b[2JANCE", "--jsonl", "--duration", "30",
                      "--db", str(tmp_path / "s.db")], tmp_path)
    assert_one_line_error(r, 7, "unknown symbol NSE:RELI\\x1b[2JANCE")
    assert "\x1b" not in r.stderr and r.stdout == ""
