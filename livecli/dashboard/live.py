"""Runs the dashboard on a thread of its own, so drawing never slows the tick path.

The session hands over a `provider` that builds a `DashboardSnapshot`; this runner calls it only
from its own thread, at most `refresh_per_s` times a second (capped at MAX_REFRESH_PER_S), and
draws the frame with rich's Live. Live's own refresh thread is off: one thread pulls and draws,
so a frame is never drawn from half-updated state and the rate bound is exact.

Inline by default (the final frame, saying why it stopped, stays on screen after exit); with
`screen=True` (the interactive dashboard, when keys are read) the frame is drawn on the
alternate screen, each frame repainting the whole screen, so nothing a key or a resize did can
leave a stale line, and the terminal's own screen and scrollback come back untouched on exit.
Rows are capped to the terminal height by the renderer, so the frame never scrolls. `poke()`
draws the next frame at once (a key was pressed) instead of at the next tick of the schedule.

A failure in the provider or in drawing is shown on the next frame and counted; it never ends
the thread or the process.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from livecli.dashboard.render import S_ERROR, render
from livecli.dashboard.snapshot import DashboardSnapshot

MAX_REFRESH_PER_S = 10.0
STOP_JOIN_TIMEOUT_S = 5.0


class DashboardRunner:
    """Pulls snapshots from `provider` and draws them until `stop()`.

    `start()` and `stop()` return promptly; the provider is never called on the caller's thread.
    """

    def __init__(
        self,
        provider: Callable[[], DashboardSnapshot],
        console: Console | None = None,
        refresh_per_s: float = 4.0,
        screen: bool = False,
    ) -> None:
        if not refresh_per_s > 0:
            raise ValueError(f"refresh_per_s must be > 0, got {refresh_per_s!r}")
        self.provider = provider
        self.console = console if console is not None else Console()
        self.refresh_per_s = min(float(refresh_per_s), MAX_REFRESH_PER_S)
        self.period_s = 1.0 / self.refresh_per_s
        self.frames = 0
        self.errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.screen = screen
        self._final_message: str | None = None
        self._thread: threading.Thread | None = None
        self._last_good: DashboardSnapshot | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> DashboardRunner:
        if self._thread is not None:
            raise RuntimeError("DashboardRunner.start() called twice")
        self._thread = threading.Thread(target=self._run, name="livecli-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self, final_message: str | None = None, timeout: float = STOP_JOIN_TIMEOUT_S) -> None:
        """Draw a last frame (with `final_message` as its status line) and restore the terminal.

        Waits at most `timeout` seconds for the dashboard thread, so a hung provider cannot hang
        the caller's shutdown.
        """
        if final_message is not None:
            self._final_message = final_message
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def poke(self) -> None:
        """Draw the next frame now (a key changed what is shown)."""
        self._wake.set()

    def __enter__(self) -> DashboardRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the dashboard thread ----------------------------------------------------------------
    def _frame(self, final: bool = False) -> tuple[RenderableType, DashboardSnapshot | None]:
        """The next frame and its snapshot; a failure becomes an error frame (snapshot None)."""
        try:
            snap = self.provider()
            if final and self._final_message is not None:
                snap = dataclasses.replace(snap, message=self._final_message)
            return render(snap, height=self.console.size.height), snap
        except Exception as exc:  # the dashboard must outlive any bug in what it draws
            return self._error_frame(exc, final), None

    def _error_frame(self, exc: BaseException, final: bool = False) -> RenderableType:
        """The last frame that drew, with the error under it, so the screen keeps its data."""
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        parts: list[RenderableType] = []
        last = self._last_good
        if last is not None:
            if final and self._final_message is not None:
                last = dataclasses.replace(last, message=self._final_message)
            parts.append(render(last))
        elif final and self._final_message is not None:
            parts.append(Text(self._final_message))
        parts.append(Text(f"dashboard error: {self.last_error}", style=S_ERROR))
        return Group(*parts)

    def _draw(self, live: Live, final: bool = False) -> None:
        frame, snap = self._frame(final)
        try:
            live.update(frame, refresh=True)
            if snap is not None:
                self._last_good = snap
        except Exception as exc:  # e.g. a snapshot value that fails while being laid out
            try:
                live.update(self._error_frame(exc, final), refresh=True)
            except Exception:
                self._last_good = None  # even the fallback failed: draw the bare error next time
        self.frames += 1

    def _run(self) -> None:
        live = Live(
            Text(""),
            console=self.console,
            auto_refresh=False,
            screen=self.screen,
            transient=False,
            redirect_stdout=True,
            redirect_stderr=True,
            vertical_overflow="crop",
        )
        try:
            live.start()
        except Exception as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        try:
            next_at = time.monotonic()
            while not self._stop.is_set():
                began = time.monotonic()
                self._draw(live)
                now = time.monotonic()
                # Keep to the schedule (never faster than the period, missed slots skipped, not
                # made up in a burst), and idle at least as long as the frame took, so a slow
                # frame can never take more than half of the process's time from the tick path.
                next_at = max(next_at + self.period_s, now + (now - began))
                self._wake.wait(max(0.0, next_at - now))
                self._wake.clear()
                if self._stop.is_set():
                    break
            self._draw(live, final=True)
        finally:
            try:
                live.stop()
            except Exception:
                pass
