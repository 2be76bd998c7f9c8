"""livecli's settings: typed values with precedence flags > env > login token > ./livecli.toml >
user config > defaults, each value remembering where it came from.

`from livecli.config import load_settings, Settings, mask` is the whole public surface; the
precedence rules are spelled out in `livecli.config.loader`, the settings in
`livecli.config.schema` and in config.example.toml.
"""

from __future__ import annotations

from livecli.config.loader import load_settings
from livecli.config.schema import (
    DEFAULT_API_URL,
    DEFAULT_LOGIN_URL,
    DEFAULT_WS_URL,
    KiteSettings,
    StoreSettings,
    StreamSettings,
    mask,
)
from livecli.config.settings import Settings

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_LOGIN_URL",
    "DEFAULT_WS_URL",
    "KiteSettings",
    "Settings",
    "StoreSettings",
    "StreamSettings",
    "load_settings",
    "mask",
]
