"""The one atomic-write helper: whole files or none, secrets never readable by others."""

from __future__ import annotations

import stat

import pytest

from livecli.config.files import atomic_path


def test_the_file_is_replaced_only_when_the_block_completes(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no partial left
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"  # not before the block ends
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_secret_file_is_private_before_anything_is_written(tmp_path):
    target = tmp_path / "token.json"
    with atomic_path(target, mode=0o600) as tmp:
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
        tmp.write_text("secret")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_missing_folder_is_an_oserror_for_the_caller_to_explain(tmp_path):
    with pytest.raises(OSError), atomic_path(tmp_path / "nope" / "x.csv") as tmp:
        tmp.write_text("x")
