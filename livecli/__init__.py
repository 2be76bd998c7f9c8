"""livecli: live Zerodha Kite Connect market data, exact OHLCV candles, a terminal dashboard.

`from livecli import LiveSession` is the Python API for strategy code. It is imported lazily so
that `import livecli` (and `livecli --help`) stays light.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["LiveSession", "__version__"]

# Library use: nothing livecli logs reaches a terminal unless the application configures logging.
logging.getLogger("livecli").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from livecli.session.live import LiveSession


def __getattr__(name: str) -> Any:
    if name == "LiveSession":
        from livecli.session.live import LiveSession

        return LiveSession
    raise AttributeError(f"module 'livecli' has no attribute {name!r}")
