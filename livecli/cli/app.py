"""The `livecli` command: one Typer app, each command in a module of its own.

This module is the command table (each command's one-line summary and examples) and the
conventions every command shares: `-h`/`--help`, `--version`, placeholders that say what a
value is, and usage mistakes reported like every other livecli error, in one line on stderr
with exit code 2.

Command modules import pandas, pyarrow, kiteconnect and twisted inside the command body, never
at module level, so `livecli --help` stays fast (tests/test_import_hygiene.py holds us to it).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from livecli import __version__
from livecli.cli.errors import EXIT_INTERRUPTED, EXIT_USAGE, report

try:  # typer 0.2x carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

# Click 8.2 raises this for a bare `livecli`; older versions print the help themselves.
_NO_ARGS: Any = getattr(click_errors, "NoArgsIsHelpError", ())

HELP_OPTIONS = ["-h", "--help"]


class _FastHelp:
    """`--help` that never costs Typer's pydantic import.

    Typer coerces a parameter whose value is not already a bool through pydantic, imported on
    first use (about 150 ms); the help flag's value is None when not given, so `livecli
    candles --help` paid it for the group's own help flag. A False default skips it.
    """

    def get_help_option(self, ctx: Any) -> Any:
        opt = super().get_help_option(ctx)  # type: ignore[misc]
        if opt is not None and opt.default is None:
            opt.default = False
        return opt


def _placeholder(param: Any) -> str:
    """argparse's rule for a value nobody named: the option's long name in capitals."""
    longest: str = max(param.opts, key=len) if param.opts else param.name
    return longest.lstrip("-").upper().replace("-", "_")


class LivecliCommand(_FastHelp, TyperCommand):
    """A command whose help names values (SYMBOL, FILE, INTERVAL), never Python types."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            is_flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
            if param.metavar is None and not is_flag:
                param.metavar = _placeholder(param)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                # Typer appends `<list[str]>` after an argument's name; its placeholder says it.
                name = f"{param.metavar}{'...' if param.nargs != 1 else ''}"
                args.append((name, record[1]))
            else:
                opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class LivecliGroup(_FastHelp, TyperGroup):
    """The top-level `livecli`."""


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"livecli {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="livecli",
    cls=LivecliGroup,
    epilog="Run `livecli COMMAND -h` for a command's options and examples.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": HELP_OPTIONS},
)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_show_version,
                           help="Print livecli's version and exit.")
    ] = False,
) -> None:
    """Live Zerodha Kite Connect market data: exact OHLCV candles and a terminal dashboard."""


def _examples(*lines: str) -> str:
    # \b keeps click from re-wrapping the block into one paragraph.
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


# name, module, summary (shown whole in `livecli --help`: keep it under 60 characters),
# examples (tests/test_cli_conventions.py checks each option they use exists).
COMMANDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("stream", "cmd_stream", "Stream live ticks into candles: dashboard or JSON lines.", (
        "livecli stream RELIANCE INFY 'NSE:NIFTY 50' --interval 5min",
        "livecli stream RELIANCE --jsonl --duration 60 > ticks.jsonl",
        "livecli stream RELIANCE INFY --sim --speed 60 --record",
        "livecli stream --attach http://127.0.0.1:8000 HDFCBANK",
        "livecli stream RELIANCE INFY --publish nats://feed-host:4222",
        "livecli stream --attach nats://feed-host:4222 INFY --jsonl",
    )),
    ("candles", "cmd_candles", "Show or export candles from the store or a tick file.", (
        "livecli candles INFY --interval 45min",
        "livecli candles --interval 5min --export",
        "livecli candles RELIANCE -i 15min -o out.parquet --from 2025-01-06",
        "livecli candles --ticks examples/sample_ticks.csv --interval 10min",
    )),
    ("chart", "cmd_chart", "Draw a symbol's candles: in the terminal or to a PNG.", (
        "livecli chart RELIANCE",
        "livecli chart INFY --interval 15min --from 2025-01-06",
        "livecli chart RELIANCE -i 5min --output chart.png",
    )),
    ("reconcile", "cmd_reconcile", "Check the store's candles against Kite's history.", (
        "livecli reconcile",
        "livecli reconcile RELIANCE INFY --date 2025-12-10 --interval 5min",
        "livecli reconcile --tolerance 0.1% --json --db ~/data/livecli.db",
    )),
    ("ticks", "cmd_ticks", "List or export the raw ticks a store recorded.", (
        "livecli ticks",
        "livecli ticks RELIANCE --export --from 2025-01-06",
        "livecli ticks -o rec.parquet",
    )),
    ("status", "cmd_status", "Show the running (or last) stream session.", (
        "livecli status",
        "livecli status --follow",
        "livecli status --json --db ~/data/livecli.db",
        "livecli status --attach http://127.0.0.1:8000 --follow",
    )),
    ("login", "cmd_login", "Log in to Kite and store today's access token.", (
        "livecli login",
        "livecli login 'https://127.0.0.1/?request_token=AbC123&status=success'",
    )),
    ("config", "cmd_config", "Show every effective setting and its source.", (
        "livecli config",
        "livecli config --json --config ./livecli.toml",
    )),
    ("instruments", "cmd_instruments", "List or search an exchange's instruments.", (
        "livecli instruments RELI",
        "livecli instruments --exchange NFO NIFTY --limit 0",
    )),
    ("serve", "cmd_serve", "Serve one session to many clients: REST + WebSocket.", (
        "livecli serve RELIANCE INFY",
        "livecli serve --sim --port 8001",
        "livecli serve --host 0.0.0.0 --require-key",
        "livecli serve RELIANCE --publish nats://feed-host:4222",
    )),
    ("sim", "cmd_sim", "Run the local Kite stand-in with a simulated market.", (
        "livecli sim --speed 60",
        "livecli sim --port 0 --api-port 0 --seed 7 --date 2025-12-10",
    )),
)


def _register() -> None:
    from importlib import import_module

    for name, module, summary, examples in COMMANDS:
        mod = import_module(f"livecli.cli.{module}")
        func = getattr(mod, name)
        app.command(name, cls=LivecliCommand, help=getattr(mod, "HELP", None) or func.__doc__,
                    short_help=summary, epilog=_examples(*examples))(func)


_register()


class _StderrLines(logging.Handler):
    """One `livecli: warning: ...` line per record, on whatever sys.stderr is at that moment
    (the dashboard redirects it above the live display)."""

    _livecli_cli = True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"livecli: {record.levelname.lower()}: {record.getMessage()}\n")
        except Exception:
            self.handleError(record)


def _log_to_stderr() -> None:
    """Warnings from the library (an exposed secrets file, Kite's error messages) to stderr."""
    logger = logging.getLogger("livecli")
    if not any(isinstance(h, _StderrLines) for h in logger.handlers):
        logger.addHandler(_StderrLines())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG if os.environ.get("LIVECLI_DEBUG") else logging.WARNING)


def usage_line(exc: click_errors.UsageError, args: list[str]) -> str:
    """Typer's own usage error (unknown option, missing argument, bad value) as livecli's line."""
    msg = " ".join(exc.format_message().split()).rstrip(".")
    possibilities = getattr(exc, "possibilities", None)
    param = getattr(exc, "param", None)
    if possibilities:  # an option misspelt: click's "(Possible options: ...)" as a question
        msg = f"{exc.message}; did you mean {' or '.join(sorted(possibilities))}?"
    elif isinstance(exc, click_errors.BadParameter) and param is not None and exc.message:
        # "Invalid value for '--limit' / '-n': Input should be ..." names the option once
        name = param.metavar if param.param_type_name == "argument" else max(param.opts, key=len)
        detail = " ".join(exc.message.split()).rstrip(".")
        msg = f"invalid value for {name}: {detail[:1].lower()}{detail[1:]}"
    if msg[1:2].islower():  # "No such option" -> "no such option"; "NSE ..." stays
        msg = msg[0].lower() + msg[1:]
    if exc.ctx is not None:
        where = exc.ctx.command_path
    else:  # the option parser raises some errors before it knows its command
        names = {name for name, *_ in COMMANDS}
        where = " ".join(["livecli", *[a for a in args if a in names][:1]])
    return f"livecli: error: {msg} (see `{where} --help`)"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app, turning every error into one line and an exit code."""
    _log_to_stderr()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="livecli", standalone_mode=False)
    except _NO_ARGS as exc:  # plain `livecli`: the help, as a request
        typer.echo(exc.format_message())
        code = 0
    except click_errors.UsageError as exc:
        sys.stderr.write(usage_line(exc, args) + "\n")
        code = EXIT_USAGE
    except click_errors.ClickException as exc:
        sys.stderr.write(f"livecli: error: {' '.join(exc.format_message().split())}\n")
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        code = EXIT_INTERRUPTED
    except SystemExit:
        raise
    except BaseException as exc:  # the only place errors become exit codes
        code = report(exc)
    sys.exit(code if isinstance(code, int) else 0)
