"""The live terminal dashboard: a snapshot contract, its builder, a renderer, a runner thread.

`snapshot` is plain data (no rich import), so frames can be built and tested without loading the
drawing code; `builder` fills one from the session's typed read API; `render` draws one frame;
`live.DashboardRunner` redraws on its own thread.
"""

from livecli.dashboard.snapshot import (
    ConnectionPanel,
    DashboardSnapshot,
    InstrumentRow,
    TickLine,
    status_message,
)

__all__ = ["ConnectionPanel", "DashboardSnapshot", "InstrumentRow", "TickLine", "status_message"]
