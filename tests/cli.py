"""Running the real `livecli` command in a subprocess, hermetically (see tests/conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import REPO, hermetic_env, run_livecli

__all__ = ["REPO", "SAMPLE_TICKS", "assert_one_line_error", "hermetic_env", "run"]

SAMPLE_TICKS = REPO / "examples" / "sample_ticks.csv"


def run(args: list[str], tmp: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return run_livecli(args, tmp, hermetic_env(tmp, **env), timeout=timeout)


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
