"""docs/jsonl.md documents exactly the fields `livecli stream --jsonl` writes, no more, no less.

The real command streams the simulated market for a few seconds; every line's fields are
compared with the tables of the doc, and the doc's examples with the tables.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.cli import REPO, run

DOC = (REPO / "docs" / "jsonl.md").read_text()
TYPES = ("tick", "candle", "status")


def documented(kind: str) -> tuple[set[str], set[str], dict]:
    """(fields, fields of each `symbols` entry, the example) of one section of the doc."""
    section = DOC.split(f"\n## {kind}\n", 1)[1].split("\n## ", 1)[0]
    fields: set[str] = set()
    per_symbol: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        name_cell, _, meaning = line.strip("|").split("|", 2)
        names = re.findall(r"`(\w+)`", name_cell)
        fields |= set(names)
        if names == ["symbols"]:
            per_symbol = set(re.findall(r"`(\w+)`", meaning))
    example = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    return fields, per_symbol, example


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("jsonl")
    proc = run(["stream", "RELIANCE", "NSE:NIFTY 50", "--sim", "--speed", "60", "--duration", "4",
                "--jsonl", "--sim-date", "2025-12-10", "--db", str(tmp / "s.db")], tmp, timeout=90)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("kind", TYPES)
def test_the_doc_lists_every_field_written(lines, kind):
    fields, per_symbol, example = documented(kind)
    written = [o for o in lines if o["type"] == kind]
    assert written, kind
    keys = set().union(*(o.keys() for o in written))
    # `schema` is documented as 1; it lands in the objects with the typed status (issue 10).
    assert all(o.get("schema", 1) == 1 for o in written)
    assert keys - {"schema"} == fields - {"schema"}
    assert all(set(o) == keys for o in written)  # no field comes and goes
    assert set(example) == fields and example["type"] == kind and example["schema"] == 1
    if kind == "status":
        entries = [e for o in written for e in o["symbols"].values()]
        assert entries and all(set(e) == per_symbol for e in entries)
        assert all(set(e) == per_symbol for e in example["symbols"].values())


def test_times_carry_the_ist_offset(lines):
    tick = next(o for o in lines if o["type"] == "tick")
    candle = next(o for o in lines if o["type"] == "candle")
    assert tick["received_at"].endswith("+05:30") and candle["start"].endswith("+05:30")
    assert lines[-1]["type"] == "status" and lines[-1]["state"] == "stopped"
