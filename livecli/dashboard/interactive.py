"""The dashboard with its keys: builder, runner and key reader wired together, and undone.

`Dashboard.open()` is what `livecli stream` calls: on a terminal whose input is a terminal too,
keys are read (no echo) and the frame is drawn on the alternate screen; otherwise it is the
plain inline dashboard it always was. `close()` stops the keys first (the terminal's input
attributes back), then the runner (the alternate screen left), and is safe to call twice, so
every way out of `stream` (q, Ctrl-C, SIGTERM, an error) leaves the terminal as it found it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from livecli.dashboard.builder import SnapshotBuilder
from livecli.dashboard.controls import Controls
from livecli.dashboard.live import DashboardRunner
from livecli.dashboard.state import ViewState
from livecli.dashboard.terminal import KeyReader

if TYPE_CHECKING:
    from livecli.core.intervals import Interval
    from livecli.session.live import LiveSession


class Dashboard:
    """A running dashboard of `session`; `quit_requested` is set by `q`."""

    def __init__(self, builder: SnapshotBuilder, runner: DashboardRunner,
                 keys: KeyReader | None, controls: Controls | None) -> None:
        self.builder = builder
        self.runner = runner
        self.keys = keys
        self.controls = controls
        self.quit_requested = False

    @classmethod
    def open(cls, session: LiveSession, shown: Interval, *, title: str, refresh_per_s: float,
             on_quit: Callable[[], None], exchange: str = "NSE",
             expand: Callable[[str], list[str]] | None = None,
             interactive: bool | None = None) -> Dashboard:
        state = ViewState(shown)
        builder = SnapshotBuilder(session, shown, title=title, state=state)
        use_keys = KeyReader.available() if interactive is None else interactive
        runner = DashboardRunner(builder, refresh_per_s=refresh_per_s, screen=use_keys)
        builder.terminal_lines = lambda: runner.console.size.height
        dash = cls(builder, runner, None, None)
        if use_keys:
            def quit_now() -> None:
                dash.quit_requested = True
                on_quit()

            dash.controls = Controls(state, session, order=lambda: builder.order,
                                     symbol_of=builder.symbol_of, on_quit=quit_now,
                                     on_change=runner.poke, exchange=exchange, expand=expand)
            builder.interactive = True
            dash.keys = KeyReader(dash.controls)
            try:
                dash.keys.start(on_resume=runner.poke)
            except Exception:
                dash.keys = None  # no usable terminal after all: the plain dashboard
                builder.interactive = False
                runner.screen = False
        runner.start()
        return dash

    def close(self, final_message: str | None = None) -> None:
        keys, self.keys = self.keys, None
        if keys is not None:
            keys.stop()
        self.runner.stop(final_message=final_message)
