"""The one place where livecli's errors become exit codes and one line on stderr.

Each kind of failure has its own code so scripts and cron jobs can tell them apart; the table is
also printed in the README. Nothing here prints a traceback: an unexpected error is reported in
one line too, with the hint to rerun with LIVECLI_DEBUG=1 for the full trace.
"""

from __future__ import annotations

import os
import sys
import traceback

from livecli import errors as e

EXIT_USAGE = 2  # also Typer's own usage errors (unknown option, missing argument), see app.main

# Ordered most specific first: the first matching class decides the code.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (e.OutputExistsError, 6),
    (e.ExportError, 5),
    (e.IntervalError, 3),
    (e.InputFileError, 4),
    (e.SymbolError, 7),
    (e.TooManyInstrumentsError, 8),
    (e.ConfigError, 9),
    (e.StoreError, 10),
    (e.NoDataError, 11),
    (e.AuthError, 12),
    (e.KiteApiError, 13),
    (e.ConnectionFailedError, 14),
    (e.ReconcileMismatchError, 15),
    (e.UsageError, EXIT_USAGE),
)
EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 130


def exit_code_for(exc: BaseException) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_UNEXPECTED


def report(exc: BaseException) -> int:
    """Print one line for `exc` on stderr and return its exit code."""
    code = exit_code_for(exc)
    if isinstance(exc, e.LivecliError):
        msg = str(exc)
    else:
        msg = f"unexpected {type(exc).__name__}: {exc} (rerun with LIVECLI_DEBUG=1 for the trace)"
        if os.environ.get("LIVECLI_DEBUG"):
            traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(f"livecli: error: {msg}\n")
    sys.stderr.flush()
    return code
