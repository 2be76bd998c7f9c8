"""The dashboard draws what the snapshot says, never sits empty, and never blocks or dies.

Frames are drawn into a recording rich Console (a real terminal renderer writing to a StringIO);
the runner is the real thread with the real rich Live.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from datetime import datetime

import pytest
from rich.console import Console

from livecli.core.candles import Candle
from livecli.core.timeutil import IST
from livecli.dashboard.live import MAX_REFRESH_PER_S, DashboardRunner
from livecli.dashboard.render import (
    InstrumentTable,
    fit_columns,
    fmt_count,
    fmt_left,
    render,
    sparkline,
)
from livecli.dashboard.snapshot import (
    ConnectionPanel,
    DashboardSnapshot,
    InstrumentRow,
    TickLine,
    status_message,
)

# 2024-06-03 09:15:02 IST: a trading morning; on a New York host it is the previous evening.
NOW = datetime(2024, 6, 3, 9, 15, 2, tzinfo=IST).timestamp()
CANDLE_START = datetime(2024, 6, 3, 9, 15, tzinfo=IST).timestamp()


def make_console(width: int = 140, height: int = 50) -> Console:
    return Console(
        record=True, width=width, height=height, file=io.StringIO(), force_terminal=True,
        color_system="truecolor",
    )


def text_of(renderable, width: int = 140, height: int = 50) -> str:
    console = make_console(width, height)
    console.print(renderable)
    return console.export_text()


def row(i: int, **kw) -> InstrumentRow:
    price = 2950.05 + i
    fields = dict(
        symbol=f"SYM{i:03d}", exchange="NSE", instrument_token=1000 + i, last_price=price,
        prev_close=price - 10, change_pct=0.34, seconds_left=42.0,
        candle=Candle(1000 + i, 1, int(CANDLE_START), price - 1.5, price + 2.25, price - 3.75,
                      price, 12_345, None, 17, symbol=f"SYM{i:03d}", exchange="NSE"),
        closes=[100.0, 101.0, 102.0], ticks=321, last_tick_age_s=0.4, direction=1, flash=False,
    )
    fields.update(kw)
    return InstrumentRow(**fields)


def snapshot(rows=None, ticks=None, message=None, **conn) -> DashboardSnapshot:
    c = dict(source="SIMULATED", state="connected", last_message_age_s=0.2, ticks_per_s=123.4,
             reconnects=2, last_error="ConnectionResetError: peer went away", candles_stored=4567,
             late_ticks=3, bad_ticks=5, time_source="exchange", mode="full",
             db_path="/tmp/candles.db", future_ticks=6)
    c.update(conn)
    return DashboardSnapshot(
        title="livecli stream", interval_name="1min", now=NOW, connection=ConnectionPanel(**c),
        rows=[row(0)] if rows is None else rows,
        recent_ticks=ticks if ticks is not None else [
            TickLine(NOW - 2, "RELIANCE", 2950.05, 1_234_567, 0.34),
            TickLine(NOW - 1, "INFY", 1500.5, 98_765, -1.25),
        ],
        message=message,
    )


@pytest.fixture(params=["America/New_York", "UTC"])
def foreign_tz(request):
    """Run with the host in a zone that is not IST, then put the zone back."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


# --- the frame ---------------------------------------------------------------------------------
def test_frame_shows_header_instruments_ticks_and_connection():
    out = text_of(render(snapshot()))
    lines = out.splitlines()
    header = lines[0]
    assert "SIMULATED" in header and "livecli stream" in header and "1min" in header
    assert "2024-06-03 09:15:02 IST" in header and "connected" in header

    # Instruments: the row's price, change, forming candle OHLCV, time left, trend and ticks.
    sym_line = next(ln for ln in lines if "SYM000" in ln)
    for cell in ("NSE", "2,950.05", "+0.34%", "2,948.55", "2,952.30", "2,946.30", "12.3K",
                 "0:42", "▁▄█", "321"):
        assert cell in sym_line, (cell, sym_line)
    assert "Instruments" in out and "Latest ticks" in out and "Connection" in out

    # Latest ticks: newest on top, in IST.
    ticks_first = out.index("INFY")
    assert ticks_first < out.index("RELIANCE")
    infy = next(ln for ln in lines if "INFY" in ln)
    assert "09:15:01" in infy and "1,500.50" in infy and "-1.25%" in infy and "98.8K" in infy

    # Connection panel.
    for label, value in (("state", "connected"), ("ticks/s", "123.4"), ("reconnects", "2"),
                         ("last error", "ConnectionResetError"), ("candles stored", "4,567"),
                         ("late ticks", "3"), ("bad ticks", "5"), ("future ticks", "6"),
                         ("mode", "full"),
                         ("time source", "exchange"), ("db", "/tmp/candles.db"),
                         ("last message", "0.2s ago")):
        assert any(f"{label} {value}" in ln for ln in lines), (label, value)
    # Connected with data flowing: no status line between header and table.
    assert "waiting" not in out and "connecting" not in out


def test_kite_badge_and_missing_values_show_dashes():
    snap = snapshot(rows=[row(0, last_price=None, change_pct=None, candle=None, seconds_left=None,
                              closes=[], ticks=0, last_tick_age_s=None, direction=0)],
                    source="KITE", last_error=None, db_path=None)
    out = text_of(render(snap))
    assert out.splitlines()[0].lstrip().startswith("KITE")
    sym_line = next(ln for ln in out.splitlines() if "SYM000" in ln)
    assert sym_line.count("—") >= 7
    assert "last error —" in out and "db " not in out


@pytest.mark.parametrize(
    ("conn", "message", "rows", "expected"),
    [
        ({"state": "connecting"}, None, [], "connecting…"),
        ({"state": "connected"}, None, [], "waiting for the first tick"),
        ({"state": "connected"}, None, "no_price", "waiting for the first tick"),
        ({"state": "reconnecting", "detail": "reconnecting in 3 s (attempt 2)"}, None, None,
         "reconnecting in 3 s (attempt 2)"),
        ({"state": "reconnecting"}, "reconnecting in 5 s", None, "reconnecting in 5 s"),
        ({"state": "stale", "last_message_age_s": 12.0}, None, None, "no data for 12 s"),
        ({"state": "auth_failed", "last_error": "TokenException: token expired"}, None, [],
         "authentication failed: TokenException: token expired"),
        ({"state": "stopped", "detail": "market closed", "last_error": None}, None, None,
         "stopped: market closed"),
        ({"state": "closed", "detail": None, "last_error": "server closed the socket"}, None, [],
         "stopped: server closed the socket"),
        ({"state": "stopped"}, "stopped: interrupted (Ctrl-C)", None,
         "stopped: interrupted (Ctrl-C)"),
    ],
)
def test_screen_never_sits_empty(conn, message, rows, expected):
    if rows == "no_price":
        rows = [row(0, last_price=None)]
    snap = snapshot(rows=rows, message=message, **conn)
    assert status_message(snap) == expected
    out = text_of(render(snap))
    lines = out.splitlines()
    assert lines[1].strip() == expected  # the status line right under the header
    assert conn["state"] in lines[0]
    if rows == []:
        # The instruments panel says it too instead of showing an empty table.
        table_part = out[out.index("Instruments"):out.index("Latest ticks")]
        assert expected in table_part


def test_status_line_has_the_state_colour():
    console = make_console()
    segs = list(console.render(render(snapshot(rows=[], state="auth_failed", last_error="bad token"))))
    seg = next(s for s in segs if s.text.startswith("authentication failed"))
    assert seg.style.color.name == "red"


def test_receive_time_is_warned_about_only_in_ltp_and_quote_modes():
    for mode in ("ltp", "quote"):
        out = text_of(render(snapshot(time_source="receive", mode=mode)))
        warning = next(ln for ln in out.splitlines() if "receive time" in ln and "⚠" in ln)
        assert f"mode {mode}" in warning
        assert "time source receive time ⚠" in out
    out = text_of(render(snapshot(time_source="exchange", mode="full")))
    assert "receive" not in out


def _price_segment(snap: DashboardSnapshot, price_text: str):
    console = make_console()
    segs = list(console.render(render(snap), console.options))
    return next(s for s in segs if s.text.strip() == price_text)


def test_price_flashes_green_up_red_down_and_plain_otherwise():
    up = _price_segment(snapshot(rows=[row(0, flash=True, direction=1)]), "2,950.05")
    down = _price_segment(snapshot(rows=[row(0, flash=True, direction=-1)]), "2,950.05")
    calm = _price_segment(snapshot(rows=[row(0, flash=False, direction=1)]), "2,950.05")
    assert up.style.bgcolor.name == "green"
    assert down.style.bgcolor.name == "red"
    assert calm.style is None or calm.style.bgcolor is None
    # The ANSI the terminal receives carries the background colour too.
    console = make_console()
    console.print(render(snapshot(rows=[row(0, flash=True, direction=1)])))
    styled = console.export_text(styles=True)
    assert "\x1b[1;30;42m" in styled  # bold black on green


def test_times_are_ist_whatever_the_host_zone(foreign_tz):
    assert time.localtime(NOW).tm_hour != 9  # the host really is elsewhere
    out = text_of(render(snapshot()))
    assert "2024-06-03 09:15:02 IST" in out.splitlines()[0]
    assert "09:15:00" in next(ln for ln in out.splitlines() if "RELIANCE" in ln)


def test_rows_are_capped_to_the_terminal_and_the_rest_counted():
    rows = [row(i) for i in range(200)]
    out = text_of(render(snapshot(rows=rows)), height=50)
    lines = out.splitlines()
    assert len(lines) <= 50  # the frame fits the terminal, so Live never scrolls
    shown = sum(1 for ln in lines if "SYM" in ln and "NSE" in ln)
    assert 10 <= shown < 200
    assert f"… {200 - shown} more instruments hidden ({shown} of 200 shown" in out
    assert "SYM000" in out and "SYM199" not in out
    # A taller terminal shows more.
    taller = text_of(render(snapshot(rows=rows)), height=80).splitlines()
    assert sum(1 for ln in taller if "SYM" in ln and "NSE" in ln) == shown + 30
    # Few rows: all shown, no note.
    out = text_of(render(snapshot(rows=rows[:5])), height=50)
    assert "hidden" not in out and "SYM004" in out


def test_explicit_row_cap_and_minimum_on_tiny_terminals():
    rows = [row(i) for i in range(20)]
    out = text_of(render(snapshot(rows=rows), max_rows=6))
    assert "… 15 more instruments hidden (5 of 20 shown" in out
    table = InstrumentTable(rows, "x", reserved_lines=30)
    assert table.visible_limit(10) == 3  # a tiny terminal still shows some rows


def test_narrow_terminal_drops_minor_columns_but_keeps_symbol_and_price():
    keys = [c[0] for c in fit_columns(60)]
    assert {"symbol", "last", "chg"} <= set(keys) and "trend" not in keys and "exch" not in keys
    assert sum(c[2] for c in fit_columns(60)) + len(keys) - 1 <= 60
    assert [c[0] for c in fit_columns(400)][-1] == "age"  # everything fits on a wide screen
    out = text_of(render(snapshot()), width=80)
    assert all(len(ln) <= 80 for ln in out.splitlines())
    assert "2,950.05" in next(ln for ln in out.splitlines() if "SYM000" in ln)


def test_sparkline_and_cell_formats():
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([8, 1]) == "█▁"
    assert sparkline([5.0, 5.0, 5.0]) == "▄▄▄"
    assert sparkline([]) == ""
    assert sparkline([float("nan"), 1.0, 2.0]) == "▁█"
    assert len(sparkline(list(range(100)))) == 16
    assert fmt_left(42.2) == "0:43" and fmt_left(3725) == "1:02:05" and fmt_left(-1) == "0:00"
    assert fmt_count(950) == "950" and fmt_count(12_345) == "12.3K"
    assert fmt_count(4_560_000) == "4.56M" and fmt_count(None) == "—" and fmt_count(-1) == "—"


# --- the runner --------------------------------------------------------------------------------
class Provider:
    """Counts calls and the threads they came on; sets `reached` after `target` calls."""

    def __init__(self, target: int = 3, snap: DashboardSnapshot | None = None) -> None:
        self.calls = 0
        self.threads: set[int] = set()
        self.target = target
        self.reached = threading.Event()
        self.snap = snap or snapshot()
        self.fail_on: set[int] = set()
        self.overrides: dict[int, DashboardSnapshot] = {}

    def __call__(self) -> DashboardSnapshot:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.calls >= self.target:
            self.reached.set()
        if self.calls in self.fail_on:
            raise RuntimeError(f"provider broke on call {self.calls}")
        return self.overrides.get(self.calls, self.snap)


def test_runner_draws_on_its_own_thread_at_a_bounded_rate_and_stops_with_a_reason():
    console = make_console()
    provider = Provider(target=6)
    stdout_before = sys.stdout
    runner = DashboardRunner(provider, console=console, refresh_per_s=50)  # asks for too much
    assert runner.refresh_per_s == MAX_REFRESH_PER_S
    t0 = time.monotonic()
    runner.start()
    assert provider.reached.wait(10), "the dashboard never drew"
    elapsed = time.monotonic() - t0
    calls = provider.calls
    runner.stop("stopped: market closed")
    assert not runner.running
    assert threading.get_ident() not in provider.threads  # never on the caller's thread
    assert len(provider.threads) == 1
    # At most 10 frames a second (one extra for the first frame at t=0, one for jitter).
    assert calls <= elapsed * MAX_REFRESH_PER_S + 2, (calls, elapsed)
    assert provider.calls == calls + 1  # exactly one final frame after stop
    assert sys.stdout is stdout_before  # the terminal's streams are restored
    raw = console.file.getvalue()
    assert raw.rstrip().endswith("\x1b[?25h") or "\x1b[?25h" in raw[-200:]  # cursor shown again
    out = console.export_text()
    last_frame = out[out.rindex("livecli stream"):]
    assert "stopped: market closed" in last_frame and "SYM000" in last_frame


def test_runner_rate_follows_refresh_per_s():
    provider = Provider(target=3)
    runner = DashboardRunner(provider, console=make_console(), refresh_per_s=5)
    t0 = time.monotonic()
    runner.start()
    assert provider.reached.wait(10)
    elapsed = time.monotonic() - t0
    runner.stop()
    # Three frames at 5/s need at least two periods of 0.2 s between them.
    assert elapsed >= 0.4 - 0.05, elapsed


def test_runner_survives_provider_and_render_failures():
    console = make_console()
    provider = Provider(target=6)
    provider.fail_on = {2, 3}
    # Call 4 gives a snapshot that breaks while being laid out (inside Live), not in render().
    provider.overrides = {4: snapshot(rows=[row(0, symbol=None)])}
    runner = DashboardRunner(provider, console=console, refresh_per_s=10)
    runner.start()
    assert provider.reached.wait(10), "the runner died after a failure"
    assert runner.running
    runner.stop()
    assert runner.errors == 3
    out = console.export_text()
    assert "dashboard error: RuntimeError: provider broke on call 2" in out
    assert "dashboard error: TypeError" in out
    # Frames after the failures are whole again.
    assert "SYM000" in out.split("dashboard error")[-1]


def test_stop_does_not_hang_on_a_stuck_provider():
    release = threading.Event()
    entered = threading.Event()

    def stuck():
        entered.set()
        release.wait(10)
        return snapshot()

    runner = DashboardRunner(stuck, console=make_console(), refresh_per_s=4)
    runner.start()
    assert entered.wait(10)
    t0 = time.monotonic()
    runner.stop("stopped: test", timeout=0.3)
    assert time.monotonic() - t0 < 2.0
    release.set()
    runner._thread.join(10)
    assert not runner.running


def test_runner_rejects_bad_use():
    with pytest.raises(ValueError, match="refresh_per_s"):
        DashboardRunner(Provider(), refresh_per_s=0)
    runner = DashboardRunner(Provider(), console=make_console())
    runner.start()
    try:
        with pytest.raises(RuntimeError, match="twice"):
            runner.start()
    finally:
        runner.stop()
    assert not runner.running


def test_a_snapshot_of_the_first_rows_still_counts_every_instrument():
    # The session builds rows only for the first instruments; the panel counts them all.
    snap = snapshot(rows=[row(i) for i in range(20)])
    snap.total_rows = 9000
    out = text_of(render(snap, max_rows=6))
    assert "… 8995 more instruments hidden (5 of 9000 shown" in out
    assert f"Instruments · {snap.interval_name} · 9000" in out


def test_connection_panel_shows_the_warm_start_progress_then_what_history_gave():
    """Issue 13: a progress bar while Kite's history is fetched, then minutes and repairs."""
    out = text_of(render(snapshot(history_state="fetching", history_done=1, history_total=4)))
    assert "history ███░░░░░░░░░ 1/4 instruments" in out
    out = text_of(render(snapshot(history_state="done", history_minutes=1500,
                                  history_repaired=3)))
    assert "history done" in out and "minutes 1,500" in out and "repaired 3" in out
    assert "history" not in text_of(render(snapshot()))  # --no-history: nothing shown
