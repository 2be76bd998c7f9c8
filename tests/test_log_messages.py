"""No log message carries the `livecli:` prefix itself: the CLI's handler adds it.

`livecli.cli.app` prints each log record as `livecli: <level>: <message>`; a message that starts
with `livecli: warning:` printed `livecli: warning: livecli: warning: ...` (issue 10). This scans
the package's source for logging calls whose message text starts with the prefix.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "livecli"
LEVELS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal"}


def _message(call: ast.Call) -> ast.expr | None:
    """The message argument of a logging call (`log.warning(msg, ...)`, `log.log(level, msg)`)."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    if isinstance(func.value, ast.Name) and func.value.id == "warnings":
        return None  # warnings.warn is not logging
    if func.attr in LEVELS:
        return call.args[0] if call.args else None
    if func.attr == "log":
        return call.args[1] if len(call.args) > 1 else None
    return None


def _text_start(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    if isinstance(node, ast.BinOp):  # "livecli: " + x, "livecli: %s" % x
        return _text_start(node.left)
    return None


def prefixed_log_calls(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (msg := _message(node)) is not None:
                text = _text_start(msg)
                if text is not None and text.lstrip().lower().startswith("livecli:"):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {text!r}")
    return found


def test_no_log_message_carries_the_livecli_prefix():
    assert prefixed_log_calls(PACKAGE) == []


def test_the_scan_finds_each_form_of_the_mistake(tmp_path):
    """The scan itself must be able to fail: each form below is caught, the clean ones are not."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "bad.py").write_text(
        "import logging\nlog = logging.getLogger('x')\n"
        "log.warning('livecli: warning: %s', 1)\n"
        "log.error(f'livecli: {1}')\n"
        "logging.getLogger('y').info('livecli: ' + 'x')\n"
        "log.log(30, 'Livecli: x')\n"
    )
    (pkg / "good.py").write_text(
        "import logging, sys, warnings\nlog = logging.getLogger('x')\n"
        "log.warning('cannot cache %s', 1)\n"
        "sys.stderr.write('livecli: note: x')\n"
        "warnings.warn('livecli: x')\n"
    )
    found = prefixed_log_calls(pkg)
    assert [f.split(":")[1] for f in found] == ["3", "4", "5", "6"], found


@pytest.mark.parametrize("level", [logging.WARNING, logging.ERROR])
def test_the_cli_handler_prints_the_prefix_once(level, capsys):
    from livecli.cli.app import _StderrLines

    handler = _StderrLines()
    handler.emit(logging.LogRecord("livecli.x", level, __file__, 1, "cannot cache %s", ("a",), None))
    err = capsys.readouterr().err
    assert err == f"livecli: {logging.getLevelName(level).lower()}: cannot cache a\n"
