"""`livecli --help` and the core stay light: heavy packages load only where a command needs them.

pydantic is on the list because Typer imports it (about 150 ms) the first time it converts a
value; `livecli candles --help` paid that for the group's own help flag until app.py's
`_FastHelp` gave the flag a bool default.
"""

from __future__ import annotations

import resource
import subprocess
import sys

from livecli.cli.app import COMMANDS
from tests.cli import REPO, hermetic_env

HEAVY = ("pandas", "pyarrow", "kiteconnect", "twisted", "autobahn", "websockets", "numpy",
         "requests", "rich.live", "pydantic", "matplotlib", "mplfinance")
HELP_BUDGET_S = 0.3  # the README's target for `livecli --help`, sub-commands' help included


def _loaded_after(code: str) -> list[str]:
    probe = (
        "import sys\n" + code + "\n"
        f"print('LOADED:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("LOADED:"), out.stdout[-500:]
    return [m for m in last.removeprefix("LOADED:").split(",") if m]


def test_help_and_version_import_no_heavy_package():
    argvs = [["--help"], ["--version"], [], *([name, flag] for name, *_ in COMMANDS
                                              for flag in ("--help", "-h"))]
    code = (
        "from livecli.cli.app import main\n"
        f"for argv in {argvs!r}:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass"
    )
    assert _loaded_after(code) == []


def _cpu_seconds(argv: list[str], env: dict[str, str], cwd, runs: int = 3) -> float:
    """The least CPU time (user + system) the command took in `runs` runs.

    CPU time, not wall time: on a machine shared with other work a process waits for a core,
    and that wait is not start-up cost.
    """
    best = float("inf")
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=True, timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


def test_help_is_fast(tmp_path):
    env = hermetic_env(tmp_path)
    for argv in (["--help"], ["candles", "--help"], ["stream", "-h"]):
        took = _cpu_seconds([sys.executable, "-m", "livecli", *argv], env, tmp_path)
        assert took < HELP_BUDGET_S, (argv, round(took, 3))


def test_the_core_imports_no_outer_layer_and_no_io_library():
    code = (
        "import livecli.core.engine, livecli.core.intervals, livecli.core.sessions, "
        "livecli.core.ticks, livecli.core.candles, livecli.core.timeutil, livecli.core.history\n"
        "bad = [m for m in sys.modules if m.startswith(('livecli.kite', 'livecli.sim', "
        "'livecli.store', 'livecli.session', 'livecli.dashboard', 'livecli.cli', 'livecli.config',"
        " 'rich', 'typer', 'socket', 'sqlite3', 'asyncio'))]\n"
        "assert not bad, bad"
    )
    # The streaming engine is columnar (issue 15): numpy is its one heavy import, by design.
    assert _loaded_after(code) == ["numpy"]


def test_core_sources_import_nothing_from_the_outer_layers():
    outer = ("livecli.kite", "livecli.sim", "livecli.store", "livecli.session",
             "livecli.dashboard", "livecli.cli", "livecli.config", "rich", "typer", "threading",
             "socket", "sqlite3", "subprocess")
    for path in sorted((REPO / "livecli" / "core").glob("*.py")):
        text = path.read_text()
        for mod in outer:
            assert f"import {mod}" not in text and f"from {mod}" not in text, (path.name, mod)
