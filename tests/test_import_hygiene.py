"""`livecli --help` and the core stay light: heavy packages load only where a command needs them."""

from __future__ import annotations

import subprocess
import sys

from tests.cli import REPO

HEAVY = ("pandas", "pyarrow", "kiteconnect", "twisted", "autobahn", "websockets", "numpy",
         "requests", "rich.live")


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


def test_help_imports_no_heavy_package():
    code = (
        "from livecli.cli.app import main\n"
        "for argv in (['--help'], ['stream', '--help'], ['candles', '--help'], ['status', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass"
    )
    assert _loaded_after(code) == []


def test_the_core_imports_no_outer_layer_and_no_io_library():
    code = (
        "import livecli.core.engine, livecli.core.intervals, livecli.core.sessions, "
        "livecli.core.ticks, livecli.core.candles, livecli.core.timeutil, livecli.core.history\n"
        "bad = [m for m in sys.modules if m.startswith(('livecli.kite', 'livecli.sim', "
        "'livecli.store', 'livecli.session', 'livecli.dashboard', 'livecli.cli', 'livecli.config',"
        " 'rich', 'typer', 'socket', 'sqlite3', 'asyncio'))]\n"
        "assert not bad, bad"
    )
    assert _loaded_after(code) == []


def test_core_sources_import_nothing_from_the_outer_layers():
    outer = ("livecli.kite", "livecli.sim", "livecli.store", "livecli.session",
             "livecli.dashboard", "livecli.cli", "livecli.config", "rich", "typer", "threading",
             "socket", "sqlite3", "subprocess")
    for path in sorted((REPO / "livecli" / "core").glob("*.py")):
        text = path.read_text()
        for mod in outer:
            assert f"import {mod}" not in text and f"from {mod}" not in text, (path.name, mod)
