"""`livecli config`: every effective setting and where it came from, secrets masked.

When a setting "does not take", the answer is almost always another layer winning (an old
KITE_ACCESS_TOKEN in the shell, a livecli.toml in the current folder). This command shows the
winner for every key so the user can see it instead of guessing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from livecli.cli.options import ConfigOption


def _token_status(settings: Any, now: float) -> str:
    from livecli.config.token_store import describe_instant
    from livecli.kite.protocol import LOGIN_ADVICE

    expires = settings.token_expires_at
    if not settings.kite_configured:
        return "no Kite credentials configured: stream and instruments use the simulated market"
    if not settings.kite.access_token:
        return f"no access token: {LOGIN_ADVICE}"
    if expires is None:
        return "access token given directly (expiry unknown)"
    if now >= expires:
        return f"access token EXPIRED at {describe_instant(expires)}: {LOGIN_ADVICE}"
    return f"access token valid until {describe_instant(expires)}"


def _source(settings: Any) -> str:
    """KITE or SIMULATED: what `stream` and `instruments` would use (the same policy)."""
    from livecli.session.source import choose_source

    return choose_source("auto", settings).name


def config(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show every effective setting and where it came from (secrets masked)."""
    import time

    from livecli.config import load_settings

    settings = load_settings(config_path=config)
    now = time.time()
    rows = settings.display_items()
    folders = {
        "config_dir": str(settings.config_dir),
        "data_dir": str(settings.data_dir),
        "cache_dir": str(settings.cache_dir),
        "token_file": str(settings.token_file),
    }
    if as_json:
        doc = {
            "settings": {k: {"value": _json_value(settings, k), "source": s} for k, _, s in rows},
            "files": [str(p) for p in settings.files],
            **folders,
            "source": _source(settings),
            "token_expires_at": settings.token_expires_at,
            "token_status": _token_status(settings, now),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return

    footer = [
        "files read: " + (", ".join(str(p) for p in settings.files) or "(none)"),
        *(f"{k}: {v}" for k, v in folders.items()),
        f"source: {_source(settings)}",
        _token_status(settings, now),
    ]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table("setting", "value", "source", title="livecli settings")
        for key, value, source in rows:
            table.add_row(key, value, source)
        console = Console()
        console.print(table)
        for line in footer:
            console.print(line, highlight=False, markup=False)
    else:
        width = max(len(k) for k, _, _ in rows)
        vwidth = min(max(len(v) for _, v, _ in rows), 48)
        for key, value, source in rows:
            sys.stdout.write(f"{key:<{width}}  {value:<{vwidth}}  {source}\n")
        sys.stdout.write("\n" + "\n".join(footer) + "\n")


def _json_value(settings: Any, key: str) -> Any:
    from livecli.config.schema import SECRET_KEYS, URL_KEYS, shown_value

    value = settings.get(key)
    if key in SECRET_KEYS or key in URL_KEYS:
        return shown_value(key, value)
    if isinstance(value, Path):
        return str(value)
    return value
