"""A full disk and a read-only log directory: the run stops with a clear error naming the
file and what to do (never a traceback), the `failed` alert still goes out, nothing is lost
or doubled, and the next run says what the failed one did.

The disk fills at each of a run's atomic writes in turn (tests/bot_process.py makes the k-th
write and every later one fail with ENOSPC at the rename, as a full disk would), in a run
with exits and entries: some fail before any order is sent, some after. The read-only log
directory is a real one (mode 0555, or `chattr +i` for root, whom modes do not stop).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import logger as run_logging
from tests.reliability_support import (
    SCENARIOS,
    bot_env,
    check_invariants,
    prepare,
    record_figure,
)


@pytest.fixture(scope="module")
def alerts():
    """A webhook that keeps what it is sent."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare(SCENARIOS["both"], tmp_path_factory.mktemp("disk") / "prepared")


def failed_alerts(received: list[dict]) -> list[str]:
    texts = [json.dumps(a) for a in received]
    return [t for t in texts if "FAILED" in t]


def test_a_disk_that_fills_at_each_write(bots, prepared, alerts, tmp_path):
    url, received = alerts
    with prepared.fresh(tmp_path / "count") as (exchange, server, logs):
        env = bot_env(server, exchange, prepared.scenario.tickers)
        trace = tmp_path / "trace.json"
        assert bots.run(["--log-dir", str(logs)], env=env, cwd=logs.parent,
                        trace=trace).returncode == 0
        writes = len(json.loads(trace.read_text())["writes"])
    assert writes >= 5
    problems = {}
    for k in range(1, writes + 1):
        workdir = tmp_path / f"full-{k}"
        workdir.mkdir()
        received.clear()
        with prepared.fresh(workdir) as (exchange, server, logs):
            env = bot_env(server, exchange, prepared.scenario.tickers, ALERT_WEBHOOK_URL=url,
                          ALERT_EVENTS="failed")
            full = bots.run(["--log-dir", str(logs)], env=env, cwd=workdir,
                            kill={"fail_writes_from": k})
            found = []
            if full.returncode != 1:
                found.append(f"exit {full.returncode}")
            if "cannot be written (No space left on device)" not in full.stderr \
                    or "the disk is full" not in full.stderr:
                found.append("no clear error: " + full.stderr[-800:])
            if "Traceback" in full.stderr:
                found.append("a traceback: " + full.stderr[-1500:])
            if not failed_alerts(received):
                found.append("no failed alert")
            again = bots.run(["--log-dir", str(logs)], env=env, cwd=workdir)
            if again.returncode != 0:
                found.append(f"the next run exited {again.returncode}: {again.stderr[-800:]}")
            found += check_invariants(exchange, logs)
            runs = sorted((logs / "runs").iterdir())
            if not (runs[-2] / "summary.json").exists() \
                    and "the previous run" not in again.stderr:
                found.append("the next run did not say the failed run left no summary")
        if found:
            problems[k] = found
    record_figure("disk-full", points=writes, survived=writes - len(problems))
    assert not problems, "\n".join(f"disk full from write {k}: {'; '.join(p)}"
                                   for k, p in problems.items())


@contextlib.contextmanager
def read_only(directory: Path):
    """`directory` and everything in it unwritable for this process, root included (as a
    read-only mount would be)."""
    if os.geteuid() != 0:
        paths = [directory, *directory.rglob("*")]
        for path in paths:
            path.chmod(path.stat().st_mode & 0o555)
        try:
            yield
        finally:
            for path in paths:
                path.chmod(path.stat().st_mode | 0o200)
        return
    if subprocess.run(["chattr", "-R", "+i", str(directory)],
                      capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no read-only dir")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-R", "-i", str(directory)], check=True)


def test_a_read_only_log_dir_is_a_clear_error_with_an_alert(bots, prepared, alerts, tmp_path):
    url, received = alerts
    received.clear()
    with prepared.fresh(tmp_path) as (exchange, server, logs):
        env = bot_env(server, exchange, prepared.scenario.tickers, ALERT_WEBHOOK_URL=url,
                      ALERT_EVENTS="failed")
        before = {p: p.read_bytes() for p in logs.rglob("*") if p.is_file()}
        with read_only(logs):
            run = bots.run(["--log-dir", str(logs)], env=env, cwd=tmp_path)
        assert run.returncode == 1
        assert str(logs) in run.stderr and "not writable" in run.stderr, run.stderr[-1500:]
        assert "Traceback" not in run.stderr
        assert failed_alerts(received), "no failed alert"
        assert {p: p.read_bytes() for p in logs.rglob("*") if p.is_file()} == before
        assert len(exchange.orders) == len(prepared.exchange().orders)  # nothing sent
        again = bots.run(["--log-dir", str(logs)], env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-1500:]
        assert check_invariants(exchange, logs) == []


def test_a_log_file_that_cannot_be_written_says_so_once(tmp_path, capfd):
    """bot.log on a full disk (/dev/full): one line on stderr, and the run is told."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    handler = run_logging.RunFile(os.devnull, encoding="utf-8")
    handler.stream.close()
    handler.stream = open("/dev/full", "w", encoding="utf-8")  # noqa: SIM115 - the handler's
    bot = logging.getLogger("bot")
    bot.addHandler(handler)
    try:
        for i in range(3):
            bot.error("line %d", i)
    finally:
        run_logging.remove_handler(handler)
    err = capfd.readouterr().err
    assert err.count("cannot be written (No space left on device)") == 1
    assert "Traceback" not in err
    assert handler.failed is not None and os.strerror(errno.ENOSPC) in handler.failed
