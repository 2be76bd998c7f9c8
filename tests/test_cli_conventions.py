"""The conventions every livecli command keeps (clig.dev, gh, sqlite-utils), through the real CLI.

`-h` and `--help` everywhere, `--version`, an example in every command's help, placeholders that
say what a value is, defaults shown, whole summaries in `livecli --help`, and Typer's own usage
errors (unknown option, missing argument, bad value) in livecli's one-line form with exit 2.
The README is held to the code: every option its examples use exists, and its exit-code table
is the code's.
"""

from __future__ import annotations

import re
import shlex

import pytest

import livecli
from livecli.cli.app import COMMANDS
from livecli.cli.errors import EXIT_CODES, EXIT_INTERRUPTED, EXIT_UNEXPECTED
from tests.cli import REPO, assert_one_line_error, run

NAMES = [name for name, *_ in COMMANDS]
README = (REPO / "README.md").read_text()


@pytest.fixture(scope="module")
def helps(tmp_path_factory) -> dict[str, str]:
    """`livecli NAME --help` of every command, and of livecli itself (key "")."""
    tmp = tmp_path_factory.mktemp("help")
    out = {}
    for name in ["", *NAMES]:
        proc = run([name, "--help"] if name else ["--help"], tmp, COLUMNS="80")
        assert proc.returncode == 0 and proc.stderr == "", (name, proc.stderr)
        out[name] = proc.stdout
    return out


def test_version(tmp_path):
    proc = run(["--version"], tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"livecli {livecli.__version__}\n", "")


def test_bare_livecli_prints_the_help(tmp_path, helps):
    proc = run([], tmp_path, COLUMNS="80")
    assert (proc.returncode, proc.stdout) == (0, helps[""])


@pytest.mark.parametrize("name", NAMES)
def test_every_command_has_h_and_an_example(tmp_path, helps, name):
    short = run([name, "-h"], tmp_path, COLUMNS="80")
    assert short.returncode == 0 and short.stdout == helps[name]
    text = helps[name]
    assert f"Usage: livecli {name} " in text
    examples = text.split("Examples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith(f"    livecli {name}") for line in examples), examples
    assert "-h, --help" in text


@pytest.mark.parametrize("name", ["", *NAMES])
def test_help_names_values_never_python_types(helps, name):
    # Typer's own placeholders: <str>, <path>, <list[str]>, <int range>, <float>
    assert not re.search(r"<[a-z][\w\[\], ]*>", helps[name]), helps[name]


def test_placeholders_say_what_the_value_is(helps):
    text = " ".join(helps["candles"].split())
    for shown in ("[SYMBOL]...", "-i, --interval INTERVAL", "--ticks FILE", "--db FILE",
                  "--from DATE", "--to DATE", "-n, --limit N", "-o, --output PATH",
                  "--format csv|parquet", "--config FILE"):
        assert shown in text, shown


def test_defaults_are_shown(helps):
    candles = " ".join(helps["candles"].split())
    assert "[default: 1min]" in candles and "[default: 20; x>=1]" in candles
    assert "[default: (the user store, see `livecli config`)]" in candles  # decided at run time
    assert "[default: (the extension's, else csv)]" in candles
    assert "[default: 8765]" in " ".join(helps["sim"].split())


def test_summaries_are_whole_in_livecli_help(helps):
    listed = helps[""].split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in listed}
    assert rows == {name: summary for name, _, summary, _ in COMMANDS}
    assert "..." not in "".join(rows.values())


@pytest.mark.parametrize(("args", "needles"), [
    (["candles", "--bogus"], ("no such option: --bogus", "livecli candles --help")),
    (["candles", "--interva", "5min"], ("did you mean --interval?",)),
    (["stream"], ("missing argument", "livecli stream --help")),
    (["candles", "--limit", "x"], ("invalid value for --limit",)),
    (["candles", "--fill-gaps=yes"], ("--fill-gaps", "does not take a value")),
    (["status", "--every"], ("'--every' requires an argument", "livecli status --help")),
    (["nope"], ("no such command 'nope'", "livecli --help")),
])
def test_typer_usage_errors_are_one_line_with_exit_2(tmp_path, args, needles):
    proc = run(args, tmp_path)
    assert_one_line_error(proc, 2, *needles)
    assert "Usage:" not in proc.stderr + proc.stdout and "╭" not in proc.stderr


# --- the README says what the code does --------------------------------------------------------
def _documented_commands() -> list[list[str]]:
    block = README.split("## Using it\n", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [ln.split("  #", 1)[0].strip() for ln in block.splitlines()]
    return [shlex.split(ln.split(" > ", 1)[0]) for ln in lines if ln.startswith("livecli ")]


def _options_in(argv: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in argv if re.match(r"--?[a-zA-Z]", a)]


def _has_option(help_text: str, opt: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", help_text) is not None


def test_every_option_the_readme_uses_exists(helps):
    documented = _documented_commands()
    assert len(documented) >= len(NAMES)
    assert {argv[1] for argv in documented} == set(NAMES)  # every command has an example
    for argv in documented:
        for opt in _options_in(argv[2:]):
            assert _has_option(helps[argv[1]], opt), (" ".join(argv), opt)


def test_every_option_the_help_examples_use_exists(helps):
    for name, _, _, examples in COMMANDS:
        for line in examples:
            argv = shlex.split(line.split(" > ", 1)[0])
            assert argv[:2] == ["livecli", name], line
            for opt in _options_in(argv[2:]):
                assert _has_option(helps[name], opt), (line, opt)


def test_the_readme_exit_code_table_is_the_code():
    table = README.split("## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in table.splitlines()
            if re.match(r"\|\s*\d+\s*\|", ln)]
    by_class = {re.sub(r"`", "", r[2]): int(r[0]) for r in rows if r[2].startswith("`")}
    assert by_class == {cls.__name__: code for cls, code in EXIT_CODES}
    codes = [int(r[0]) for r in rows]
    assert codes == sorted(codes) and len(codes) == len(set(codes))
    assert set(codes) == {0, EXIT_UNEXPECTED, EXIT_INTERRUPTED, *by_class.values()}


def test_the_docs_the_code_cites_are_in_the_repo():
    docs = REPO / "docs"
    for name in ("CANDLES.md", "KITE.md", "jsonl.md"):
        assert (docs / name).is_file(), name
    rules = re.findall(r"^ ?(\d+)\. ", (docs / "CANDLES.md").read_text(), re.M)
    assert rules == [str(i) for i in range(1, 13)]  # the numbers the code cites
    cited = set()
    for path in [*(REPO / "livecli").rglob("*.py"), *(REPO / "tests").glob("*.py")]:
        cited |= {int(n) for n in re.findall(r"CANDLES\.md[^.\n]{0,20}?rules? (\d+)",
                                             path.read_text())}
    assert cited and cited <= set(range(1, 13))
    for path in [REPO / "README.md", *(REPO / "livecli").rglob("*.py")]:
        text = path.read_text()
        assert "shared/CANDLES.md" not in text and "shared/KITE.md" not in text, path
