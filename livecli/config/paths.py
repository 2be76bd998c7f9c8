"""Where livecli keeps its files on this machine: config, data (store, login token) and cache.

Each folder follows the OS convention (platformdirs) and can be moved with an environment
variable, which is what tests and multi-account users need: LIVECLI_CONFIG_DIR,
LIVECLI_DATA_DIR, LIVECLI_CACHE_DIR. The mapping is passed in, never read from a global, so a
caller (or a test) decides which environment counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

APP_NAME = "livecli"
CONFIG_FILE_NAME = "config.toml"
LOCAL_CONFIG_NAME = "livecli.toml"
TOKEN_FILE_NAME = "token.json"
STORE_FILE_NAME = "livecli.db"
# The simulated market's default store, beside STORE_FILE_NAME: simulated candles never land
# in the store that holds Kite's.
SIM_STORE_FILE_NAME = "livecli-sim.db"

ENV_CONFIG_DIR = "LIVECLI_CONFIG_DIR"
ENV_DATA_DIR = "LIVECLI_DATA_DIR"
ENV_CACHE_DIR = "LIVECLI_CACHE_DIR"


def _from_env(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "")
    return Path(value).expanduser() if value.strip() else None


def config_dir(env: Mapping[str, str]) -> Path:
    """The folder of the user config file (LIVECLI_CONFIG_DIR, else the OS's config folder)."""
    from platformdirs import user_config_dir

    return _from_env(env, ENV_CONFIG_DIR) or Path(user_config_dir(APP_NAME, appauthor=False))


def data_dir(env: Mapping[str, str]) -> Path:
    """The folder of the candle store and the login token (LIVECLI_DATA_DIR, else the OS's)."""
    from platformdirs import user_data_dir

    return _from_env(env, ENV_DATA_DIR) or Path(user_data_dir(APP_NAME, appauthor=False))


def cache_dir(env: Mapping[str, str]) -> Path:
    """The folder of re-downloadable files such as the instrument master.

    LIVECLI_CACHE_DIR, else <LIVECLI_DATA_DIR>/cache when only the data folder was moved (so one
    variable keeps a test or a second account entirely apart), else the OS's cache folder.
    """
    from platformdirs import user_cache_dir

    explicit = _from_env(env, ENV_CACHE_DIR)
    if explicit is not None:
        return explicit
    data = _from_env(env, ENV_DATA_DIR)
    if data is not None:
        return data / "cache"
    return Path(user_cache_dir(APP_NAME, appauthor=False))


def user_config_file(env: Mapping[str, str]) -> Path:
    return config_dir(env) / CONFIG_FILE_NAME


def token_file(data: Path) -> Path:
    """Where `livecli login` keeps the access token, inside the data folder."""
    return data / TOKEN_FILE_NAME
