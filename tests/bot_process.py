"""Run the real bot in its own process, and SIGKILL it at a chosen point of its run.

One run, as cron would start it (kill point optional)::

    python tests/bot_process.py [--kill-after-request K | --kill-after-write K |
                                 --kill-mid-write K] [--trace FILE] -- <trading_bot.py args>

A fork server, for tests that need hundreds of runs (`BotProcesses` below drives it)::

    python tests/bot_process.py --serve

It imports the bot and warms the NYSE calendar once, then reads one JSON job per line on
stdin and forks a child per job: a fresh process with its own pid, environment, working
directory, lock, sockets and files, all of which a SIGKILL takes away exactly as it would
from a bot started by cron. Importing pandas, numpy and the SDK costs ~0.5 s per process; a
fork costs milliseconds, so a test can afford a kill at every point of a run. Jobs run
concurrently; each answers with one JSON line when its child ends.

Kill points are counted in the bot's process only (the exchange is elsewhere):

* after request K: right after the K-th HTTP response reached the broker's session;
* after write K: right after the K-th atomic file write completed (os.replace done);
* mid write K: inside the K-th atomic write, after its temporary file was written and
  fsynced, before os.replace.

The signal is SIGKILL unless the job names another (`"signal": 15` for SIGTERM, which the
bot handles as a clean stop). `"fail_writes_from": K` makes the K-th atomic write and every
later one fail as on a full disk (ENOSPC, or `"fail_errno"`), at the rename: the temporary
file was written, the target is untouched.

With a trace file, a run that ends writes the requests it made and the files it wrote, in
order: the list of its kill points.
"""

from __future__ import annotations

import argparse
import errno
import gc
import json
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
WARM_YEARS = (2021, 2022)


# -- in the bot's process ---------------------------------------------------------------------

class KillPoints:
    """Counts the bot's requests and state writes; SIGKILLs the process at the armed one."""

    def __init__(self, after_request: int = 0, after_write: int = 0, mid_write: int = 0,
                 signal: int = signal.SIGKILL, fail_writes_from: int = 0,
                 fail_errno: int = errno.ENOSPC):
        self.after_request, self.after_write, self.mid_write = after_request, after_write, \
            mid_write
        self.signal = signal
        self.fail_writes_from, self.fail_errno = fail_writes_from, fail_errno
        self.requests: list[str] = []
        self.writes: list[str] = []
        self.replaces = 0

    def install(self) -> None:
        import broker
        import state_files

        points = self
        send = broker._TimeoutSession.request
        write = state_files.atomic_write_text

        def request(session, method, url, **kwargs):  # noqa: ANN001 - requests' signature
            response = send(session, method, url, **kwargs)
            points.requests.append(f"{method.upper()} {urlsplit(str(url)).path}")
            if len(points.requests) == points.after_request:
                _die(points.signal)
            return response

        def atomic_write_text(path: Path, text: str) -> None:
            write(path, text)
            points.writes.append(str(path))
            if len(points.writes) == points.after_write:
                _die(points.signal)

        broker._TimeoutSession.request = request
        state_files.atomic_write_text = atomic_write_text
        state_files.os = _OsKillingBeforeReplace(points)

    def trace(self) -> dict[str, Any]:
        return {"requests": self.requests, "writes": self.writes}


class _OsKillingBeforeReplace:
    """`os` for state_files, whose `replace` can die first: a crash in the middle of a write."""

    def __init__(self, points: KillPoints) -> None:
        self._points = points

    def replace(self, src, dst) -> None:  # noqa: ANN001 - os.replace's signature
        points = self._points
        points.replaces += 1
        if points.replaces == points.mid_write:
            _die(points.signal)
        if points.fail_writes_from and points.replaces >= points.fail_writes_from:
            raise OSError(points.fail_errno, os.strerror(points.fail_errno), str(dst))
        os.replace(src, dst)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _die(sig: int = signal.SIGKILL) -> None:
    """The signal to this process: SIGKILL ends it here; SIGTERM is handled by the bot (it
    raises where the bot is, right after this returns)."""
    os.kill(os.getpid(), sig)


def run_bot(argv: Sequence[str], kill: Mapping[str, int] | None, trace: str | None) -> int:
    """trading_bot.main(argv) in this process, with the kill point armed."""
    import trading_bot

    points = KillPoints(**(kill or {}))
    points.install()
    code = 1
    try:
        code = trading_bot.main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - an unexpected error is a finding: show it
        traceback.print_exc()
    finally:
        if trace:
            Path(trace).write_text(json.dumps(points.trace()))
    return code


# -- the fork server --------------------------------------------------------------------------

def serve() -> None:
    """Fork a child per job line on stdin; answer `{"id", "pid"}` when it starts and
    `{"id", "returncode", "cpu_seconds"}` when it ends (returncode -9 for SIGKILL)."""
    import trading_bot  # noqa: F401 - imported once, shared by every child
    from config import Config
    from market_calendar import nyse_around

    # The calendars a daily run builds (~0.2 s each), for the years of the tests' scenarios.
    for year in WARM_YEARS:
        nyse_around(date(year, 6, 1), years_back=2 + Config().z_score_window // 250)
    import dotenv  # noqa: F401 - imported by the first run otherwise
    # Children share the server's memory copy-on-write; a garbage collection in a child
    # would touch (and copy) every page of it. Frozen objects are never collected.
    gc.freeze()
    running: dict[int, str] = {}
    pending = b""
    stdin_open = True
    while stdin_open or running:
        readable, _, _ = select.select([0] if stdin_open else [], [], [], 0.005)
        if readable:
            chunk = os.read(0, 1 << 16)
            stdin_open = bool(chunk)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                job = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(job)
                running[pid] = job["id"]
                _answer({"id": job["id"], "pid": pid})
        while running:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if pid == 0:
                break
            _answer({"id": running.pop(pid), "returncode": os.waitstatus_to_exitcode(status),
                     "cpu_seconds": usage.ru_utime + usage.ru_stime})


def _answer(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _child(job: dict[str, Any]) -> None:
    """The bot's process: never returns."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            out = os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(out, fd)
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        code = run_bot(job["argv"], job.get("kill"), job.get("trace"))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# -- the test's side ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Finished:
    returncode: int  # the bot's exit code, or -9 when it was SIGKILLed
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


class BotProcesses:
    """A fork server, and `run()` to start a bot in it and wait for its end. Thread-safe:
    runs from several threads proceed concurrently."""

    def __init__(self) -> None:
        import subprocess

        env = {"PATH": os.environ.get("PATH", ""), "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1"}
        self._proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                      cwd=str(ROOT))
        self._lock = threading.Lock()
        self._next = 0
        self._pids: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self.cpu_seconds = 0.0  # used by the bots that ended
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            message = json.loads(line)
            with self._changed:
                if "pid" in message:
                    self._pids[message["id"]] = message["pid"]
                else:
                    self._done[message["id"]] = message["returncode"]
                    self.cpu_seconds += message["cpu_seconds"]
                self._changed.notify_all()

    def run(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path,
            kill: Mapping[str, int] | None = None, trace: Path | None = None,
            timeout: float = 120.0) -> Finished:
        """Start the bot with `argv` in `cwd` (its whole environment is `env`) and wait."""
        with self._lock:
            self._next += 1
            job_id = str(self._next)
            out, err = cwd / f".bot-{job_id}.out", cwd / f".bot-{job_id}.err"
            cache = {k: os.environ[k] for k in ("SIMBROKER_CACHE_DIR",) if k in os.environ}
            job = {"id": job_id, "argv": list(argv), "env": {**cache, **env}, "cwd": str(cwd),
                   "kill": dict(kill or {}), "trace": str(trace) if trace else None,
                   "stdout": str(out), "stderr": str(err)}
            assert self._proc.stdin is not None
            self._proc.stdin.write((json.dumps(job) + "\n").encode())
            self._proc.stdin.flush()
        with self._changed:
            if not self._changed.wait_for(lambda: job_id in self._done, timeout):
                pid = self._pids.get(job_id)
                if pid:
                    os.kill(pid, signal.SIGKILL)  # our own child, by its id
                self._changed.wait_for(lambda: job_id in self._done, 10)
                raise TimeoutError(f"bot run {argv} did not end within {timeout} s")
            code = self._done.pop(job_id)
        result = Finished(code, out.read_text(), err.read_text())
        out.unlink()
        err.unlink()
        return result

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=30)


# -- command line -------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help="run as a fork server")
    parser.add_argument("--kill-after-request", type=int, default=0, metavar="K")
    parser.add_argument("--kill-after-write", type=int, default=0, metavar="K")
    parser.add_argument("--kill-mid-write", type=int, default=0, metavar="K")
    parser.add_argument("--trace", help="write the run's requests and writes here (JSON)")
    parser.add_argument("bot_args", nargs="*", help="arguments of trading_bot.py, after --")
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    kill = {"after_request": args.kill_after_request, "after_write": args.kill_after_write,
            "mid_write": args.kill_mid_write}
    return run_bot(args.bot_args, kill, args.trace)


if __name__ == "__main__":
    sys.exit(main())
