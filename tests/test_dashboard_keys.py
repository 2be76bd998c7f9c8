"""The dashboard as a person uses it: the real `livecli stream` on a real pseudo-terminal.

Keys are typed into the pty; the screen is what pyte, a terminal emulator, makes of the bytes the
command wrote. Checked: every key, the sort order and the filter as the rows on screen show them,
adding and removing a symbol while streaming (and the store getting its candles), that random
keys leave no stale line, and that q gives the terminal back exactly as it was (its termios
attributes, the alternate screen left, the cursor shown). The stand-in's simulated market runs at
--speed 60 (a simulated minute a second) on a fixed trading day.
"""

from __future__ import annotations

import itertools
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import termios
import time

import pytest

from tests.chart_pixels import colour_runs
from tests.conftest import hermetic_env
from tests.pty_dash import PtyDashboard, stream_args, table_rows

pytestmark = pytest.mark.slow

SIX = ["RELIANCE", "INFY", "TCS", "HDFCBANK", "ICICIBANK", "SBIN"]


def _pct(cell: str) -> float:
    return float(cell.rstrip("%").replace(",", ""))


def _chg_column(text: str) -> list[float]:
    """Chg% of each row on screen, in screen order (the first cell ending in %)."""
    out = []
    for cells in table_rows(text, set(SIX)):
        pct = next(c for c in cells if c.endswith("%"))
        out.append(_pct(pct))
    return out


def _symbols(text: str) -> list[str]:
    return [cells[0] for cells in table_rows(text, set(SIX) | {"ITC", "WIPRO"})]


def _selected_symbol(d: PtyDashboard) -> str | None:
    """The symbol of the row drawn in reverse video (the selection)."""
    for y in range(d.rows):
        line = d.screen.buffer[y]
        cells = [line[x] for x in range(d.cols)]
        rev = "".join(c.data for c in cells if c.reverse).strip()
        if rev and re.fullmatch(r"[A-Z&-]+", rev.split()[0]):
            return rev.split()[0]
    return None


def test_every_key_on_a_real_terminal(tmp_path):
    db = tmp_path / "s.db"
    with PtyDashboard(tmp_path, stream_args(*SIX, db=db), cols=100, rows=30) as d:
        d.wait_for(lambda t: len(_symbols(t)) == 6 and "waiting" not in t and "—" not in
                   " ".join(" ".join(r[:3]) for r in table_rows(t, set(SIX))))
        text = d.text()
        assert _symbols(text) == SIX  # the order given, before any sort
        assert "q quit" in text and "? help" in text  # the footer says the keys
        assert _selected_symbol(d) == "RELIANCE"  # the first row is selected

        # ? opens the help; any key closes it.
        d.send("?")
        d.wait_for(r"Keys.*\n(.*\n)*.*pause redraws")
        d.send("x")
        d.wait_for(lambda t: "pause redraws" not in t and len(_symbols(t)) == 6)

        # Moving: j, k, End, Home, down, up, PgDn.
        d.send("j")
        d.wait_for(lambda _t: _selected_symbol(d) == "INFY")
        d.send("j", "j", "k")
        d.wait_for(lambda _t: _selected_symbol(d) == "TCS")
        d.send("\x1b[F")  # End
        d.wait_for(lambda _t: _selected_symbol(d) == "SBIN")
        d.send("\x1b[H")  # Home
        d.wait_for(lambda _t: _selected_symbol(d) == "RELIANCE")
        d.send("\x1b[B")  # down arrow
        d.wait_for(lambda _t: _selected_symbol(d) == "INFY")
        d.send("\x1b[A")  # up arrow
        d.wait_for(lambda _t: _selected_symbol(d) == "RELIANCE")
        d.send("\x1b[6~")  # PgDn: all six fit, so the last one
        d.wait_for(lambda _t: _selected_symbol(d) == "SBIN")
        d.send("\x1b[5~")  # PgUp
        d.wait_for(lambda _t: _selected_symbol(d) == "RELIANCE")

        # s: by symbol (A-Z, marked in the header); r reverses it.
        d.send("s")
        t = d.wait_for(lambda t: _symbols(t) == sorted(SIX))
        assert re.search(r"Symbol▲", t) and "sorted by symbol" in t
        d.send("r")
        d.wait_for(lambda t: _symbols(t) == sorted(SIX, reverse=True))
        d.send("r")
        # s again: chg%, largest first (what the screen shows is what is compared).
        d.send("s")
        t = d.wait_for(lambda t: "Chg%▼" in t)
        d.send("p")  # pause so the frame read is one the numbers do not move under
        t = d.wait_for("PAUSED")
        chg = _chg_column(t)
        assert len(chg) == 6 and chg == sorted(chg, reverse=True), t
        frozen_clock = re.search(r"\d\d:\d\d:\d\d IST", t).group(0)
        d.settle(3)
        assert re.search(r"\d\d:\d\d:\d\d IST", d.text()).group(0) == frozen_clock  # paused
        d.send("r")
        t = d.wait_for(lambda t: "Chg%▲" in t)
        chg = _chg_column(t)
        assert chg == sorted(chg), t
        d.send("p")
        d.wait_for(lambda t: "PAUSED" not in t and re.search(r"\d\d:\d\d:\d\d IST", t).group(0)
                   != frozen_clock)
        d.send("r", "s", "s", "s", "s")  # volume, ticks, age, then back to the order given
        d.wait_for(lambda t: _symbols(t) == SIX and "Chg%" in t and "▲" not in t.split("\n")[3])

        # / filters as it is typed; Enter keeps it; Esc clears it.
        d.send("/", "B", "A", "N", "K")
        t = d.wait_for(lambda t: set(_symbols(t)) == {"HDFCBANK", "ICICIBANK", "SBIN"})
        assert "filter: BANK" in t
        d.send("\r")
        t = d.wait_for(lambda t: "filter “BANK”" in t and set(_symbols(t)) == {"HDFCBANK", "ICICIBANK", "SBIN"})
        d.send("\x1b")
        d.wait_for(lambda t: len(_symbols(t)) == 6 and "filter" not in t.split("\n")[0])
        d.send("/", "Z", "Z", "Z", "\r")
        d.wait_for("no symbol matches “ZZZ”")
        d.send("\x1b")
        d.wait_for(lambda t: len(_symbols(t)) == 6)

        # i cycles the intervals built; 3 adds 5min to the running session and shows it.
        d.send("3")
        d.wait_for(r"5min candles.*\n(.*\n)*.*Instruments · 5min")
        d.send("i")
        d.wait_for(r"Instruments · 1min")
        d.send("i")
        d.wait_for(r"Instruments · 5min")

        # Enter opens the selected symbol's view; Esc goes back.
        d.send("\x1b[H", "\r")
        t = d.wait_for(r"NSE:RELIANCE +5min candles · tick 0.05")
        assert "depth" in t and "Esc back" in t and "IST" in t
        d.send("j")  # down in the symbol view: the next symbol
        d.wait_for(r"NSE:INFY +5min candles")
        d.send("\x1b")
        d.wait_for(lambda t: len(_symbols(t)) == 6 and "Instruments · 5min" in t)

        # q: a clean stop, and the terminal as it was.
        d.send("q")
        rc = d.wait_exit()
        err = d.stderr()
        assert rc == 0, err
        assert "stopped by q" in err and "Traceback" not in err
        assert termios.tcgetattr(d.slave) == d.attrs_before  # echo, line mode: all back
        last_enter = d.raw.rindex(b"\x1b[?1049h")
        tail = d.raw[last_enter:]
        assert b"\x1b[?1049l" in tail and b"\x1b[?25h" in tail  # left the alternate screen
        assert b"q" not in d.raw[d.raw.rindex(b"\x1b[?1049l"):]  # no key was ever echoed


def test_add_and_remove_a_symbol_while_streaming(tmp_path):
    db = tmp_path / "s.db"
    with PtyDashboard(tmp_path, stream_args("RELIANCE", "INFY", db=db), cols=100,
                      rows=30) as d:
        d.wait_for(lambda t: _symbols(t) == ["RELIANCE", "INFY"] and re.search(r"stored \d", t) is not None)
        # A misspelt symbol: the command line's own error, the dashboard carries on.
        d.send("a", *"RELIANCEE", "\r")
        d.wait_for(r"error: unknown symbol NSE:RELIANCEE \(closest: NSE:RELIANCE")
        d.send("a", *"ITC", "\r")
        d.wait_for(lambda t: _symbols(t) == ["RELIANCE", "INFY", "ITC"] and "added ITC" in t)
        assert _selected_symbol(d) == "ITC"  # the new row is selected
        # The store gets ITC's candles: wait until a closed ITC minute is in it.

        def itc_candles() -> int:
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                    return con.execute("SELECT COUNT(*) FROM candles WHERE instrument_token = "
                                       "424961 AND interval_min = 1 AND closed = 1").fetchone()[0]
            except sqlite3.Error:
                return 0

        deadline = time.monotonic() + 40
        while itc_candles() < 2 and time.monotonic() < deadline:
            d.pump(0.2)
        assert itc_candles() >= 2
        # d removes the selected row (ITC); its ticks stop, its row goes.
        d.send("d")
        d.wait_for(lambda t: _symbols(t) == ["RELIANCE", "INFY"] and "removed NSE:ITC" in t)
        d.send("q")
        assert d.wait_exit() == 0, d.stderr()


def test_random_keys_leave_no_stale_lines_and_never_echo(tmp_path):
    db = tmp_path / "s.db"
    rng = random.Random(12)
    keys = ["j", "k", "s", "r", "i", "p", "?", "x", "\x1b", "\x1b[A", "\x1b[B", "\x1b[5~",
            "\x1b[6~", "\x1b[H", "\x1b[F", "\r", "z", "1", "2", "\x1b[C", "\x7f", "\t"]
    with PtyDashboard(tmp_path, stream_args(*SIX, db=db), cols=80, rows=24) as d:
        d.wait_for(lambda t: len(_symbols(t)) == 6)
        for _ in range(60):
            d.send(rng.choice(keys))
        # Back to a known state: close any help, leave any view, unpause, reset the sort.
        d.send("x", "\x1b", "\x1b")
        t = d.settle(2)
        if "PAUSED" in t:
            d.send("p")
        t = d.wait_for(lambda t: len(_symbols(t)) == 6 and "PAUSED" not in t)
        t = d.settle(3)
        lines = d.lines()
        # One frame on the screen: one header, one footer, one of each panel, nothing under.
        assert sum("livecli stream" in ln for ln in lines) == 1, t
        assert sum("q quit" in ln for ln in lines) == 1, t
        assert sum("Instruments ·" in ln for ln in lines) == 1, t
        assert sum("Latest ticks" in ln for ln in lines) == 1, t
        footer = max(i for i, ln in enumerate(lines) if "q quit" in ln)
        assert all(not ln.strip() for ln in lines[footer + 1:]), t
        assert all(len(ln) <= 80 for ln in lines)
        d.send("q")
        assert d.wait_exit() == 0, d.stderr()
        assert termios.tcgetattr(d.slave) == d.attrs_before


def test_narrow_terminal_keeps_ohlc_and_scrolls_to_every_row(tmp_path):
    db = tmp_path / "s.db"
    many = [*SIX, "ITC", "WIPRO", "LT", "TITAN", "NTPC", "ONGC", "SUNPHARMA", "MARUTI",
            "AXISBANK", "KOTAKBANK", "TATASTEEL", "BAJFINANCE", "JSWSTEEL", "COALINDIA",
            "HCLTECH", "POWERGRID", "ADANIENT", "ADANIPORTS", "ASIANPAINT", "HINDUNILVR",
            "BHARTIARTL", "TATAMOTORS", "YESBANK", "IDEA"]
    with PtyDashboard(tmp_path, stream_args(*many, db=db), cols=80, rows=24) as d:
        # The first frame is drawn while connecting: wait for the tape's first tick as well.
        tick_line = r"\d\d:\d\d:\d\d \S+ +[\d,]+\.\d\d +[+-]\d+\.\d\d%"
        t = d.wait_for(lambda t: re.search(r"rows 1–\d+ of 30", t) and re.search(tick_line, t))
        header = next(ln for ln in t.splitlines() if "Symbol" in ln)
        for col in ("Last", "Chg%", "Open", "High", "Low", "Close", "Vol"):
            assert col in header, header  # the candle's OHLCV kept at 80 columns
        # A short terminal gets short bottom panels: most of its lines are rows.
        assert int(re.search(r"rows 1–(\d+) of 30", t).group(1)) >= 12, t
        assert "q quit" in t  # the footer fits too
        d.send("\x1b[F")  # End: the last row comes into view
        t = d.wait_for(lambda t: "IDEA" in t and "rows" in t and "of 30" in t)
        assert _selected_symbol(d) == "IDEA"
        shown = [r[0] for r in table_rows(t, set(many))]
        assert "RELIANCE" not in shown and shown[-1] == "IDEA"  # scrolled to the end
        assert re.search(r"rows \d+–30 of 30 · \d+ above", t)
        d.send("\x1b[H")
        d.wait_for(lambda t: next(r[0] for r in table_rows(t, set(many))) == "RELIANCE"
                   and _selected_symbol(d) == "RELIANCE")
        d.send("q")
        assert d.wait_exit() == 0, d.stderr()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_q_gives_back_the_screen_as_it_was_in_tmux(tmp_path):
    """tmux keeps a real alternate screen: what was on the terminal before is there after."""
    env = hermetic_env(tmp_path, TERM="xterm-256color")
    name = f"livecli-test-{tmp_path.name[-20:]}"
    cmd = (f"echo MARKER-BEFORE-THE-DASHBOARD; {sys.executable} -m livecli "
           + " ".join(stream_args("RELIANCE", db=tmp_path / "s.db"))
           + "; echo EXITED-$?; sleep 60")
    env_args = [a for k, v in env.items() if k in ("PYTHONPATH", "HOME") or k.startswith("LIVECLI_")
                for a in ("-e", f"{k}={v}")]
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "90", "-y", "25", *env_args,
                    "-c", str(tmp_path), cmd], check=True, timeout=20)
    try:
        def pane() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True,
                                  text=True, timeout=10).stdout

        def wait(pred, timeout=40.0) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                text = pane()
                if pred(text):
                    return text
                time.sleep(0.2)  # polling another process's screen: nothing to wait on
            raise AssertionError(pane())

        wait(lambda t: "RELIANCE" in t and "q quit" in t)
        assert "MARKER-BEFORE" not in pane()  # the dashboard has the alternate screen
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=True, timeout=10)
        t = wait(lambda t: "EXITED-" in t)
        assert "EXITED-0" in t and "MARKER-BEFORE-THE-DASHBOARD" in t
        assert "Instruments" not in t and "q quit" not in t  # no frame left behind
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], timeout=10)


# --- the symbol view's chart, and `livecli chart` ---------------------------------------------
RELIANCE_TOKEN = 738561
PRICE = re.compile(r"[\d,]+\.\d+")


def _recorded_candles(db) -> dict[int, tuple]:
    """RELIANCE's 1-minute candles computed by the test from the recorded ticks (tests/oracle.py,
    an independent reading of CANDLES.md): {start: (open, high, low, close, volume, ...)}."""
    from tests.oracle import OTick, oracle

    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT instrument_token, exchange_timestamp, last_price, "
                           "volume_traded, oi, high, low FROM ticks ORDER BY rowid").fetchall()
    ticks = [OTick(t, ts, p, v, h, lo, oi) for t, ts, p, v, oi, h, lo in rows]
    return {start: v for (tok, m, start), v in oracle(ticks, [1]).items()
            if tok == RELIANCE_TOKEN and m == 1}


def _read_chart(d: PtyDashboard, chart_w: int) -> dict:
    """The chart on screen, read back as its module docstring says it is drawn."""
    lines = d.lines()
    title = next(i for i, ln in enumerate(lines) if re.match(r"NSE:RELIANCE +1min candles", ln))
    vol = next(i for i in range(title + 1, len(lines)) if " vol " in lines[i][:chart_w])
    rows = list(range(title + 1, vol))
    labels = [lines[y][:chart_w] for y in rows]
    hi = float(PRICE.findall(labels[0])[-1].replace(",", ""))
    lo = float(PRICE.findall(labels[-1])[-1].replace(",", ""))
    newest = re.search(r"◂(\d\d):(\d\d) IST", lines[vol + 3][:chart_w] if vol + 3 < len(lines)
                       else "") or next(re.search(r"◂(\d\d):(\d\d) IST", ln) for ln in lines
                                        if re.search(r"◂(\d\d):(\d\d) IST", ln))
    columns: dict[int, dict] = {}
    for r, y in enumerate(rows):
        line = d.screen.buffer[y]
        for x in range(chart_w):
            ch = line[x]
            if ch.data in "│█":
                col = columns.setdefault(x, {"cells": [], "fg": set()})
                col["cells"].append((r, ch.data))
                col["fg"].add(ch.fg)
    return {"hi": hi, "lo": lo, "rows": len(rows), "columns": columns,
            "newest": (int(newest.group(1)), int(newest.group(2)))}


def _row(p: float, lo: float, hi: float, rows: int) -> int:
    return max(0, min(rows - 1, round((hi - p) / (hi - lo) * (rows - 1))))


def test_symbol_view_chart_and_chart_picture_match_the_candles(tmp_path):
    from datetime import datetime

    from livecli.core.timeutil import IST

    db = tmp_path / "s.db"
    cols, rows = 120, 40
    with PtyDashboard(tmp_path, stream_args("RELIANCE", "INFY", db=db, extra=("--record",)),
                      cols=cols, rows=rows) as d:
        d.wait_for(r"candles stored (2[4-9]|[3-9]\d)", timeout=60)  # a dozen minutes each
        d.send("\r")
        d.wait_for(r"NSE:RELIANCE +1min candles · tick 0.05")
        d.send("p")
        d.wait_for("PAUSED")
        d.settle(2)
        chart = _read_chart(d, cols - 33 - 1)
        screen = d.text()
        d.send("q")
        assert d.wait_exit() == 0, d.stderr()
    want = _recorded_candles(db)
    hh, mm = chart["newest"]
    day = datetime.fromisoformat(SIM_DATE_ISO).replace(tzinfo=IST)
    newest = int(day.replace(hour=hh, minute=mm).timestamp())
    xs = sorted(chart["columns"], reverse=True)
    assert len(xs) >= 8, screen
    assert all(a - b == 2 for a, b in itertools.pairwise(xs)), xs  # a candle per column pair
    lo, hi, n = chart["lo"], chart["hi"], chart["rows"]
    starts = sorted(s for s in want if s <= newest)
    # The newest column is the forming candle (it went on after the pause): compare the rest.
    checked = 0
    for k, x in enumerate(xs[1:], start=1):
        start = starts[-1 - k]
        o, h, low, c = want[start][:4]
        cells = chart["columns"][x]["cells"]
        got_rows = [r for r, _ in cells]
        body = [r for r, ch in cells if ch == "█"]
        assert (min(got_rows), max(got_rows)) == (_row(h, lo, hi, n), _row(low, lo, hi, n)), \
            (start, o, h, low, c, cells)
        assert (min(body), max(body)) == (_row(max(o, c), lo, hi, n), _row(min(o, c), lo, hi, n))
        assert chart["columns"][x]["fg"] == {"green" if c >= o else "red"}
        checked += 1
    assert checked >= 7
    # The axis is the shown candles' range in tick-size steps (0.05 for RELIANCE).
    shown = [want[s] for s in starts[-len(xs):-1]]
    assert lo <= min(v[2] for v in shown) and hi >= max(v[1] for v in shown)
    assert round(hi * 20) == hi * 20 and round(lo * 20) == lo * 20

    # `livecli chart --output`: a valid PNG of the store's candles.
    png = tmp_path / "reliance.png"
    r = subprocess.run([sys.executable, "-m", "livecli", "chart", "RELIANCE", "-i", "1min",
                        "--db", str(db), "--output", str(png)], cwd=tmp_path,
                       env=hermetic_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "wrote a chart of" in r.stdout and r.stderr == ""
    _check_png(png, db)
    # Piped, the chart is plain text: no escape codes, the axis in tick size.
    r = subprocess.run([sys.executable, "-m", "livecli", "chart", "RELIANCE", "-i", "1min",
                        "--db", str(db)], cwd=tmp_path, env=hermetic_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "NSE:RELIANCE" in r.stdout and "◂" in r.stdout
    assert re.search(r"H \d,\d{3}\.\d\d", r.stdout) and "█" in r.stdout


SIM_DATE_ISO = "2025-12-10"


def _check_png(png, db) -> None:
    import json

    from PIL import Image

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()
    meta = Image.open(png).text
    drawn = json.loads(meta["Description"].removeprefix("livecli candles "))
    with sqlite3.connect(db) as con:
        stored = con.execute("SELECT start, open, high, low, close, volume FROM candles WHERE "
                             "instrument_token = ? AND interval_min = 1 ORDER BY start",
                             (RELIANCE_TOKEN,)).fetchall()
    assert [tuple(x) for x in drawn] == [tuple(x) for x in stored]  # the store's candles, all
    # And the picture draws them: left to right, the price panel's coloured columns are one
    # run per candle, green where it closed at or above its open, red below.
    runs = colour_runs(png, 0.12, 0.58)
    assert runs == ["up" if c >= o else "down" for _, o, _, _, c, _ in stored]


def _proc_state(pid: int) -> str:
    """The process's state letter from /proc (T: stopped)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "error"])
def test_every_way_out_gives_the_terminal_back(tmp_path, how):
    import signal

    db = tmp_path / "s.db"
    symbols = ("RELIANCE", "RELIANCEE") if how == "error" else ("RELIANCE",)
    with PtyDashboard(tmp_path, stream_args(*symbols, db=db), cols=90, rows=25) as d:
        if how != "error":
            d.wait_for(lambda t: _symbols(t) == ["RELIANCE"] and "q quit" in t)
            assert termios.tcgetattr(d.slave) != d.attrs_before  # keys are read raw meanwhile
            if how == "ctrl-c":
                d.send("\x03")  # the terminal turns it into SIGINT, as for a person
            else:
                d.proc.send_signal(signal.SIGTERM)
        rc = d.wait_exit()
        err = d.stderr()
        assert "Traceback" not in err
        if how == "error":
            assert rc == 7 and "unknown symbol NSE:RELIANCEE" in err
        else:
            assert rc == 0 and "stopped by signal" in err, err
        assert termios.tcgetattr(d.slave) == d.attrs_before
        assert d.raw.rfind(b"\x1b[?1049l") > d.raw.rfind(b"\x1b[?1049h") >= 0
        assert d.raw.rfind(b"\x1b[?25h") > d.raw.rfind(b"\x1b[?25l")


def test_ctrl_z_gives_the_terminal_back_and_fg_takes_it_again(tmp_path):
    """SIGTSTP (what Ctrl-Z sends under a shell's job control; sent directly here, as a pty
    with no shell drops a terminal-made one) stops the dashboard with the terminal put back."""
    import os
    import signal

    with PtyDashboard(tmp_path, stream_args("RELIANCE", db=tmp_path / "s.db"), cols=90,
                      rows=25) as d:
        d.wait_for(lambda t: _symbols(t) == ["RELIANCE"] and "q quit" in t)
        raw_attrs = termios.tcgetattr(d.slave)
        assert raw_attrs != d.attrs_before
        mark = len(d.raw)
        os.kill(d.proc.pid, signal.SIGTSTP)
        deadline = time.monotonic() + 20
        while b"\x1b[?1049l" not in d.raw[mark:] and time.monotonic() < deadline:
            d.pump(0.1)
        assert b"\x1b[?1049l" in d.raw[mark:]  # the main screen back, before stopping
        deadline = time.monotonic() + 20
        while termios.tcgetattr(d.slave) != d.attrs_before and time.monotonic() < deadline:
            d.pump(0.1)
        assert termios.tcgetattr(d.slave) == d.attrs_before  # modes back while stopped
        # `fg` comes once the job has stopped, as a shell sees it (waitpid): a SIGCONT sent
        # between the modes coming back and the stop itself would be spent before the stop.
        deadline = time.monotonic() + 20
        while _proc_state(d.proc.pid) != "T" and time.monotonic() < deadline:
            d.pump(0.05)
        assert _proc_state(d.proc.pid) == "T"
        os.kill(d.proc.pid, signal.SIGCONT)  # `fg`
        mark = len(d.raw)
        d.wait_for(lambda _t: b"\x1b[?1049h" in d.raw[mark:])
        assert termios.tcgetattr(d.slave) == raw_attrs
        d.wait_for(lambda t: _symbols(t) == ["RELIANCE"] and "q quit" in t)
        d.send("q")
        assert d.wait_exit() == 0, d.stderr()
        assert termios.tcgetattr(d.slave) == d.attrs_before
