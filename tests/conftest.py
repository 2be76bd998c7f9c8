"""The hermetic environment every test that runs the real `livecli` command uses.

A run must never see the developer's Kite credentials, config, token or candle store, and must
run this checkout's code: `hermetic_env(tmp)` is the process environment for that, and the
`hermetic` fixture binds it (and a runner) to the test's tmp_path. Modules that need a variant
(Kite credentials pointing at a stand-in) pass the extra variables:

    env = hermetic_env(tmp_path, KITE_API_KEY="k", LIVECLI_KITE_API_URL=standin.api_url)
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Variables that would let the developer's machine into a run: their Kite account and livecli
# settings, and colour forced into pipes (output is compared as plain text).
_DROPPED_PREFIXES = ("KITE_", "LIVECLI_")
_DROPPED = ("FORCE_COLOR", "CLICOLOR_FORCE")


def hermetic_env(tmp: Path, **extra: str) -> dict[str, str]:
    """No Kite credentials, every livecli folder inside `tmp`, this checkout first on the path.

    Folders: tmp/cfg (config), tmp/data (token, store), tmp/cache (instrument lists) and
    tmp/home (HOME, so `~` leads nowhere real). Only home is created: the others are livecli's
    to make when it needs them.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED}
    (tmp / "home").mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(tmp / "home"),
        LIVECLI_CONFIG_DIR=str(tmp / "cfg"),
        LIVECLI_DATA_DIR=str(tmp / "data"),
        LIVECLI_CACHE_DIR=str(tmp / "cache"),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        PYTHONUNBUFFERED="1",
        COLUMNS="160",  # tables as wide as a terminal, not Rich's 80-column default for pipes
    )
    env.update(extra)
    return env


def run_livecli(args: list[str], cwd: Path, env: dict[str, str], *, timeout: float = 60,
                stdin: str | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    """`python -m livecli ARGS` in `cwd`, output captured as text."""
    return subprocess.run([sys.executable, "-m", "livecli", *args], cwd=cwd, env=env,
                          input=stdin, capture_output=True, text=True, timeout=timeout, **kw)


@dataclass
class Hermetic:
    """A test's own livecli world: `hermetic.run("candles", "--help")`."""

    root: Path

    def env(self, **extra: str) -> dict[str, str]:
        return hermetic_env(self.root, **extra)

    def run(self, *args: str, timeout: float = 60, stdin: str | None = None,
            **extra_env: str) -> subprocess.CompletedProcess[str]:
        return run_livecli(list(args), self.root, self.env(**extra_env), timeout=timeout,
                           stdin=stdin)


@pytest.fixture
def hermetic(tmp_path: Path) -> Hermetic:
    return Hermetic(tmp_path)


@pytest.fixture
def in_process_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """For a `LiveSession` in the test's own process: own config/data/cache folders under
    `tmp_path`, no Kite credentials or livecli settings of the machine's, no livecli.toml in the
    working folder (it is `tmp_path`). Returns `tmp_path`."""
    for var in list(os.environ):
        if var.startswith(_DROPPED_PREFIXES):
            monkeypatch.delenv(var)
    for name in ("config", "data", "cache"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("LIVECLI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LIVECLI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIVECLI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=["numpy", "compiled"])
def engine_kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each of the streaming engine's two paths (livecli/core/kernel.py): the
    numpy one, and the compiled kernel a session uses once it is loaded."""
    from livecli.core import kernel

    if request.param == "compiled":
        if kernel.load() is None:
            pytest.skip(f"the compiled kernel is not available here: {kernel.failed()}")
    else:
        monkeypatch.setattr(kernel, "_kernel", None)
    return str(request.param)
