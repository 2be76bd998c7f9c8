"""The host's time zone never changes a candle: the same answers under UTC, IST and New York."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli import REPO, SAMPLE_TICKS, run

ZONES = ("UTC", "Asia/Kolkata", "America/New_York")


def test_rebuilt_candles_are_identical_under_every_time_zone(tmp_path):
    outputs = []
    for tz in ZONES:
        out = tmp_path / f"{tz.replace('/', '_')}.csv"
        proc = run(["candles", "--ticks", str(SAMPLE_TICKS), "--interval", "5min", "-o",
                    str(out)], tmp_path, TZ=tz)
        assert proc.returncode == 0, proc.stderr
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] == outputs[2]
    assert "2025-01-06T09:15:00+05:30" in outputs[0]


@pytest.mark.parametrize("tz", ZONES)
def test_candle_rules_hold_under(tz, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_candles_rules.py", "tests/test_candles_property.py",
         "--hypothesis-seed=1", "-x"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**_env(), "TZ": tz},
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
