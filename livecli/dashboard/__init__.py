"""The live terminal dashboard: a snapshot contract, a renderer, and a runner thread.

`snapshot` is plain data (no rich import), so the session can build frames without loading the
drawing code; `render` draws one frame; `live.DashboardRunner` redraws on its own thread.
"""

from livecli.dashboard.snapshot import (
    ConnectionPanel,
    DashboardSnapshot,
    InstrumentRow,
    TickLine,
    status_message,
)

__all__ = ["ConnectionPanel", "DashboardSnapshot", "InstrumentRow", "TickLine", "status_message"]
