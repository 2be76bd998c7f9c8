"""The `livecli` command: one Typer app, each command in a module of its own.

Command modules import pandas, pyarrow, kiteconnect and twisted inside the command body, never
at module level, so `livecli --help` stays fast (tests/test_import_hygiene.py holds us to it).
"""

from __future__ import annotations

import sys

import typer

from livecli.cli.errors import EXIT_INTERRUPTED, report

app = typer.Typer(
    name="livecli",
    help="Live Zerodha Kite Connect market data: exact OHLCV candles and a terminal dashboard.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _register() -> None:
    from livecli.cli import cmd_candles

    app.command("candles")(cmd_candles.candles)
    from livecli.cli import cmd_config, cmd_instruments, cmd_login

    app.command("config")(cmd_config.config)
    app.command("instruments")(cmd_instruments.instruments)
    app.command("login")(cmd_login.login)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app, turning livecli errors into one line and an exit code."""
    try:
        app(args=argv, prog_name="livecli")
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit:
        raise
    except BaseException as exc:  # the only place errors become exit codes
        sys.exit(report(exc))
