"""A file written in two steps (state_files.StagedText) is put in place whole, or not at all."""

import os

import pytest

from errors import StateFileError
from state_files import StagedFiles, StagedText


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


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


def test_a_set_of_files_replaces_the_old_ones_only_when_published(tmp_path):
    (tmp_path / "a.csv").write_text("old a")
    with StagedFiles(tmp_path, ["a.csv", "b.json"]) as staged:
        staged.write("a.csv", "new a é")
        staged.write("b.json", "{}\n")
        assert (tmp_path / "a.csv").read_text() == "old a"
        assert not (tmp_path / "b.json").exists()
        staged.publish()
    assert (tmp_path / "a.csv").read_text(encoding="utf-8") == "new a é"
    assert (tmp_path / "b.json").read_text() == "{}\n"
    assert _names(tmp_path) == ["a.csv", "b.json"]  # no temporary file left
    assert oct(os.stat(tmp_path / "b.json").st_mode & 0o777) == oct(0o600)


def test_a_failure_before_publishing_leaves_every_old_file_and_no_temporary_one(tmp_path):
    (tmp_path / "a.csv").write_text("old a")
    with pytest.raises(RuntimeError, match="the report failed"):
        with StagedFiles(tmp_path, ["a.csv", "report.html"]) as staged:
            staged.write("a.csv", "new a")
            raise RuntimeError("the report failed")
    assert _names(tmp_path) == ["a.csv"] and (tmp_path / "a.csv").read_text() == "old a"


def _write_in_child(staged: StagedFiles) -> None:
    staged.write("report.html", "from the child")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a platform that forks")
def test_a_forked_process_writes_some_of_the_set_and_the_parent_publishes(tmp_path):
    import forked

    with StagedFiles(tmp_path / "out", ["a.csv", "report.html"]) as staged:
        with forked.Child(_write_in_child, staged) as child:
            staged.write("a.csv", "from the parent")
            child.join()
        staged.publish()
    assert (tmp_path / "out" / "report.html").read_text() == "from the child"
    assert (tmp_path / "out" / "a.csv").read_text() == "from the parent"


def test_a_target_that_is_a_directory_stops_the_set_before_any_file_is_replaced(tmp_path):
    (tmp_path / "a.csv").write_text("old a")
    (tmp_path / "report.html").mkdir()
    with StagedFiles(tmp_path, ["a.csv", "report.html"]) as staged:
        staged.write("a.csv", "new a")
        staged.write("report.html", "page")
        with pytest.raises(StateFileError, match=r"report\.html: cannot be written \(Is a "
                                                 r"directory\)"):
            staged.publish()
    assert (tmp_path / "a.csv").read_text() == "old a"
    assert _names(tmp_path) == ["a.csv", "report.html"]


def test_a_set_in_a_directory_that_cannot_be_made_is_named_by_its_first_file(tmp_path):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    with pytest.raises(StateFileError, match=r"a file/a\.csv: cannot be written"):
        StagedFiles(blocked, ["a.csv", "b.json"])
    assert _names(tmp_path) == ["a file"]
