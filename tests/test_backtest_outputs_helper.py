"""A single run's report written by a helper process beside its files: the same files and
output as in one process, and the same error, with no file of the run put in place, when
either side fails."""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backtester import cli

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a platform that forks")

ROOT = Path(__file__).resolve().parent.parent
PERIOD = ["--start", "2022-01-03", "--end", "2022-03-31", "--symbols", "AAPL,AMZN,KO,XOM"]
OUTPUTS = ("trades.csv", "equity.csv", "stats.json", "report.html")


@pytest.fixture
def helped(tmp_path, monkeypatch, capsys, as_if_single_threaded):
    """main() with the helper from the smallest run on (and two CPUs, however many the machine
    has), or in one process (`processes="1"`, as BACKTEST_PROCESSES=1)."""
    monkeypatch.chdir(tmp_path)  # no .env of the developer's leaks in
    monkeypatch.setattr(cli, "HELPER_MIN_CELLS", 0)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})

    def invoke(out, *args, processes=None):
        if processes is None:
            monkeypatch.delenv("BACKTEST_PROCESSES", raising=False)
        else:
            monkeypatch.setenv("BACKTEST_PROCESSES", processes)
        code = cli.main([*args, "--out", str(out), "--timings"], environ={})
        printed = capsys.readouterr()
        return code, printed.out.replace(str(out), "OUT"), printed.err
    return invoke


SPLITS = ["--data", "splits", "--symbols", "AAPL,GOOG,MSFT", "--start", "2004-01-02", "--end",
          "2006-12-29"]


@pytest.mark.parametrize("args", [[*PERIOD, "--split", "2022-02-15"], SPLITS])
def test_the_helper_writes_the_same_files_and_output_as_one_process(helped, tmp_path, args):
    code, out, err = helped(tmp_path / "helped", *args)
    assert code == 0, err
    assert "report in the helper" in err  # the helper did write the report
    code, alone_out, alone_err = helped(tmp_path / "alone", *args, processes="1")
    assert code == 0, alone_err
    assert "report in the helper" not in alone_err
    assert out == alone_out
    for name in OUTPUTS:
        assert (tmp_path / "helped" / name).read_bytes() == \
            (tmp_path / "alone" / name).read_bytes(), name
    assert sorted(p.name for p in (tmp_path / "helped").iterdir()) == sorted(OUTPUTS)


def _old_outputs(out: Path) -> None:
    out.mkdir()
    for name in OUTPUTS:
        (out / name).write_text(f"old {name}")


def _assert_old_outputs(out: Path) -> None:
    """Every file as the previous run left it, and no temporary one."""
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    for name in OUTPUTS:
        assert (out / name).read_text() == f"old {name}", name


def _small_files_only() -> None:
    # Files of at most 1 MB: the page (plotly.js inline, ~4.7 MB) cannot be written, the
    # CSV and JSON files of this short run can; Python ignores SIGXFSZ, so the write fails
    # with EFBIG ("File too large").
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def _command(out: Path, processes: str | None) -> subprocess.CompletedProcess:
    probe = ("import sys\nfrom backtester import cli\ncli.HELPER_MIN_CELLS = 0\n"
             f"sys.exit(cli.main({[*PERIOD, '--out', str(out)]!r}, environ={{}}))")
    env = {k: v for k, v in os.environ.items() if k != "BACKTEST_PROCESSES"}
    if processes is not None:
        env["BACKTEST_PROCESSES"] = processes
    return subprocess.run([sys.executable, "-c", probe], cwd=out.parent, env={
        **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
        preexec_fn=_small_files_only)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the helper needs two CPUs")
def test_a_report_the_helper_cannot_write_is_the_same_error_and_publishes_nothing(tmp_path):
    (tmp_path / "helped").mkdir()
    (tmp_path / "alone").mkdir()
    helped = _command(tmp_path / "helped" / "out", None)
    alone = _command(tmp_path / "alone" / "out", "1")
    _old_outputs(tmp_path / "helped" / "again")
    helped_again = _command(tmp_path / "helped" / "again", None)
    assert helped.returncode == alone.returncode == helped_again.returncode == 1
    assert alone.stderr.startswith("backtest.py: error: ")
    assert "report.html: cannot be written (File too large)" in alone.stderr
    assert helped.stderr.replace("helped", "alone") == alone.stderr
    assert helped.stdout == alone.stdout == ""
    # Nothing of the run was put in place, neither the report nor the files written beside it.
    assert list((tmp_path / "helped" / "out").iterdir()) == []
    assert list((tmp_path / "alone" / "out").iterdir()) == []
    _assert_old_outputs(tmp_path / "helped" / "again")


def test_a_failure_of_the_files_beside_the_helper_stops_it_and_publishes_nothing(
        helped, tmp_path, monkeypatch):
    def out_of_memory(result):
        raise MemoryError("trades.csv")

    monkeypatch.setattr(cli, "result_texts", out_of_memory)
    for processes in (None, "1"):
        out = tmp_path / f"out{processes}"
        _old_outputs(out)
        with pytest.raises(MemoryError, match="trades.csv"):
            helped(out, *PERIOD, processes=processes)
        _assert_old_outputs(out)
    with pytest.raises(ChildProcessError):  # the helper was stopped and reaped
        os.waitpid(-1, os.WNOHANG)


def test_an_output_that_is_a_directory_is_named_and_the_others_stay(helped, tmp_path):
    for processes in (None, "1"):
        out = tmp_path / f"out{processes}"
        _old_outputs(out)
        (out / "report.html").unlink()
        (out / "report.html").mkdir()
        code, printed, err = helped(out, *PERIOD, processes=processes)
        assert code == 1
        assert err.startswith(f"backtest.py: error: {out}/report.html: cannot be written "
                              "(Is a directory)")
        assert printed == ""
        assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
        assert (out / "trades.csv").read_text() == "old trades.csv"


def test_a_helper_killed_on_the_way_costs_only_time(helped, tmp_path, monkeypatch):
    parent, write_report = os.getpid(), cli._write_report

    def killed_in_the_helper(*args):
        if os.getpid() != parent:  # as the kernel's out-of-memory killer would
            os.kill(os.getpid(), signal.SIGKILL)
        write_report(*args)

    monkeypatch.setattr(cli, "_write_report", killed_in_the_helper)
    code, out, err = helped(tmp_path / "helped", *PERIOD)
    assert code == 0, err
    assert "a helper process ended without its result (exit status -9); the report is " \
        "written by this process instead" in err
    code, alone_out, _ = helped(tmp_path / "alone", *PERIOD, processes="1")
    assert code == 0 and out == alone_out
    for name in OUTPUTS:
        assert (tmp_path / "helped" / name).read_bytes() == \
            (tmp_path / "alone" / name).read_bytes(), name
