"""forked.Child and shared arrays: the child's value or exception reaches the parent, a child
that dies is named, a child left behind is reaped, and forking is refused where it is unsafe."""

import os
import platform
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import forked

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a platform that forks")


def _fill(target: np.ndarray, value: float) -> int:
    target[:] = value
    return os.getpid()


def test_the_childs_value_and_shared_writes_reach_the_parent():
    shared = forked.shared_array((3, 4), np.float64)
    with forked.Child(_fill, shared, 2.5) as child:
        pid = child.join()
    assert pid != os.getpid()
    assert shared.tolist() == [[2.5] * 4] * 3


def _fail(text: str) -> None:
    raise ValueError(text)


def test_the_childs_exception_is_raised_in_the_parent():
    with forked.Child(_fail, "bad field 'close' in bars.csv") as child:
        with pytest.raises(ValueError, match="bad field 'close' in bars.csv"):
            child.join()


def _die() -> None:
    os._exit(3)


def test_a_child_that_dies_without_a_result_is_named():
    with forked.Child(_die) as child:
        with pytest.raises(ChildProcessError, match="exit status 3"):
            child.join()


def _sleep() -> None:
    threading.Event().wait(60)


def test_a_child_left_behind_is_killed_and_reaped():
    with pytest.raises(RuntimeError, match="parent failed"):
        with forked.Child(_sleep) as child:
            pid = child._pid
            raise RuntimeError("parent failed")
    with pytest.raises(ChildProcessError):  # no such child any more: it was reaped
        os.waitpid(pid, os.WNOHANG)


def test_a_child_cannot_fork_again():
    with forked.Child(forked.can_fork) as child:
        assert child.join() is False


def test_forking_is_refused_where_it_is_unsafe_or_turned_off(monkeypatch,
                                                             as_if_single_threaded):
    monkeypatch.delenv("BACKTEST_PROCESSES", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    assert forked.can_fork()
    monkeypatch.setenv("BACKTEST_PROCESSES", "1")
    assert not forked.can_fork()
    monkeypatch.delenv("BACKTEST_PROCESSES")
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0})
    assert not forked.can_fork()
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not forked.can_fork()
    finally:
        stop.set()
        thread.join()
    monkeypatch.setattr(forked, "_allowed", True)
    forked.disable()
    assert not forked.can_fork()


def test_forking_is_held_back_inside_a_block_and_allowed_after(monkeypatch):
    monkeypatch.delenv("BACKTEST_PROCESSES", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    monkeypatch.setattr(forked, "_allowed", True)
    with forked.held():
        assert not forked.can_fork()
        with forked.held():
            assert not forked.can_fork()
        assert not forked.can_fork()  # still inside the outer block
    assert forked.can_fork()
    with pytest.raises(RuntimeError):
        with forked.held():
            raise RuntimeError("a job failed")
    assert forked.can_fork()
    with forked.held():
        forked.disable()  # for good: leaving the block does not allow it again
    assert not forked.can_fork()


_GIVEN_BACK = """
import os, forked

def resident():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

# 64 KiB blocks (below glibc's mmap threshold: from the heap) each followed by a 1 KiB block
# that stays (above the 512 bytes of Python's own allocator: from the heap too), so that
# freeing the large ones leaves holes the heap cannot shrink by.
blocks = [(bytearray(64 * 1024), bytearray(1024)) for _ in range(1000)]
for large, _ in blocks:
    large[::4096] = b"x" * len(large[::4096])  # touched: resident
kept = [small for _, small in blocks]
del blocks, large
before = resident()
forked.release_memory()
print(before - resident(), len(kept))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or not os.path.exists("/proc/self/statm"),
                    reason="malloc_trim is glibc's; resident memory read from Linux's /proc")
def test_memory_freed_but_kept_by_the_allocator_is_given_back():
    # In a fresh process: the heap of this one depends on the tests before.
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", _GIVEN_BACK], cwd=root, capture_output=True,
                          text=True, check=True, env={**os.environ, "PYTHONPATH": str(root)})
    given_back, kept = map(int, done.stdout.split())
    assert given_back > 32 * 1024 * 1024 and kept == 1000
