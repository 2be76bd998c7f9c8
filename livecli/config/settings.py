"""The effective settings: one typed object, and for each value the place it came from.

Users get confused when a setting "does not take"; `livecli config` answers by printing every
value beside its source ("flag", "env KITE_API_KEY", "file ./livecli.toml", ...). This object is
what every other part of livecli reads; it is built by `livecli.config.loader.load_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livecli.config import paths
from livecli.config.schema import (
    SECRET_KEYS,
    URL_KEYS,
    KiteSettings,
    PublishSettings,
    ServeSettings,
    StoreSettings,
    StreamSettings,
    field_specs,
    mask,
    parse_session,
    shown_url,
)

if TYPE_CHECKING:
    from livecli.core.sessions import Session


@dataclass
class Settings:
    """Every effective setting, grouped as in the TOML file, plus where livecli keeps files."""

    kite: KiteSettings = field(default_factory=KiteSettings)
    stream: StreamSettings = field(default_factory=StreamSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    # Per-exchange session overrides, "HH:MM-HH:MM" IST, keyed by upper-case exchange.
    sessions: dict[str, str] = field(default_factory=dict)
    # Named lists of symbols ([watchlists]); `@name` on the command line stands for one.
    watchlists: dict[str, list[str]] = field(default_factory=dict)
    config_dir: Path = Path(".")
    data_dir: Path = Path(".")
    cache_dir: Path = Path(".")
    # Config files that were read, lowest precedence first.
    files: tuple[Path, ...] = ()
    # When the access token in use came from (or matches) `livecli login`'s store: its expiry.
    token_expires_at: float | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """The value of "section.name" (e.g. "stream.mode") or "sessions.MCX"."""
        section, _, name = key.partition(".")
        if section == "sessions":
            return self.sessions.get(name.upper())
        return getattr(getattr(self, section), name)

    def source_of(self, key: str) -> str:
        """Where the value of `key` came from: "flag", "env NAME", "file PATH", ..., "default"."""
        section, _, name = key.partition(".")
        if section == "sessions":
            key = f"sessions.{name.upper()}"
        if key not in self.sources:
            raise KeyError(f"unknown setting {key!r}")
        return self.sources[key]

    @property
    def kite_configured(self) -> bool:
        """True when any Kite credential is set (api_key, api_secret or access token).

        The one source policy: a user who configured any part of a Kite account means Kite, so
        `stream` and `instruments` use Kite (and refuse to run without a valid access token)
        instead of falling back to the simulated market; only with none at all do they simulate.
        """
        kite = self.kite
        return bool(kite.api_key or kite.api_secret or kite.access_token)

    def store_path_for(self, simulated: bool) -> Path:
        """The candle store for a session of Kite's data or of the simulated market.

        The simulated market never shares Kite's default store: its default is `livecli-sim.db`
        beside `livecli.db` in the data folder. A store path the user chose (`[store] path`,
        LIVECLI_STORE_PATH, or a flag such as --db passed as the `store.path` override) is used
        as given for both, since the user named that file on purpose.
        """
        path = Path(self.store.path)
        if not simulated or self.sources.get("store.path", "default") != "default":
            return path
        return path.with_name(paths.SIM_STORE_FILE_NAME)

    @property
    def token_file(self) -> Path:
        return paths.token_file(self.data_dir)

    def items(self) -> list[tuple[str, Any, str]]:
        """(key, value, source) for every setting, in documentation order."""
        out = [(k, self.get(k), self.sources[k]) for k in field_specs()]
        out += [(f"sessions.{ex}", v, self.sources[f"sessions.{ex}"]) for ex, v in self.sessions.items()]
        return out

    def display_items(self) -> list[tuple[str, str, str]]:
        """Like `items`, values rendered as text with secrets masked: safe to print."""
        out = []
        for key, value, source in self.items():
            if key in SECRET_KEYS:
                text = mask(value)
            elif key in URL_KEYS and value:
                text = shown_url(value)
            elif value is None:
                text = "(not set)"
            elif isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, list):
                text = ", ".join(str(v) for v in value)
            else:
                text = str(value)
            out.append((key, text, source))
        return out

    def session_table(self) -> dict[str, Session]:
        """Exchange sessions: livecli's defaults with the [sessions] overrides applied."""
        from livecli.core.sessions import DEFAULT_SESSIONS, Session

        table = dict(DEFAULT_SESSIONS)
        for exchange, text in self.sessions.items():
            open_m, close_m = parse_session(text)
            table[exchange] = Session(exchange, open_m * 60, close_m * 60)
        return table
