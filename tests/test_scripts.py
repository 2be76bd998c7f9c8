"""./scripts/run and ./scripts/test: one shared install, announced on the first run.

The scripts run for real on a copy of the checkout; only the Python they are given is a stand-in
(a shell script that records what it is asked to do), since a real `pip install` needs the
network and minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli import REPO

FAKE_PYTHON = r"""#!/usr/bin/env bash
# Records every call; `-m venv DIR` makes DIR/bin/python (this script) and DIR/bin/livecli.
echo "$*" >> "$CALLS"
case "$1" in
  -c) exit "${PY_TOO_OLD:-0}" ;;
  -m)
    if [ "$2" = venv ]; then
      mkdir -p "$3/bin"
      cp "$0" "$3/bin/python"
      printf '#!/usr/bin/env bash\necho "livecli $*"\n' > "$3/bin/livecli"
      chmod +x "$3/bin/livecli"
    fi ;;
esac
"""

FIRST_RUN = "setting up .venv (first run, about 2 minutes)...\n"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "livecli"
    shutil.copytree(REPO / "scripts", root / "scripts")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return root


def script(root: Path, name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHON": str(root.parent / "python3"),
            "CALLS": str(root.parent / "calls.log"), **env}
    return subprocess.run([str(root / "scripts" / name), *args], env=full, capture_output=True,
                          text=True, timeout=60)


def calls(root: Path) -> list[str]:
    log = root.parent / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def installs(root: Path) -> list[str]:
    return [c for c in calls(root) if c.startswith("-m pip install")]


def test_first_run_says_what_it_installs_and_both_scripts_share_it(checkout):
    first = script(checkout, "run", "--version")
    assert first.returncode == 0, first.stderr
    assert first.stderr == FIRST_RUN
    assert first.stdout == "livecli --version\n"
    assert installs(checkout) == [
        f"-m pip install --quiet --disable-pip-version-check -e {checkout}[dev]"]

    tests = script(checkout, "test", "-q")  # the install scripts/run made serves the tests
    assert tests.returncode == 0 and tests.stderr == ""
    assert calls(checkout)[-1] == "-m pytest -q" and len(installs(checkout)) == 1
    again = script(checkout, "run", "status")
    assert again.stderr == "" and len(installs(checkout)) == 1


def test_a_changed_pyproject_installs_again_and_says_so(checkout):
    assert script(checkout, "test").returncode == 0
    with (checkout / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency\n")
    proc = script(checkout, "run", "--version")
    assert proc.returncode == 0 and proc.stderr == "updating .venv to match pyproject.toml...\n"
    assert len(installs(checkout)) == 2


def test_an_old_python_is_refused_before_anything_is_made(checkout):
    proc = script(checkout, "test", PY_TOO_OLD="1")
    assert proc.returncode == 2 and "needs Python 3.11 or newer" in proc.stderr
    assert not (checkout / ".venv").exists() and installs(checkout) == []
