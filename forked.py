"""Work done beside the parent in one forked child process, for the second core of a user's
machine: a part of loading, of the backtest or of its outputs that needs nothing the parent
computes meanwhile.

The child inherits the parent's memory (copy on write, nothing pickled on the way in) and hands
back a small picklable value through a pipe, or writes its arrays into `shared_array`s made
before the fork. An exception in the child is raised again in the parent by `join`; a child that
dies without a word raises `ChildProcessError`. The child never flushes the parent's buffered
output and never runs its exit handlers (it leaves through `os._exit`).

A child is only forked where that is safe and useful (`can_fork`): the platform forks, the
process may use at least two CPUs, it runs a single thread (forking a threaded process can leave
a lock held forever in the child), it is not itself a child or a sweep's worker (which already
keep every core busy), and BACKTEST_PROCESSES is not 1. Callers do the same work in the parent
otherwise, to the same result.
"""

from __future__ import annotations

import mmap
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from math import prod
from types import TracebackType
from typing import Any

import numpy as np

_allowed = True
_held = 0  # how many `held` blocks this process is in


def disable() -> None:
    """No child from this process on (a sweep's worker, a forked child itself)."""
    global _allowed
    _allowed = False


@contextmanager
def held() -> Iterator[None]:
    """No child from this process inside the block (a process whose own children already keep
    every core busy, as a sweep's lanes do); afterwards as before."""
    global _held
    _held += 1
    try:
        yield
    finally:
        _held -= 1


def can_fork() -> bool:
    """True where forking a child for a share of the work is safe and can help."""
    if not _allowed or _held or not hasattr(os, "fork") \
            or os.environ.get("BACKTEST_PROCESSES") == "1":
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cpus or 1) >= 2 and threading.active_count() == 1


def release_memory() -> None:
    """Give the memory the C allocator holds free back to the system (glibc's malloc_trim), as
    a parent does before forking a child: freed pages still resident would be shared, and the
    first write to one by either process (the allocator handing it out again) copies it, so
    that both the time and the memory of the work done meanwhile grow (at 2.5 M bars the
    backtest leaves hundreds of MB so: README, Speed and memory). Does nothing without glibc."""
    import ctypes  # a few ms, only for a process that forks
    import platform

    if platform.libc_ver()[0] == "glibc":
        ctypes.CDLL(None).malloc_trim(0)


def shared_array(shape: int | tuple[int, ...], dtype: Any) -> np.ndarray:
    """A zeroed array in anonymous shared memory, so what a forked child writes into it the
    parent reads. Pages never written take no memory."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    dtype = np.dtype(dtype)
    count = prod(shape)
    buffer = mmap.mmap(-1, max(1, count * dtype.itemsize))
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


class Child:
    """`fn(*args)` run in a forked child; `join()` gives its value or raises its exception.

    Use it as a context manager: leaving the block without `join` (the parent failed) kills the
    child and reaps it, so no process outlives the command."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            _child_main(write_end, fn, args)
        os.close(write_end)
        self._pid: int | None = pid
        self._read_end = read_end

    def join(self) -> Any:
        """The child's value, once it has ended; its exception raised here if it failed."""
        if self._pid is None:
            raise RuntimeError("this child was already joined")
        with os.fdopen(self._read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if not payload:
            raise ChildProcessError(f"a helper process ended without its result "
                                    f"(exit status {os.waitstatus_to_exitcode(status)})")
        ok, value = pickle.loads(payload)
        if ok:
            return value
        raise value

    def kill(self) -> None:
        """Stop the child now and reap it (nothing of its work is used)."""
        if self._pid is None:
            return
        try:
            os.kill(self._pid, 9)
        except ProcessLookupError:
            pass
        os.waitpid(self._pid, 0)
        os.close(self._read_end)
        self._pid = None

    def __enter__(self) -> Child:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill()


def _child_main(write_end: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    disable()
    try:
        payload = pickle.dumps((True, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # handed to the parent, which raises it
        try:
            payload = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception that does not pickle: its text
            payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
    try:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
    finally:
        os._exit(0)
