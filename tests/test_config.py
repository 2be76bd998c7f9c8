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
from livecli.config.token_store import save_token
from livecli.errors import ConfigError, UsageError

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


def _example_blocks(text: str) -> dict[str, str]:
    """config.example.toml's comment block above each `# name = value`, keyed section.name."""
    blocks: dict[str, str] = {}
    section, comment = None, []
    for line in text.splitlines():
        m = re.match(r"^\[(\w+)\]", line)
        if m:
            section, comment = m.group(1), []
        elif (m := re.match(r"^# ([a-z_]+) = ", line)) and section:
            blocks[f"{section}.{m.group(1)}"] = " ".join(comment)
            comment = []
        elif line.startswith("# "):
            comment.append(line[2:].strip())
        else:
            comment = []
    return blocks


def test_example_config_documents_every_setting_with_its_own_doc(dirs):
    """Each setting's comment in config.example.toml is the schema's doc for it, word for word:
    the text users read in the file is the text the code carries (and fixes reach both)."""
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    blocks = _example_blocks(text)
    for key, spec in field_specs().items():
        assert key in blocks, f"{key} is not documented in config.example.toml"
        assert blocks[key] == " ".join(spec.doc.split()), (key, blocks[key], spec.doc)
    # Uncommented, the example is a valid config whose values are the defaults.
    uncommented = re.sub(r"(?m)^# ([a-zA-Z_A-Z]+ = )", r"\1", text)
    s = load(dirs, config_path=write(dirs["cwd"] / "ex.toml", uncommented))
    for key, spec in field_specs().items():
        if key.startswith("stream.") or key in ("kite.ws_url", "kite.api_url", "kite.login_url"):
            assert s.get(key) == spec.default, key


def test_docs_say_what_fill_gaps_and_record_ticks_do():
    """fill_gaps used to promise a historical-API fetch it never made; the fetch is
    fetch_history's (issue 13), and fill_gaps says it never covers the minutes that repairs."""
    specs = field_specs()
    fill, record = specs["stream.fill_gaps"].doc, specs["store.record_ticks"].doc
    assert "synthetic" in fill and "fill_gaps itself fetches nothing" in fill
    assert "fetch_history repairs them" in fill and "Never across a disconnect" in fill
    assert "historical API" in specs["stream.fetch_history"].doc
    assert "in the store" in record and "tick file next to" not in record


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


def test_cli_config_never_shows_a_password_in_the_publish_url(dirs):
    password = "hunter2-nats-password"
    write(dirs["cfg"] / "config.toml",
          f'[publish]\nurl = "nats://trader:{password}@feed-host:4222"\n')
    for args in (["config"], ["config", "--json"]):
        r = run_cli(args, base_env(dirs), dirs["cwd"])
        assert r.returncode == 0, r.stderr
        assert password not in r.stdout + r.stderr and "trader" not in r.stdout
        assert "nats://***@feed-host:4222" in r.stdout


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
    # The prefix once: the handler adds it, the message does not (it printed it twice).
    assert r.stderr.splitlines() == [
        f"livecli: warning: {path} holds Kite secrets and is readable by other users; "
        f"run `chmod 600 {path}`"
    ]


# --- absurd values and many problems (issue 9, "bad input") -----------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[stream]\nwatchdog_s = inf\n", r"stream\.watchdog_s must be a finite number, greater than 0 and at most 300"),
        ("[stream]\nwatchdog_s = nan\n", r"stream\.watchdog_s must be a finite number"),
        ("[stream]\nwatchdog_s = 301\n", r"stream\.watchdog_s must be greater than 0 and at most 300"),
        ("[stream]\nhistory = 1000000000000\n", r"stream\.history must be at least 1 and at most 100000"),
        ("[stream]\nhistory = 0\n", r"stream\.history must be at least 1 and at most 100000"),
        ("[stream]\ngrace_s = 1e308\n", r"stream\.grace_s must be at least 0 and at most 60"),
        ("[stream]\nreconnect_max_delay_s = -inf\n", r"must be a finite number, at least 5 and at most 3600"),
        ("[stream]\nrefresh_per_s = 30\n", r"stream\.refresh_per_s must be greater than 0 and at most 10"),
    ],
)
def test_numbers_must_be_finite_and_within_their_bounds(dirs, text, expected):
    path = write(dirs["cwd"] / "livecli.toml", text)
    with pytest.raises(ConfigError) as info:
        load(dirs)
    assert str(info.value).startswith(f"{path}: ") and re.search(expected, str(info.value))


def test_bounds_hold_for_environment_values_too(dirs):
    for var, value in [("LIVECLI_STREAM_GRACE_S", "1e308"), ("LIVECLI_STREAM_WATCHDOG_S", "inf"),
                       ("LIVECLI_STREAM_HISTORY", "9" * 30)]:
        with pytest.raises(ConfigError, match=f"environment variable {var}: .*must be"):
            load(dirs, {var: value})
    s = load(dirs, {"LIVECLI_STREAM_GRACE_S": "60", "LIVECLI_STREAM_HISTORY": "100000"})
    assert (s.stream.grace_s, s.stream.history) == (60.0, 100_000)  # the bounds themselves are fine


def test_every_problem_in_a_file_is_reported_in_one_line(dirs):
    path = write(dirs["cwd"] / "livecli.toml",
                 '[stream]\nhistroy = 1\nwatchdog_s = inf\nmode = "fast"\n'
                 '[streams]\nx = 1\n[kite]\napi_url = "nope"\n')
    with pytest.raises(ConfigError) as info:
        load(dirs)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: 5 problems: 1) unknown setting 'stream.histroy'")
    for needle in ("2) stream.watchdog_s must be a finite number", "3) stream.mode must be one of",
                   "4) unknown section [streams]", "5) kite.api_url must be a URL"):
        assert needle in msg, (needle, msg)


def test_problems_in_several_places_name_each_place(dirs):
    user = write(dirs["cfg"] / "config.toml", "[stream]\nhistory = 0\n")
    with pytest.raises(ConfigError) as info:
        load(dirs, {"LIVECLI_STREAM_MODE": "fast"})
    msg = str(info.value)
    assert msg.startswith("2 problems: 1) ") and "\n" not in msg
    assert f"1) {user}: stream.history must be at least 1" in msg
    assert "2) environment variable LIVECLI_STREAM_MODE: stream.mode must be one of" in msg


def test_a_long_list_of_problems_is_cut_short(dirs):
    body = "".join(f"bogus{i} = 1\n" for i in range(20))
    write(dirs["cwd"] / "livecli.toml", "[stream]\n" + body)
    with pytest.raises(ConfigError) as info:
        load(dirs)
    msg = str(info.value)
    assert "20 problems" in msg and "8) unknown setting 'stream.bogus7'" in msg
    assert "bogus8" not in msg and msg.endswith("; and 12 more")


def test_deeply_nested_toml_is_a_config_error(dirs):
    """Before: tomllib's RecursionError escaped as an unexpected error (exit 1)."""
    path = write(dirs["cwd"] / "livecli.toml", "[stream]\nintervals = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"nested too deeply") as info:
        load(dirs)
    assert str(info.value).startswith(str(path))


def test_a_bad_option_value_is_a_usage_error_naming_the_option(dirs):
    with pytest.raises(UsageError) as info:
        load(dirs, overrides={"stream.exchange": "NSEE"})
    msg = str(info.value)
    assert msg.startswith("--exchange 'NSEE': must be one of NSE, BSE, NFO, BFO, CDS, BCD, MCX, MCXSX")
    with pytest.raises(UsageError, match=r"^--mode 'depth': must be one of ltp, quote, full"):
        load(dirs, overrides={"stream.mode": "depth"})
    with pytest.raises(UsageError, match=r"^option stream\.history '0': must be at least 1"):
        load(dirs, overrides={"stream.history": 0})  # a library caller's override: no flag
    with pytest.raises(UsageError, match=r"\\x1b\[2J"):
        load(dirs, overrides={"stream.exchange": "\x1b[2J"})  # echoed escaped


# --- which source the settings mean, and where a simulated session stores -------------------
@pytest.mark.parametrize(
    "env",
    [{"KITE_API_KEY": "k"}, {"KITE_API_SECRET": "s"}, {"KITE_ACCESS_TOKEN": "t"},
     {"LIVECLI_KITE_API_SECRET": "s"}],
    ids=["api_key", "api_secret", "access_token", "generic-env"],
)
def test_any_kite_credential_means_kite(dirs, env):
    from livecli.session.source import KITE, choose_source

    s = load(dirs, env)
    assert s.kite_configured
    assert choose_source("auto", s).name == KITE and choose_source("auto", s).note is None


def test_only_no_credential_at_all_means_the_simulated_market(dirs):
    from livecli.session.source import SIMULATED, choose_source

    s = load(dirs)
    assert not s.kite_configured
    choice = choose_source("auto", s)
    assert choice.name == SIMULATED and "no Kite credentials configured" in (choice.note or "")
    assert choose_source("sim", s).note is None  # asked for: nothing to explain
    # A token stored by `livecli login` brings its api_key: that is Kite too.
    save_token(dirs["data"], api_key="key1", access_token="tok", user_id=None, login_at=1.75e9)
    assert load(dirs, now=1.75e9).kite_configured
    with pytest.raises(UsageError, match="unknown source 'live'"):
        choose_source("live", s)


def test_the_simulated_market_has_its_own_default_store(dirs, tmp_path):
    s = load(dirs)
    assert s.store_path_for(simulated=False) == dirs["data"] / "livecli.db"
    assert s.store_path_for(simulated=True) == dirs["data"] / "livecli-sim.db"
    # A store the user named is used as given, for both.
    chosen = tmp_path / "mine.db"
    for kw in ({"overrides": {"store.path": str(chosen)}},
               {"env": {"LIVECLI_STORE_PATH": str(chosen)}}):
        s = load(dirs, kw.get("env"), overrides=kw.get("overrides"))
        assert s.store_path_for(simulated=False) == s.store_path_for(simulated=True) == chosen
    write(dirs["cwd"] / "livecli.toml", '[store]\npath = "sub/x.db"\n')
    s = load(dirs)
    assert s.store_path_for(simulated=True) == dirs["cwd"] / "sub" / "x.db"


def test_cli_config_says_which_source_stream_would_use(dirs):
    r = run_cli(["config", "--json"], base_env(dirs), dirs["cwd"])
    doc = json.loads(r.stdout)
    assert doc["source"] == "SIMULATED" and "simulated market" in doc["token_status"]
    # Only an api_secret: Kite, not the simulation, and the advice to log in.
    r = run_cli(["config", "--json"], {**base_env(dirs), "KITE_API_SECRET": SECRET}, dirs["cwd"])
    doc = json.loads(r.stdout)
    assert doc["source"] == "KITE" and doc["token_status"] == "no access token: run `livecli login`"
    r = run_cli(["config"], {**base_env(dirs), "KITE_API_SECRET": SECRET}, dirs["cwd"])
    assert "source: KITE" in r.stdout.splitlines() and SECRET not in r.stdout


@pytest.mark.parametrize(
    ("args", "env", "code", "words"),
    [
        (["config"], {}, 9, ["nested too deeply"]),
        (["stream", "RELIANCE", "--jsonl", "--duration", "30"], {"LIVECLI_STREAM_GRACE_S": "1e308"},
         9, ["LIVECLI_STREAM_GRACE_S", "stream.grace_s must be at least 0 and at most 60"]),
        (["stream", "RELIANCE", "--jsonl", "--duration", "30"], {"LIVECLI_STREAM_WATCHDOG_S": "inf"},
         9, ["stream.watchdog_s must be a finite number"]),
    ],
    ids=["deep-toml", "grace-1e308", "watchdog-inf"],
)
def test_cli_absurd_settings_exit_9_in_one_line(dirs, args, env, code, words):
    """Before: RecursionError and OverflowError escaped as exit 1 (the stream ran first)."""
    if "nested too deeply" in words:
        write(dirs["cwd"] / "livecli.toml", "[stream]\nintervals = " + "[" * 5000 + "]" * 5000 + "\n")
    r = run_cli([*args, "--db", str(dirs["cwd"] / "s.db")] if args[0] == "stream" else args,
                {**base_env(dirs), **env}, dirs["cwd"])
    assert r.returncode == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livecli: error: ") and "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert r.stdout == "" and not (dirs["cwd"] / "s.db").exists()
