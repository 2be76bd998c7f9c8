"""The `livecli` command: one Typer app, each command in a module of its own.

Command modules import pandas, pyarrow, kiteconnect and twisted inside the command body, never
at module level, so `livecli --help` stays fast (tests/test_import_hygiene.py holds us to it).
"""

from __future__ import annotations

import logging
import os
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
    from livecli.cli import cmd_candles, cmd_stream

    app.command("stream", help=cmd_stream.HELP)(cmd_stream.stream)
    app.command("candles", help=cmd_candles.HELP)(cmd_candles.candles)
    from livecli.cli import cmd_config, cmd_instruments, cmd_login

    app.command("config")(cmd_config.config)
    app.command("instruments")(cmd_instruments.instruments)
    app.command("login")(cmd_login.login)
    from livecli.cli import cmd_sim

    app.command("sim")(cmd_sim.sim)
    from livecli.cli import cmd_status

    app.command("status")(cmd_status.status)
    from livecli.cli import cmd_ticks

    app.command("ticks", help=cmd_ticks.HELP)(cmd_ticks.ticks)
    from livecli.cli import cmd_serve; app.command("serve", help=cmd_serve.HELP)(cmd_serve.serve)  # noqa: E702, I001


_register()


def _optional_values(argv: list[str]) -> list[str]:
    """Let `--export` stand alone (`--export` names the file itself, `--export out.csv` not).

    Click options either always or never take a value; a bare `--export` becomes `--export=`.
    """
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--export":
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            looks_like_path = nxt is not None and not nxt.startswith("-") and (
                "/" in nxt or "\\" in nxt or nxt.lower().endswith((".csv", ".parquet", ".pq"))
            )
            if not looks_like_path:
                out.append("--export=")
                continue
        out.append(arg)
    return out


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


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app, turning livecli errors into one line and an exit code."""
    _log_to_stderr()
    args = _optional_values(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="livecli")
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit:
        raise
    except BaseException as exc:  # the only place errors become exit codes
        sys.exit(report(exc))
