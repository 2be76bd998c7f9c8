"""Build the effective Settings from every layer, highest precedence first:

1. command-line flags (the CLI passes them as `overrides`, dotted keys, None meaning "not given")
2. environment: LIVECLI_<SECTION>_<KEY> (e.g. LIVECLI_STORE_PATH), and the short forms
   KITE_API_KEY, KITE_API_SECRET, KITE_ACCESS_TOKEN (a LIVECLI_KITE_* variable beats its short form)
3. the access token stored by `livecli login` (only kite.access_token; see below)
4. ./livecli.toml in the current folder
5. the user config file, <user config dir>/config.toml (LIVECLI_CONFIG_DIR moves the folder)
6. defaults

`--config PATH` (`config_path`) names one file that REPLACES layers 4 and 5: a run with an explicit
file is reproducible whatever folder it starts in and whatever the user config holds.

The stored login token sits above both files because a fresh `livecli login` should win over
an old token pasted into a file. It is skipped when it was issued for a different api_key, and
when it has expired while a file still supplies a token (an expired login must not hide a token
the user has put in a file since). Like harlequin, problems are reported as one ConfigError
naming the file (or variable), the key, and the fix; every problem of every layer at once (one
line, `N problems: 1) ...; 2) ...`), so a user fixes a file in one pass. A bad value given on the
command line is a UsageError naming the option the user typed (the schema's `flag`).
"""

from __future__ import annotations

import difflib
import logging
import os
import stat
import time
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from livecli.config import paths
from livecli.config.schema import (
    ALL_SECTIONS,
    EXCHANGES,
    SECTIONS,
    SESSIONS_SECTION,
    WATCHLISTS_SECTION,
    BadValue,
    FieldSpec,
    KiteSettings,
    PublishSettings,
    ServeSettings,
    StoreSettings,
    StreamSettings,
    coerce,
    field_specs,
    parse_session,
    parse_watchlist,
)
from livecli.config.settings import Settings
from livecli.config.token_store import load_stored_token
from livecli.core.text import printable
from livecli.errors import ConfigError, UsageError

log = logging.getLogger("livecli.config")

SHORT_ENV = {
    "KITE_API_KEY": "kite.api_key",
    "KITE_API_SECRET": "kite.api_secret",
    "KITE_ACCESS_TOKEN": "kite.access_token",
}
# LIVECLI_* variables that are not settings: folders and debugging switches.
NON_SETTING_ENV = frozenset(
    {paths.ENV_CONFIG_DIR, paths.ENV_DATA_DIR, paths.ENV_CACHE_DIR, "LIVECLI_DEBUG"}
)
SESSION_EXCHANGES = (*EXCHANGES, "INDICES")

MAX_PROBLEMS_SHOWN = 8  # a config error is one line: beyond this many, "and N more"

_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)  # the CLI's handler adds `livecli: warning: `


class _Problems:
    """Every problem found while loading, so one run reports them all, not only the first.

    Problems in files and the environment are config errors (exit 9); problems in the values of
    command-line options are usage errors (exit 2), named after the option the user typed.
    """

    def __init__(self) -> None:
        self.config: list[tuple[str, str]] = []  # (where, what)
        self.usage: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.config.append((where, what))

    def raise_any(self) -> None:
        if self.config:
            raise ConfigError(_one_line(self.config))
        if self.usage:
            raise UsageError(_one_line([("", what) for what in self.usage]))


def _one_line(problems: list[tuple[str, str]]) -> str:
    """`WHERE: WHAT` for one problem; `WHERE: 3 problems: 1) ...; 2) ...` for several."""
    places = {where for where, _ in problems}
    same = len(places) == 1
    texts = [what if same or not where else f"{where}: {what}" for where, what in problems]
    if len(texts) == 1:
        body = texts[0]
    else:
        shown = texts[:MAX_PROBLEMS_SHOWN]
        body = f"{len(texts)} problems: " + "; ".join(
            f"{i}) {t}" for i, t in enumerate(shown, 1)
        )
        if len(texts) > len(shown):
            body += f"; and {len(texts) - len(shown)} more"
    prefix = next(iter(places)) if same else ""
    return f"{prefix}: {body}" if prefix else body


class _Builder:
    """Accumulates values layer by layer, lowest precedence first; later layers overwrite."""

    def __init__(self, specs: dict[str, FieldSpec]) -> None:
        self.specs = specs
        self.values: dict[str, Any] = {k: s.default for k, s in specs.items()}
        self.sources: dict[str, str] = dict.fromkeys(specs, "default")
        self.sessions: dict[str, str] = {}
        self.watchlists: dict[str, list[str]] = {}
        self.problems = _Problems()

    def set(self, key: str, value: Any, source: str) -> None:
        if key.startswith(f"{SESSIONS_SECTION}."):
            self.sessions[key.split(".", 1)[1]] = value
        else:
            self.values[key] = value
        self.sources[key] = source


def _example(spec: FieldSpec) -> str:
    default = spec.default
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, (int, float)):
        return f"{default:g}" if isinstance(default, float) else str(default)
    if isinstance(default, list):
        return "[" + ", ".join(f'"{v}"' for v in default) + "]"
    if default is None:
        return '"..."'
    return f'"{default}"'


def _check_value(spec: FieldSpec, raw: Any, *, from_text: bool, base: Path) -> Any:
    """The checked value, or raises BadValue saying what the setting expects."""
    value = coerce(spec, raw, from_text=from_text)
    if spec.kind == "path" and not value.is_absolute():
        value = base / value
    return value


def _session_problem(exchange: str, raw: Any) -> tuple[str, str | None]:
    """(EXCHANGE, problem or None) for a [sessions] entry."""
    ex = exchange.strip().upper()
    if ex not in SESSION_EXCHANGES:
        return ex, (f"sessions.{printable(exchange)} is not an exchange; use one of "
                    f"{', '.join(SESSION_EXCHANGES)}")
    try:
        parse_session(raw)
    except BadValue as exc:
        return ex, f"sessions.{ex} {exc}"
    return ex, None


# --- files ---------------------------------------------------------------------------------
def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, or raises ConfigError (a file that cannot be read has one problem)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; check the path given to --config") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}; check its permissions"
        ) from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: invalid TOML: {exc}; fix the syntax (strings need quotes, sections look "
            f"like [stream], see config.example.toml)"
        ) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(
            f"{path}: arrays or tables nested too deeply to read; no livecli setting nests "
            "more than one level (see config.example.toml)"
        ) from None


def _warn_if_exposed(path: Path, doc: dict[str, Any]) -> None:
    """Warn when a file holding Kite secrets can be read by other users of the machine."""
    kite = doc.get("kite")
    if os.name != "posix" or not isinstance(kite, dict):
        return
    if not (kite.get("api_secret") or kite.get("access_token")):
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _warn_once(
            f"perm:{path.resolve()}",
            f"{path} holds Kite secrets and is readable by other users; run `chmod 600 {path}`",
        )


def _file_layer(b: _Builder, path: Path, source: str) -> None:
    try:
        doc = _read_toml(path)
    except ConfigError as exc:
        b.problems.add("", str(exc))
        return
    _warn_if_exposed(path, doc)
    where = str(path)
    for section, body in doc.items():
        if not isinstance(body, dict):
            owner = [s for s, cls in SECTIONS.items() if section in {f.name for f in fields(cls)}]
            hint = f"put it under [{owner[0]}]" if owner else "remove it"
            b.problems.add(where, f"setting '{printable(section)}' is outside any section; {hint}")
            continue
        if section not in ALL_SECTIONS:
            b.problems.add(where, f"unknown section [{printable(section)}]; known sections are "
                           + ", ".join(f"[{s}]" for s in ALL_SECTIONS))
            continue
        for name, raw in body.items():
            if section == WATCHLISTS_SECTION:
                try:
                    b.watchlists[name] = parse_watchlist(name, raw)
                except BadValue as exc:
                    b.problems.add(where, f"watchlists.{printable(name)} {exc}; e.g. "
                                   'banks = ["HDFCBANK", "NSE:ICICIBANK"] under [watchlists]')
                continue
            if section == SESSIONS_SECTION:
                ex, problem = _session_problem(name, raw)
                if problem:
                    b.problems.add(where, f'{problem}; e.g. {ex} = "09:00-23:30" under [sessions]')
                else:
                    b.set(f"sessions.{ex}", raw.strip(), source)
                continue
            key = f"{section}.{name}"
            spec = b.specs.get(key)
            if spec is None:
                known = [k.split(".", 1)[1] for k in b.specs if k.startswith(f"{section}.")]
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean '{section}.{close[0]}'?" if close else (
                    f"known keys in [{section}]: {', '.join(known)}"
                )
                b.problems.add(where, f"unknown setting '{printable(key)}'; {hint}")
                continue
            try:
                value = _check_value(spec, raw, from_text=False, base=path.parent)
            except BadValue as exc:
                b.problems.add(
                    where, f"{key} {exc}; e.g. {name} = {_example(spec)} under [{section}]"
                )
                continue
            b.set(key, value, source)


# --- environment and flags -----------------------------------------------------------------
def _env_layer(b: _Builder, env: Mapping[str, str], cwd: Path) -> None:
    entries: list[tuple[str, str, str]] = []  # (key, raw, variable)
    for var, key in SHORT_ENV.items():
        if env.get(var, "").strip():
            entries.append((key, env[var], var))
    for var in sorted(env):  # generic after short forms: LIVECLI_KITE_API_KEY wins
        if not var.startswith("LIVECLI_") or var in NON_SETTING_ENV or not env[var].strip():
            continue
        section, _, name = var[len("LIVECLI_"):].lower().partition("_")
        if section == SESSIONS_SECTION and name:
            entries.append((f"sessions.{name}", env[var], var))
        elif section in SECTIONS and f"{section}.{name}" in b.specs:
            entries.append((f"{section}.{name}", env[var], var))
        elif section in SECTIONS:
            _warn_once(f"env:{var}", f"ignoring {var}: [{section}] has no setting '{name}'")
    for key, raw, var in entries:
        where = f"environment variable {var}"
        if key.startswith("sessions."):
            ex, problem = _session_problem(key.split(".", 1)[1], raw)
            if problem:
                b.problems.add(where, f'{problem}; e.g. {var}="09:00-23:30"')
            else:
                b.set(f"sessions.{ex}", raw.strip(), f"env {var}")
            continue
        spec = b.specs[key]
        try:
            value = _check_value(spec, raw, from_text=True, base=cwd)
        except BadValue as exc:
            example = _example(spec).strip(chr(34)).strip("[]")
            b.problems.add(where, f"{key} {exc}; e.g. {var}={example}")
            continue
        b.set(key, value, f"env {var}")


def _shown(raw: Any) -> str:
    """An option's value as the user typed it, control characters escaped."""
    if isinstance(raw, (list, tuple)):
        return ", ".join(printable(str(v)) for v in raw)
    return printable(str(raw))


def _flag_layer(b: _Builder, overrides: Mapping[str, Any], cwd: Path) -> None:
    """Command-line values: a bad one is a usage error named after its option (`--exchange`)."""
    for key, raw in overrides.items():
        if raw is None:
            continue
        if key.startswith("sessions."):
            ex, problem = _session_problem(key.split(".", 1)[1], raw)
            if problem:
                b.problems.usage.append(f"option {problem}")
            else:
                b.set(f"sessions.{ex}", raw.strip(), "flag")
            continue
        spec = b.specs.get(key)
        if spec is None:
            # A caller's mistake (the CLI or a library user), not a bad value: a config error.
            b.problems.add("", f"unknown setting {key!r} given as an option")
            continue
        try:
            value = _check_value(spec, raw, from_text=isinstance(raw, str), base=cwd)
        except BadValue as exc:
            flag = spec.meta.get("flag")
            named = f"{flag} '{_shown(raw)}'" if flag else f"option {key} '{_shown(raw)}'"
            b.problems.usage.append(f"{named}: {exc} (setting {key})")
            continue
        b.set(key, value, "flag")


def _token_layer(b: _Builder, data_dir: Path, now: float) -> float | None:
    """Apply `livecli login`'s stored token (see the module docstring); return its expiry."""
    stored = load_stored_token(data_dir)
    if stored is None:
        return None
    if b.values["kite.api_key"] is None:
        # A token is useless without the key it was issued for, so adopt that key too.
        b.set("kite.api_key", stored.api_key, f"login {stored.path}")
    if stored.api_key != b.values["kite.api_key"]:
        return None
    token_source = b.sources["kite.access_token"]
    above = token_source == "flag" or token_source.startswith("env ")
    if not above and (now < stored.expires_at or b.values["kite.access_token"] is None):
        b.set("kite.access_token", stored.access_token, f"login {stored.path}")
    if b.values["kite.access_token"] == stored.access_token:
        return stored.expires_at
    return None


def load_settings(
    config_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    now: float | None = None,
) -> Settings:
    """The effective settings for this run; raises ConfigError naming the file, key and fix.

    `overrides` holds command-line values under dotted keys ("stream.exchange", "kite.api_url",
    "sessions.MCX"); None values mean "flag not given" and are skipped.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    now = time.time() if now is None else now
    cfg_dir, data, cache = paths.config_dir(env), paths.data_dir(env), paths.cache_dir(env)

    b = _Builder(field_specs())
    b.values["store.path"] = data / paths.STORE_FILE_NAME

    files: list[Path] = []
    if config_path is not None:
        path = Path(config_path).expanduser()
        if not path.is_absolute():
            path = cwd / path
        _file_layer(b, path, f"file {path}")
        files.append(path)
    else:
        user_file = cfg_dir / paths.CONFIG_FILE_NAME
        if user_file.is_file():
            _file_layer(b, user_file, f"user config {user_file}")
            files.append(user_file)
        local = cwd / paths.LOCAL_CONFIG_NAME
        if local.is_file():
            _file_layer(b, local, f"file ./{paths.LOCAL_CONFIG_NAME}")
            files.append(local)

    _env_layer(b, env, cwd)
    _flag_layer(b, overrides or {}, cwd)
    b.problems.raise_any()
    # Applied last but ranked below env and flags: it never replaces a value they set.
    expires_at = _token_layer(b, data, now)

    def section(name: str, cls: type) -> Any:
        return cls(**{k.split(".", 1)[1]: v for k, v in b.values.items() if k.startswith(f"{name}.")})

    return Settings(
        kite=section("kite", KiteSettings),
        stream=section("stream", StreamSettings),
        store=section("store", StoreSettings),
        serve=section("serve", ServeSettings),
        publish=section("publish", PublishSettings),
        sessions=dict(b.sessions),
        watchlists=dict(b.watchlists),
        config_dir=cfg_dir,
        data_dir=data,
        cache_dir=cache,
        files=tuple(files),
        token_expires_at=expires_at,
        sources=dict(b.sources),
    )
