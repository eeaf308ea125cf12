"""atomic_path: a file is its old self or completely the new one, never half written."""

from __future__ import annotations

import pytest

from metarl.atomic import atomic_path


def test_a_completed_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "report.json"  # parents are created
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".") and tmp.suffix == ".tmp"
        tmp.write_text("new")
        assert not path.exists()  # nothing visible until the block ends
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(path, keep_suffix=True) as tmp:
        assert tmp.suffix == ".mp4"  # for writers that choose the format by it
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
