"""Running the real `livecli` command in a subprocess, hermetically."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_TICKS = REPO / "examples" / "sample_ticks.csv"


def hermetic_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment with no Kite credentials and every livecli folder inside `tmp`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KITE_", "LIVECLI_"))}
    env.update(
        HOME=str(tmp), LIVECLI_CONFIG_DIR=str(tmp / "config"), LIVECLI_DATA_DIR=str(tmp / "data"),
        LIVECLI_CACHE_DIR=str(tmp / "cache"), PYTHONPATH=str(REPO), COLUMNS="160",
    )
    env.update(extra)
    return env


def run(args: list[str], tmp: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "livecli", *args], cwd=tmp, env=hermetic_env(tmp, **env),
        capture_output=True, text=True, timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    """A failure reported the livecli way: its own exit code, one line, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("livecli: error: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
