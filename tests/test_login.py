"""`livecli login` against the stand-in's /session/token, the token file, and token expiry."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import date, time, timedelta
from pathlib import Path

import pytest

from livecli.config import load_settings, mask
from livecli.config.token_store import load_stored_token, save_token, token_expiry
from livecli.core.timeutil import at_ist, parse_instant, to_ist
from livecli.errors import AuthError, UsageError
from livecli.kite.auth import check_token_fresh, parse_request_token
from tests.conftest import hermetic_env

StandIn = pytest.importorskip("livecli.sim").StandIn

API_KEY, TOKEN, SECRET = "livecli-sim", "sim-access-token", "sim-secret"
REQUEST = "Req0uestTokenFromRedirect1234567"


@pytest.fixture(scope="module")
def sim():
    with StandIn(api_key=API_KEY, access_token=TOKEN, api_secret=SECRET, seed=1, speed=60) as s:
        yield s


def cli_env(tmp_path: Path, api_url: str, **extra: str) -> dict[str, str]:
    return hermetic_env(tmp_path, **{"LIVECLI_KITE_API_URL": api_url, "KITE_API_KEY": API_KEY,
                                     "KITE_API_SECRET": SECRET, **extra})


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livecli", *args],
        env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60,
    )


def assert_stored(tmp_path: Path, before: float, after: float) -> None:
    path = tmp_path / "data" / "token.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left
    doc = json.loads(path.read_text())
    assert doc["api_key"] == API_KEY and doc["access_token"] == TOKEN
    expires = parse_instant(doc["expires_at"])
    login_day = to_ist(parse_instant(doc["login_at"])).date()
    assert before - 1 <= parse_instant(doc["login_at"]) <= after + 1
    # 06:00 IST the day after login (a login before 06:00 IST ends at 06:00 the same day).
    expected_day = login_day + timedelta(days=0 if to_ist(before).hour < 6 else 1)
    assert expires == at_ist(expected_day, time(6, 0))
    stored = load_stored_token(tmp_path / "data")
    assert stored is not None and stored.access_token == TOKEN and stored.expires_at == expires


# --- pure parts ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        REQUEST,
        f"  {REQUEST}\n",
        f"https://127.0.0.1/cb?action=login&type=login&status=success&request_token={REQUEST}",
        f"http://localhost:5000/?request_token={REQUEST}&action=login",
        f"action=login&request_token={REQUEST}",
    ],
)
def test_parse_request_token(text):
    assert parse_request_token(text) == REQUEST


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("https://127.0.0.1/cb?action=login&status=success", "no request_token"),
        ("not a token!", "is not a request token"),
        ("abc", "is not a request token"),
    ],
)
def test_parse_request_token_rejects(text, match):
    with pytest.raises(UsageError, match=match):
        parse_request_token(text)


def test_token_expiry_is_next_0600_ist():
    d = date(2025, 12, 10)
    assert token_expiry(at_ist(d, time(9, 0))) == at_ist(d + timedelta(days=1), time(6, 0))
    assert token_expiry(at_ist(d, time(23, 59))) == at_ist(d + timedelta(days=1), time(6, 0))
    assert token_expiry(at_ist(d, time(6, 0))) == at_ist(d + timedelta(days=1), time(6, 0))
    assert token_expiry(at_ist(d, time(5, 59))) == at_ist(d, time(6, 0))


def test_expired_stored_token_is_refused_with_advice(tmp_path):
    data = tmp_path / "data"
    login_at = at_ist(date(2025, 12, 10), time(9, 0))
    stored = save_token(data, api_key=API_KEY, access_token=TOKEN, user_id="AB1234", login_at=login_at)
    env = {"LIVECLI_CONFIG_DIR": str(tmp_path / "cfg"), "LIVECLI_DATA_DIR": str(data)}
    settings = load_settings(env=env, cwd=tmp_path, now=login_at + 3600)
    assert settings.kite.access_token == TOKEN and settings.kite.api_key == API_KEY
    assert check_token_fresh(settings, now=login_at + 3600) == stored.expires_at
    with pytest.raises(AuthError) as info:
        check_token_fresh(settings, now=stored.expires_at)
    assert str(info.value) == "access token expired at 2025-12-11 06:00 IST, run `livecli login`"


def test_missing_credentials_are_refused(tmp_path):
    env = {"LIVECLI_CONFIG_DIR": str(tmp_path / "cfg"), "LIVECLI_DATA_DIR": str(tmp_path / "d")}
    with pytest.raises(AuthError, match="no Kite api_key"):
        check_token_fresh(load_settings(env=env, cwd=tmp_path))
    with pytest.raises(AuthError, match="no access token: run `livecli login`"):
        check_token_fresh(load_settings(env={**env, "KITE_API_KEY": "k"}, cwd=tmp_path))


# --- through the CLI, against the stand-in -------------------------------------------------
def _now() -> float:
    import time as _time

    return _time.time()


@pytest.mark.parametrize(
    "pasted",
    [f"http://127.0.0.1:9/callback?action=login&status=success&request_token={REQUEST}", REQUEST],
    ids=["redirect-url", "bare-token"],
)
def test_login_stores_a_private_token_file(sim, tmp_path, pasted):
    before = _now()
    r = run_cli(["login", pasted], cli_env(tmp_path, sim.api_url), tmp_path)
    after = _now()
    assert r.returncode == 0, r.stderr
    assert TOKEN not in r.stdout + r.stderr and SECRET not in r.stdout + r.stderr
    assert mask(TOKEN) in r.stdout and "06:00 IST" in r.stdout
    assert_stored(tmp_path, before, after)

    # The stored token is what later commands use.
    r = run_cli(["config", "--json"], cli_env(tmp_path, sim.api_url), tmp_path)
    doc = json.loads(r.stdout)
    assert doc["settings"]["kite.access_token"]["source"].startswith("login ")
    assert doc["token_status"].startswith("access token valid until")


def test_login_at_the_prompt(sim, tmp_path):
    before = _now()
    pasted = f"https://127.0.0.1/cb?request_token={REQUEST}\n"
    r = run_cli(["login", "--no-browser"], cli_env(tmp_path, sim.api_url), tmp_path, stdin=pasted)
    assert r.returncode == 0, r.stderr
    assert "kite.zerodha.com/connect/login?api_key=livecli-sim" in r.stderr  # the URL was shown
    assert_stored(tmp_path, before, _now())


def test_login_without_an_answer_at_the_prompt_exit_2(sim, tmp_path):
    r = run_cli(["login", "--no-browser"], cli_env(tmp_path, sim.api_url), tmp_path, stdin="")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("livecli: error: no request token given")
    assert not (tmp_path / "data" / "token.json").exists()


def test_login_with_wrong_secret_is_one_line_exit_12(sim, tmp_path):
    env = cli_env(tmp_path, sim.api_url, KITE_API_SECRET="not-the-secret")
    r = run_cli(["login", REQUEST], env, tmp_path)
    assert r.returncode == 12, r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livecli: error: Kite rejected the login")
    assert "not-the-secret" not in r.stderr
    assert not (tmp_path / "data" / "token.json").exists()


def test_login_without_secret_says_where_to_put_it(sim, tmp_path):
    env = cli_env(tmp_path, sim.api_url)
    del env["KITE_API_SECRET"]
    r = run_cli(["login", REQUEST], env, tmp_path)
    assert r.returncode == 9
    assert "KITE_API_SECRET" in r.stderr and str(tmp_path / "cfg" / "config.toml") in r.stderr
    assert r.stderr.count("\n") == 1


def test_config_reports_an_expired_login(tmp_path):
    save_token(
        tmp_path / "data", api_key=API_KEY, access_token=TOKEN, user_id=None,
        login_at=at_ist(date(2025, 12, 10), time(9, 0)),
    )
    r = run_cli(["config"], cli_env(tmp_path, "http://127.0.0.1:9"), tmp_path)
    assert r.returncode == 0, r.stderr
    assert "access token EXPIRED at 2025-12-11 06:00 IST: run `livecli login`" in r.stdout
    assert TOKEN not in r.stdout


# --- the token store's home --------------------------------------------------------------------
def test_the_token_store_lives_in_config_and_loading_settings_needs_no_kite_code(tmp_path):
    """config and kite imported each other (the token store was in kite/auth.py): now loading
    settings, the stored token included, imports nothing of kite but its protocol facts."""
    data = tmp_path / "data"
    save_token(data, api_key=API_KEY, access_token=TOKEN, user_id=None, login_at=_now())
    code = (
        "import sys; from livecli.config import load_settings; "
        f"s = load_settings(env={{'LIVECLI_DATA_DIR': {str(data)!r}, "
        f"'LIVECLI_CONFIG_DIR': {str(tmp_path / 'cfg')!r}}}, cwd=__import__('pathlib').Path('.')); "
        "assert s.kite.access_token and s.source_of('kite.access_token').startswith('login '); "
        "print(sorted(m for m in sys.modules if m.startswith('livecli.kite')))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITE_", "LIVECLI_"))}
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['livecli.kite', 'livecli.kite.protocol']"


def test_kite_auth_still_offers_the_token_store_names():
    """Callers that know them from kite.auth keep working: the very same objects."""
    from livecli.config import token_store
    from livecli.kite import auth

    for name in ("StoredToken", "save_token", "load_stored_token", "token_expiry",
                 "describe_instant", "EXPIRY_HOUR_IST"):
        assert getattr(auth, name) is getattr(token_store, name)


def test_an_unreadable_token_file_warns_once_without_the_prefix(tmp_path, caplog):
    import logging

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "token.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="livecli"):
        assert load_stored_token(tmp_path / "data") is None
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring unreadable login token {tmp_path / 'data' / 'token.json'}; run `livecli login`"
    ]
