"""Which market a command uses, decided once (`session.source.choose_source`), through the CLI.

Any Kite credential configured (api_key, api_secret or an access token) means Kite: `stream`
then stops before it connects when there is no valid access token, instead of streaming the
simulated market as it did (issue 9: `KITE_API_KEY=x KITE_API_SECRET=y livecli stream` exited 0
with SIMULATED prices). Only with no credential at all is the market simulated, and then the
user is told once on stderr. `instruments` and `config` agree with `stream`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli import assert_one_line_error, run

StandIn = pytest.importorskip("livecli.sim").StandIn

KEY, TOKEN = "policy-key", "policy-access-token-0123456789"
SECRET = "policy-secret-0123456789abcdef"
SIM_DATE = "2025-12-10"


@pytest.fixture(scope="module")
def kite():
    """A stand-in playing real Kite: if livecli connects anywhere, it is here, and counted."""
    with StandIn(api_key=KEY, access_token=TOKEN, seed=3, speed=60, date=SIM_DATE) as s:
        yield s


def at_kite(kite, **env: str) -> dict[str, str]:
    return {"LIVECLI_KITE_WS_URL": kite.ws_url, "LIVECLI_KITE_API_URL": kite.api_url, **env}


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"KITE_API_KEY": "x", "KITE_API_SECRET": SECRET},
         ["no access token: run `livecli login`", "kite.api_key from env KITE_API_KEY",
          "kite.api_secret from env KITE_API_SECRET", "--sim"]),
        ({"KITE_API_SECRET": SECRET}, ["no Kite api_key", "run `livecli login`"]),
        ({"KITE_API_KEY": "x"}, ["no access token: run `livecli login`"]),
    ],
    ids=["key-and-secret", "secret-only", "key-only"],
)
def test_any_credential_means_kite_and_no_token_stops_before_connecting(tmp_path, kite, env, words):
    accepted = kite.connections_accepted
    db = tmp_path / "s.db"
    t0 = time.monotonic()
    r = run(["stream", "RELIANCE", "--jsonl", "--duration", "30", "--db", str(db)], tmp_path,
            **at_kite(kite, **env))
    assert_one_line_error(r, 12, *words)
    assert r.stdout == "" and "SIMULATED" not in r.stderr  # nothing streamed, nothing simulated
    assert SECRET not in r.stderr  # named by where it came from, never shown
    assert kite.connections_accepted == accepted and not db.exists()
    assert time.monotonic() - t0 < 20  # refused up front, not after --duration


def test_an_expired_login_stops_stream_with_the_advice(tmp_path, kite):
    from datetime import date
    from datetime import time as dtime

    from livecli.config.token_store import save_token
    from livecli.core.timeutil import at_ist

    save_token(tmp_path / "data", api_key=KEY, access_token=TOKEN, user_id=None,
               login_at=at_ist(date(2025, 12, 10), dtime(9, 0)))
    r = run(["stream", "RELIANCE", "--jsonl", "--duration", "30", "--db", str(tmp_path / "s.db")],
            tmp_path, **at_kite(kite))
    assert_one_line_error(r, 12, "access token expired at 2025-12-11 06:00 IST, run `livecli login`")
    assert TOKEN not in r.stderr


def test_with_no_credentials_stream_simulates_and_says_so_once(tmp_path):
    args = ["stream", "RELIANCE", "--jsonl", "--duration", "2", "--speed", "60",
            "--sim-date", SIM_DATE, "--db", str(tmp_path / "s.db")]
    r = run(args, tmp_path)
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("livecli: note: ")]
    assert notes == ["livecli: note: no Kite credentials configured: using the simulated market "
                     "(set [kite] api_key and api_secret, then run `livecli login`, to use Kite)"]
    statuses = [json.loads(ln) for ln in r.stdout.splitlines() if '"type": "status"' in ln]
    assert statuses and {s["source"] for s in statuses} == {"SIMULATED"}
    # --sim asks for the simulation: nothing to explain.
    r = run([*args[:-1], str(tmp_path / "t.db"), "--sim"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "livecli: note:" not in r.stderr


def test_instruments_agrees_with_stream(tmp_path, kite):
    # An api_key alone is Kite for `instruments` too: Kite serves the dumps without a token.
    before = kite.handlers.requests
    r = run(["instruments", "RELIANCE", "--limit", "1"], tmp_path, **at_kite(kite, KITE_API_KEY=KEY))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].split("\t")[:2] == ["738561", "RELIANCE"]
    assert "simulated" not in r.stderr and kite.handlers.requests > before
    # None at all: the simulated market's, said once in the same words as `stream`.
    r = run(["instruments", "RELIANCE", "--limit", "1"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("livecli: note: no Kite credentials configured: using the simulated market") == 1


@pytest.mark.parametrize("exchange", ["NSEE", "nse:"])
def test_stream_bad_exchange_is_a_usage_error(tmp_path, exchange):
    r = run(["stream", "RELIANCE", "--exchange", exchange, "--jsonl", "--duration", "30",
             "--db", str(tmp_path / "s.db")], tmp_path)
    assert_one_line_error(r, 2, f"--exchange '{exchange}'", "NSE, BSE, NFO, BFO, CDS, BCD, MCX, MCXSX")
    assert r.stdout == "" and not (tmp_path / "s.db").exists()


def test_config_file_credentials_count_too(tmp_path, kite):
    Path(tmp_path / "livecli.toml").write_text('[kite]\napi_secret = "file-secret-value"\n')
    (tmp_path / "livecli.toml").chmod(0o600)
    r = run(["stream", "RELIANCE", "--jsonl", "--duration", "30", "--db", str(tmp_path / "s.db")],
            tmp_path, **at_kite(kite))
    assert_one_line_error(r, 12, "no Kite api_key", "kite.api_secret from file ./livecli.toml")
    assert "file-secret-value" not in r.stderr
