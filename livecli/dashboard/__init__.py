"""The live terminal dashboard: a snapshot contract, its builder, a renderer, a runner thread.

`snapshot` is plain data (no rich import), so frames can be built and tested without loading the
drawing code; `builder` fills one from the session's typed read API; `render` draws one frame
(`symbol` the symbol view, `chart` the candlestick chart); `live.DashboardRunner` redraws on its
own thread. Beside them, the input side: `terminal` (keys without echo, the terminal restored),
`keys` (bytes to key names), `state` (what the person chose) and `controls` (what each key does);
`interactive.Dashboard` wires the lot for `livecli stream`.
"""

from livecli.dashboard.snapshot import (
    ConnectionPanel,
    DashboardSnapshot,
    InstrumentRow,
    TickLine,
    status_message,
)

__all__ = ["ConnectionPanel", "DashboardSnapshot", "InstrumentRow", "TickLine", "status_message"]
