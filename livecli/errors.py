"""Every failure livecli reports to a user, as one exception hierarchy.

Library code raises these with a message that names the problem and the fix; only the CLI
(`livecli.cli.errors`) turns them into exit codes. This module imports nothing, so any layer,
the core included, may raise them.
"""

from __future__ import annotations


class LivecliError(Exception):
    """Base of every error livecli explains to its user in one line."""


# --- input the user gave -------------------------------------------------------------------
class UsageError(LivecliError):
    """Arguments that contradict each other or are out of range."""


class IntervalError(LivecliError, ValueError):
    """An interval that is malformed, unknown, or longer than a session."""


class SymbolError(LivecliError):
    """A symbol that the instrument master (or the store) does not know."""


class TooManyInstrumentsError(LivecliError):
    """More instruments than Kite allows on one api_key (3 connections x 3000)."""


class ConfigError(LivecliError):
    """A config file that cannot be read or holds an invalid setting."""


# --- files ---------------------------------------------------------------------------------
class InputFileError(LivecliError):
    """A tick file that is missing, unreadable, or lacks a required column."""


class ExportError(LivecliError):
    """An export path that cannot be written (folder missing, not writable)."""


class OutputExistsError(ExportError):
    """An export would overwrite an existing file and --force was not given."""


class StoreError(LivecliError):
    """A candle store that cannot be opened, is not livecli's, or cannot be written."""


class NoDataError(LivecliError):
    """The store holds nothing for the request (no candles, no session)."""


# --- Kite ----------------------------------------------------------------------------------
class AuthError(LivecliError):
    """Missing, invalid or expired Kite credentials: the fix is `livecli login`."""


class KiteApiError(LivecliError):
    """Kite's REST API (or the stand-in) refused or failed a request."""


class ConnectionFailedError(LivecliError):
    """The ticker connection could not be kept up and gave up."""


class ReconcileMismatchError(LivecliError):
    """`livecli reconcile` found candles that differ from Kite's beyond the tolerance."""
