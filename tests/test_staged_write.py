"""A file written in two steps (state_files.StagedText) is put in place whole, or not at all."""

import os

import pytest

from errors import StateFileError
from state_files import StagedText


def test_the_target_is_the_old_file_until_finish_then_the_whole_new_one(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    staged = StagedText(target, "start é, ")
    assert target.read_text() == "old"
    [temporary] = [p for p in tmp_path.iterdir() if p != target]
    assert temporary.name.startswith(".report.html.") and temporary.suffix == ".tmp"
    staged.finish("end\n")
    assert target.read_text(encoding="utf-8") == "start é, end\n"
    assert sorted(tmp_path.iterdir()) == [target]
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o600)


def test_abandoned_it_leaves_nothing_and_the_old_file_as_it_was(tmp_path):
    target = tmp_path / "out" / "report.html"
    staged = StagedText(target, "start")
    staged.abandon()
    assert list(target.parent.iterdir()) == []
    target.write_text("old")
    StagedText(target, "x" * 1000).abandon()
    assert sorted(target.parent.iterdir()) == [target] and target.read_text() == "old"


def test_a_directory_that_cannot_be_written_is_named(tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    with pytest.raises(StateFileError, match="a file"):
        StagedText(blocked / "report.html", "start")
