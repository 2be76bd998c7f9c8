"""Faults on a timetable, so a bad day at Kite can be rehearsed from the command line.

`livecli sim --fault drop@30 --fault silent@60+10` makes the stand-in cut every ticker link 30 s
after it starts and go silent (TCP open, not even heartbeats) from 60 s to 70 s; tests use the
same schedule through `StandIn.schedule_faults`. Each kind is one of the stand-in's fault methods:

    drop@S[+D]       cut every ticker connection at S (TCP abort, no close frame); with +D, also
                     every connection opened in the D seconds after (an outage)
    silent@S[+D]     send nothing at all, heartbeats included, from S for D seconds (no D: for good)
    reject@S[+D]     refuse the credentials from S for D seconds (no D: for good): ticker upgrades
                     get HTTP 403, REST calls a TokenException; open connections are left alone
    malformed@S[+D]  cut the next frame to every client short; with +D, every frame for D seconds
    text@S[+D]       send every client a {"type": "error"} text message; with +D, one a second

S and D are real seconds (decimals allowed), S counted from when the stand-in starts serving.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from livecli.errors import UsageError

if TYPE_CHECKING:
    from livecli.sim.standin import StandIn

KINDS: Final = ("drop", "silent", "reject", "malformed", "text")
FORMS: Final = (
    "use KIND@SECONDS or KIND@SECONDS+DURATION with KIND one of "
    f"{', '.join(KINDS)} (e.g. drop@30, silent@10+8)"
)
TEXT_MESSAGE: Final = "livecli sim: a rehearsed error message (--fault text)"
_SPEC = re.compile(r"^([a-z]+)@(\d+(?:\.\d*)?|\.\d+)(?:\+(\d+(?:\.\d*)?|\.\d+))?$")


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled fault: `kind` at `at_s` real seconds, lasting `duration_s` (None: see
    the module docstring for what each kind does without one)."""

    kind: str
    at_s: float
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"unknown fault kind {self.kind!r}: {FORMS}")
        if not (math.isfinite(self.at_s) and self.at_s >= 0):
            raise UsageError(f"a fault's time must be 0 or more seconds, got {self.at_s!r}")
        if self.duration_s is not None and not (
                math.isfinite(self.duration_s) and self.duration_s > 0):
            raise UsageError(f"a fault's duration must be above 0 seconds, got {self.duration_s!r}")

    def __str__(self) -> str:
        spec = f"{self.kind}@{self.at_s:g}"
        return spec if self.duration_s is None else f"{spec}+{self.duration_s:g}"


def parse_fault(text: str) -> Fault:
    """`KIND@SECONDS[+DURATION]` as a Fault; a UsageError naming the accepted forms if not."""
    m = _SPEC.match(text.strip().lower())
    if m is None or m[1] not in KINDS:
        shown = repr(text if len(text) <= 60 else text[:57] + "...")  # repr escapes control chars
        raise UsageError(f"invalid --fault {shown}: {FORMS}")
    at, dur = float(m[2]), (None if m[3] is None else float(m[3]))
    if dur is not None and dur <= 0:
        raise UsageError(f"invalid --fault {text.strip()!r}: the duration must be above 0; {FORMS}")
    return Fault(m[1], at, dur)


def parse_faults(texts: Iterable[str]) -> list[Fault]:
    return [parse_fault(t) for t in texts]


@dataclass(frozen=True, slots=True)
class _Step:
    at_s: float
    fault: Fault
    action: Callable[[], str]  # does it; returns what happened, for the log line


class FaultSchedule:
    """Applies `faults` to `standin` at their times, on a daemon thread; `stop()` ends it.

    `report(line)` is called after each step with what it did (e.g. "drop@30: cut 3
    connections"). Times count from the construction of the schedule.
    """

    def __init__(self, standin: StandIn, faults: Iterable[Fault],
                 report: Callable[[str], None] | None = None) -> None:
        self.faults = sorted(faults, key=lambda f: f.at_s)
        self._standin = standin
        self._report = report
        self._steps = sorted((s for f in self.faults for s in self._expand(f)),
                             key=lambda s: s.at_s)
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self.done = 0  # steps applied
        self._thread = threading.Thread(target=self._run, name="livecli-sim-faults", daemon=True)
        self._thread.start()

    def _expand(self, f: Fault) -> list[_Step]:
        s, d = self._standin, f.duration_s
        until = "until stopped" if d is None else f"for {d:g} s"

        def drop() -> str:
            n = s.drop_connections(d)
            return f"cut {n} connections" + ("" if d is None else f", and every new one {until}")

        def silent() -> str:
            s.go_silent(d)
            return f"silent {until}"

        def reject(flag: bool) -> Callable[[], str]:
            def apply() -> str:
                s.reject_auth(flag)
                return f"credentials refused {until}" if flag else "credentials accepted again"
            return apply

        def malformed() -> str:
            if d is None:
                return f"the next frame to {s.send_malformed_frame()} clients cut short"
            s.malform_frames(d)
            return f"every frame cut short {until}"

        def text() -> str:
            return f"an error text sent to {s.send_text('error', TEXT_MESSAGE)} clients"

        if f.kind == "drop":
            return [_Step(f.at_s, f, drop)]
        if f.kind == "silent":
            return [_Step(f.at_s, f, silent)]
        if f.kind == "reject":
            steps = [_Step(f.at_s, f, reject(True))]
            if d is not None:
                steps.append(_Step(f.at_s + d, f, reject(False)))
            return steps
        if f.kind == "malformed":
            return [_Step(f.at_s, f, malformed)]
        return [_Step(f.at_s + i, f, text) for i in range(1 if d is None else max(1, math.ceil(d)))]

    def _run(self) -> None:
        for step in self._steps:
            if self._stop.wait(max(0.0, self._t0 + step.at_s - time.monotonic())):
                return
            try:
                what = step.action()
            except Exception as exc:  # a fault that cannot be applied (stopping) is skipped
                what = f"not applied: {exc}"
            self.done += 1
            if self._report is not None:
                self._report(f"{step.fault} at +{time.monotonic() - self._t0:.1f} s: {what}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)
