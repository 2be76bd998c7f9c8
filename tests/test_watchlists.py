"""`[watchlists]` in the config: `livecli stream @banks INFY` streams the list and INFY."""

from __future__ import annotations

import json

import pytest

from tests.cli import assert_one_line_error

SIM = ("--speed", "60", "--sim-date", "2025-12-10")


def _config(hermetic, text: str) -> None:
    cfg = hermetic.root / "cfg"
    cfg.mkdir(exist_ok=True)
    (cfg / "config.toml").write_text(text, encoding="utf-8")


@pytest.mark.slow
def test_a_watchlist_expands_on_the_command_line(hermetic):
    _config(hermetic, '[watchlists]\nbanks = ["HDFCBANK", "ICICIBANK", "NSE:SBIN"]\n')
    r = hermetic.run("stream", "@banks", "INFY", "HDFCBANK", "--jsonl", "--duration", "3",
                     "--db", str(hermetic.root / "s.db"), *SIM, timeout=90)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    ticked = {x["symbol"] for x in lines if x["type"] == "tick"}
    assert ticked == {"HDFCBANK", "ICICIBANK", "SBIN", "INFY"}  # HDFCBANK once


def test_unknown_watchlist_is_a_usage_error_naming_the_known_ones(hermetic):
    _config(hermetic, '[watchlists]\nbanks = ["HDFCBANK"]\nit = ["INFY", "TCS"]\n')
    r = hermetic.run("stream", "@bank", "INFY", "--jsonl")
    assert_one_line_error(r, 2, "@bank", "@banks, @it", "[watchlists]")


@pytest.mark.parametrize(("body", "words"), [
    ('banks = "HDFCBANK"', ["watchlists.banks", "list of symbols"]),
    ("banks = []", ["watchlists.banks", "1 to 3000"]),
    ('banks = ["@it"]', ["watchlists.banks", "another watchlist"]),
    ('"my list" = ["INFY"]', ["letters, digits"]),
])
def test_bad_watchlists_are_config_errors(hermetic, body, words):
    _config(hermetic, f"[watchlists]\n{body}\n")
    r = hermetic.run("stream", "INFY", "--jsonl")
    assert_one_line_error(r, 9, "config.toml", *words)


def test_serve_takes_watchlists_too(hermetic):
    _config(hermetic, '[watchlists]\nbanks = ["HDFCBANK"]\n')
    r = hermetic.run("serve", "@nope", "--sim", "--port", "0")
    assert_one_line_error(r, 2, "@nope", "@banks")
