"""Settings precedence, sources, validation and secret handling, in-process and through the CLI."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from livecli.config import load_settings, mask
from livecli.config.schema import field_specs
from livecli.errors import ConfigError
from livecli.config.token_store import save_token

REPO = Path(__file__).resolve().parents[1]
SECRET = "S3CRETvalue-0123456789abcdef"
TOKEN = "TOKENvalue-9876543210zyxwvu"


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    d = {
        "cfg": tmp_path / "cfg",
        "data": tmp_path / "data",
        "cache": tmp_path / "cache",
        "cwd": tmp_path / "work",
    }
    for p in d.values():
        p.mkdir()
    return d


def base_env(dirs: dict[str, Path]) -> dict[str, str]:
    return {
        "LIVECLI_CONFIG_DIR": str(dirs["cfg"]),
        "LIVECLI_DATA_DIR": str(dirs["data"]),
        "LIVECLI_CACHE_DIR": str(dirs["cache"]),
    }


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def load(dirs: dict[str, Path], env: dict[str, str] | None = None, **kw):
    return load_settings(env={**base_env(dirs), **(env or {})}, cwd=dirs["cwd"], **kw)


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), **env}
    if "PYTHONPATH" in os.environ:  # a checkout run without installing
        full["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [sys.executable, "-m", "livecli", *args],
        env=full, cwd=cwd, capture_output=True, text=True, timeout=60,
    )


# --- precedence ----------------------------------------------------------------------------
def test_defaults_and_their_source(dirs):
    s = load(dirs)
    assert s.stream.mode == "full" and s.stream.intervals == ["1min"] and s.stream.exchange == "NSE"
    assert s.stream.watchdog_s == 5.0 and s.stream.grace_s == 2.0 and s.stream.history == 500
    assert s.kite.ws_url == "wss://ws.kite.trade" and s.kite.api_url == "https://api.kite.trade"
    assert s.store.path == dirs["data"] / "livecli.db" and s.store.record_ticks is False
    assert all(src == "default" for _, _, src in s.items())
    assert not s.kite_configured and s.files == ()


def test_folders_follow_their_variables(dirs, tmp_path):
    s = load(dirs)
    assert (s.config_dir, s.data_dir, s.cache_dir) == (dirs["cfg"], dirs["data"], dirs["cache"])
    assert s.token_file == dirs["data"] / "token.json"
    only_data = load_settings(env={"LIVECLI_DATA_DIR": str(tmp_path / "d")}, cwd=dirs["cwd"])
    assert only_data.cache_dir == tmp_path / "d" / "cache"  # one variable moves all livecli writes
    assert only_data.store.path == tmp_path / "d" / "livecli.db"


def test_each_layer_overrides_the_next(dirs):
    """history set in every layer; peel layers off from the top and watch the next one win."""
    user = write(dirs["cfg"] / "config.toml", "[stream]\nhistory = 10\n")
    local = write(dirs["cwd"] / "livecli.toml", "[stream]\nhistory = 20\n")
    env = {"LIVECLI_STREAM_HISTORY": "30"}

    s = load(dirs, env, overrides={"stream.history": 40})
    assert (s.stream.history, s.source_of("stream.history")) == (40, "flag")
    s = load(dirs, env, overrides={"stream.history": None})  # None: the flag was not given
    assert (s.stream.history, s.source_of("stream.history")) == (30, "env LIVECLI_STREAM_HISTORY")
    s = load(dirs)
    assert (s.stream.history, s.source_of("stream.history")) == (20, "file ./livecli.toml")
    assert s.files == (user, local)
    local.unlink()
    s = load(dirs)
    assert (s.stream.history, s.source_of("stream.history")) == (10, f"user config {user}")
    user.unlink()
    s = load(dirs)
    assert (s.stream.history, s.source_of("stream.history")) == (500, "default")


def test_access_token_layers_including_login(dirs):
    write(dirs["cfg"] / "config.toml", '[kite]\napi_key = "key1"\naccess_token = "from-user-cfg"\n')
    now = 1_750_000_000.0  # any instant; the stored token is fresh relative to it
    assert load(dirs, now=now).kite.access_token == "from-user-cfg"

    write(dirs["cwd"] / "livecli.toml", '[kite]\naccess_token = "from-local"\n')
    assert load(dirs, now=now).source_of("kite.access_token") == "file ./livecli.toml"

    stored = save_token(dirs["data"], api_key="key1", access_token="from-login", user_id="AB1234", login_at=now)
    s = load(dirs, now=now)
    assert s.kite.access_token == "from-login"
    assert s.source_of("kite.access_token") == f"login {stored.path}"
    assert s.token_expires_at == stored.expires_at and s.kite_configured

    s = load(dirs, {"KITE_ACCESS_TOKEN": "from-env"}, now=now)
    assert (s.kite.access_token, s.source_of("kite.access_token")) == ("from-env", "env KITE_ACCESS_TOKEN")
    assert s.token_expires_at is None  # not the stored token: expiry unknown

    s = load(dirs, {"KITE_ACCESS_TOKEN": "from-env"}, overrides={"kite.access_token": "from-flag"}, now=now)
    assert (s.kite.access_token, s.source_of("kite.access_token")) == ("from-flag", "flag")


def test_login_token_ignored_for_other_key_or_when_expired_behind_a_file(dirs):
    now = 1_750_000_000.0
    stored = save_token(dirs["data"], api_key="key1", access_token="from-login", user_id=None, login_at=now)
    # No api_key anywhere: the stored token brings its own.
    s = load(dirs, now=now)
    assert s.kite.api_key == "key1" and s.kite.access_token == "from-login"

    # Issued for another api_key: useless, ignored.
    s = load(dirs, {"KITE_API_KEY": "key2"}, now=now)
    assert s.kite.api_key == "key2" and s.kite.access_token is None and s.token_expires_at is None

    # Expired, but a file has a token: the file's token is used.
    write(dirs["cfg"] / "config.toml", '[kite]\napi_key = "key1"\naccess_token = "pasted"\n')
    later = stored.expires_at + 60
    assert load(dirs, now=later).kite.access_token == "pasted"
    # Expired and nothing else: kept, so `stream` can say it expired and what to do.
    (dirs["cfg"] / "config.toml").unlink()
    s = load(dirs, now=later)
    assert s.kite.access_token == "from-login" and s.token_expires_at == stored.expires_at


def test_generic_env_beats_short_form_and_empty_env_is_ignored(dirs):
    s = load(dirs, {"KITE_API_KEY": "short", "LIVECLI_KITE_API_KEY": "generic"})
    assert (s.kite.api_key, s.source_of("kite.api_key")) == ("generic", "env LIVECLI_KITE_API_KEY")
    s = load(dirs, {"KITE_API_KEY": "short", "LIVECLI_KITE_API_KEY": ""})
    assert s.source_of("kite.api_key") == "env KITE_API_KEY"


def test_config_path_replaces_local_and_user_files(dirs, tmp_path):
    write(dirs["cfg"] / "config.toml", '[stream]\nhistory = 10\nexchange = "BSE"\n')
    write(dirs["cwd"] / "livecli.toml", "[stream]\nhistory = 20\n")
    explicit = write(tmp_path / "explicit.toml", "[stream]\nhistory = 99\n")
    s = load(dirs, config_path=explicit)
    assert (s.stream.history, s.source_of("stream.history")) == (99, f"file {explicit}")
    assert s.stream.exchange == "NSE" and s.files == (explicit,)  # user config not read
    with pytest.raises(ConfigError, match="not found"):
        load(dirs, config_path=tmp_path / "missing.toml")


def test_values_are_typed_from_env_and_files(dirs):
    write(dirs["cwd"] / "livecli.toml", '[store]\npath = "sub/c.db"\n[stream]\nintervals = ["5minute", "1h"]\n')
    s = load(dirs)
    assert s.store.path == dirs["cwd"] / "sub" / "c.db"  # relative to the file's folder
    assert s.stream.intervals == ["5min", "60min"]
    s = load(
        dirs,
        {
            "LIVECLI_STREAM_FILL_GAPS": "yes",
            "LIVECLI_STREAM_GRACE_S": "0.5",
            "LIVECLI_STREAM_INTERVALS": "1min, 15m",
            "LIVECLI_STREAM_MODE": "QUOTE",
            "LIVECLI_STREAM_EXCHANGE": "nfo",
            "LIVECLI_STORE_PATH": "x.db",
            "LIVECLI_STORE_RECORD_TICKS": "1",
            "LIVECLI_KITE_WS_URL": "ws://127.0.0.1:9",
            "LIVECLI_SESSIONS_MCX": "09:00-23:55",
        },
    )
    assert s.stream.fill_gaps is True and s.stream.grace_s == 0.5 and s.stream.mode == "quote"
    assert s.stream.intervals == ["1min", "15min"] and s.stream.exchange == "NFO"
    assert s.store.path == dirs["cwd"] / "x.db" and s.store.record_ticks is True
    assert s.kite.ws_url == "ws://127.0.0.1:9" and s.source_of("kite.ws_url") == "env LIVECLI_KITE_WS_URL"
    assert s.sessions == {"MCX": "09:00-23:55"}
    assert s.session_table()["MCX"].close_s == 23 * 3600 + 55 * 60
    assert s.session_table()["NSE"].open_s == 9 * 3600 + 15 * 60  # untouched default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[stream\nhistory = 1\n", r"invalid TOML.*line 1"),
        ("[stream]\nhistroy = 1\n", r"unknown setting 'stream\.histroy'; did you mean 'stream\.history'"),
        ("[streams]\nhistory = 1\n", r"unknown section \[streams\]"),
        ('[stream]\nhistory = "many"\n', r"stream\.history must be a whole number; e\.g\. history = 500"),
        ("[stream]\nwatchdog_s = 0\n", r"stream\.watchdog_s must be greater than 0"),
        ("[stream]\nreconnect_max_delay_s = 1\n", r"must be at least 5"),
        ('[stream]\nmode = "fast"\n', r"stream\.mode must be one of ltp, quote, full"),
        ('[stream]\nintervals = ["7sec"]\n', r"stream\.intervals unknown interval"),
        ("[stream]\nfill_gaps = 1\n", r"stream\.fill_gaps must be true or false"),
        ('[kite]\napi_url = "api.kite.trade"\n', r"kite\.api_url must be a URL starting with http:// or https://"),
        ('[sessions]\nMCX = "9-5"\n', r"sessions\.MCX must be \"HH:MM-HH:MM\""),
        ('[sessions]\nXYZ = "09:00-10:00"\n', r"sessions\.XYZ is not an exchange"),
        ('api_key = "k"\n', r"'api_key' is outside any section; put it under \[kite\]"),
    ],
)
def test_bad_files_name_file_key_and_fix(dirs, text, expected):
    path = write(dirs["cwd"] / "livecli.toml", text)
    with pytest.raises(ConfigError) as info:
        load(dirs)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    assert re.search(expected, msg), msg


def test_bad_env_value_names_the_variable(dirs):
    with pytest.raises(ConfigError, match=r"environment variable LIVECLI_STREAM_HISTORY: stream\.history"):
        load(dirs, {"LIVECLI_STREAM_HISTORY": "lots"})
    with pytest.raises(ConfigError, match=r"unknown setting 'stream\.nope'"):
        load(dirs, overrides={"stream.nope": 1})


def test_group_readable_secret_file_warns_once(dirs, caplog):
    path = write(dirs["cfg"] / "config.toml", f'[kite]\napi_secret = "{SECRET}"\n', mode=0o644)
    with caplog.at_level(logging.WARNING, logger="livecli.config"):
        load(dirs)
        load(dirs)
    warnings = [r.getMessage() for r in caplog.records if "chmod 600" in r.getMessage()]
    assert warnings == [f"{path} holds Kite secrets and is readable by other users; run `chmod 600 {path}`"]
    assert SECRET not in caplog.text


def test_private_or_secretless_files_do_not_warn(dirs, caplog):
    write(dirs["cfg"] / "config.toml", f'[kite]\napi_secret = "{SECRET}"\n', mode=0o600)
    write(dirs["cwd"] / "livecli.toml", "[stream]\nhistory = 3\n", mode=0o644)
    with caplog.at_level(logging.WARNING, logger="livecli.config"):
        load(dirs)
    assert "chmod" not in caplog.text


def test_mask_never_reveals_a_secret():
    assert mask(SECRET) == "S3CR…ef" and SECRET not in mask(SECRET)
    assert mask("short") == "****" and mask("elevenchars") == "****"
    assert mask(None) == "(not set)"


def test_example_config_documents_every_setting(dirs):
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    for key, spec in field_specs().items():
        assert f"# {spec.name} = " in text, f"{key} is not documented in config.example.toml"
    # Uncommented, the example is a valid config whose values are the defaults.
    uncommented = re.sub(r"(?m)^# ([a-zA-Z_A-Z]+ = )", r"\1", text)
    s = load(dirs, config_path=write(dirs["cwd"] / "ex.toml", uncommented))
    for key, spec in field_specs().items():
        if key.startswith("stream.") or key in ("kite.ws_url", "kite.api_url", "kite.login_url"):
            assert s.get(key) == spec.default, key


# --- through the real CLI ------------------------------------------------------------------
def test_cli_config_masks_secrets_and_shows_sources(dirs):
    write(dirs["cfg"] / "config.toml", f'[kite]\napi_key = "appkey"\napi_secret = "{SECRET}"\n')
    env = {**base_env(dirs), "KITE_ACCESS_TOKEN": TOKEN, "LIVECLI_STREAM_HISTORY": "77"}
    r = run_cli(["config"], env, dirs["cwd"])
    assert r.returncode == 0, r.stderr
    for stream in (r.stdout, r.stderr):
        assert SECRET not in stream and TOKEN not in stream
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    assert mask(SECRET) in lines["kite.api_secret"] and "user config" in lines["kite.api_secret"]
    assert mask(TOKEN) in lines["kite.access_token"] and "env KITE_ACCESS_TOKEN" in lines["kite.access_token"]
    assert "77" in lines["stream.history"] and "env LIVECLI_STREAM_HISTORY" in lines["stream.history"]

    r = run_cli(["config", "--json"], env, dirs["cwd"])
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout and TOKEN not in r.stdout
    doc = json.loads(r.stdout)
    assert doc["settings"]["kite.api_secret"] == {"value": mask(SECRET), "source": f"user config {dirs['cfg'] / 'config.toml'}"}
    assert doc["settings"]["stream.history"] == {"value": 77, "source": "env LIVECLI_STREAM_HISTORY"}
    assert doc["data_dir"] == str(dirs["data"])


@pytest.mark.parametrize(
    ("text", "needle"),
    [("[stream\n", "invalid TOML"), ("[stream]\nbogus = 1\n", "unknown setting 'stream.bogus'")],
)
def test_cli_bad_config_one_line_exit_9_no_traceback(dirs, text, needle):
    path = write(dirs["cwd"] / "livecli.toml", text)
    r = run_cli(["config"], base_env(dirs), dirs["cwd"])
    assert r.returncode == 9
    assert r.stdout == ""
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr
    assert err[0].startswith(f"livecli: error: {path}") and needle in err[0]


def test_cli_warns_about_a_readable_secret_file(dirs):
    path = write(dirs["cfg"] / "config.toml", f'[kite]\naccess_token = "{TOKEN}"\n', mode=0o640)
    r = run_cli(["config"], base_env(dirs), dirs["cwd"])
    assert r.returncode == 0, r.stderr
    assert r.stderr.count(f"chmod 600 {path}") == 1
    assert TOKEN not in r.stderr + r.stdout
