"""Secrets, live trading and the local exchange's door.

* No key, secret or webhook token appears in any file a run writes, nor in its output:
  runs that succeed, fail at the broker, are refused the keys, and die of an unexpected
  error, at every log level - with `python trading_bot.py` as cron starts it.
* `.env` (and the state under logs/) is git-ignored.
* Live trading needs `--live`: ALPACA_PAPER=false without it exits 2 before any request.
* The local exchange listens on 127.0.0.1 only and answers 401 without valid keys.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import requests

from config import LIVE_URL, PAPER_URL, Config
from simbroker import Fault
from tests.bot_process import ROOT
from tests.reliability_support import SCENARIOS, bot_env, prepare

KEY = "PKRELIABLE7Q2XW9"
SECRET = "sk-Reliability-9f8e7d6c5b4a3210"
WRONG_SECRET = "WrongSecret-5d4c3b2a1f0e"
WEBHOOK_TOKEN = "T0K3N-hook-8a7b6c5d"
SECRETS = (KEY, SECRET, WRONG_SECRET, WEBHOOK_TOKEN)

RUNS = {
    # name: (extra environment, faults, expected exit code)
    "succeeds": ({"LOG_LEVEL": "DEBUG"}, [], 0),
    "fails at the broker": ({}, [Fault(status=500, count=1000)], 1),
    "keys refused": ({"ALPACA_SECRET_KEY": WRONG_SECRET, "LOG_LEVEL": "DEBUG"}, [], 1),
    "unexpected error": ({}, [Fault(method="GET", path="/v2/account", status=200,
                                    body={"unexpected": True})], 1),
    "config error": ({"POSITION_SIZE_USD": "-1"}, [], 2),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each run of RUNS in its own directory, as a real process; their outputs."""
    root = tmp_path_factory.mktemp("secrets")
    scenario = SCENARIOS["entries"]
    keyed = type(scenario)(scenario.name, scenario.specs, scenario.setup_days, scenario.day,
                           {"key_id": KEY, "secret_key": SECRET})
    prepared = prepare(keyed, root / "prepared")
    outputs = {}
    for name, (extra, faults, expected) in RUNS.items():
        workdir = root / name.replace(" ", "-")
        workdir.mkdir()
        with prepared.fresh(workdir) as (exchange, server, logs):
            for fault in faults:
                server.faults.add(fault)
            env = bot_env(server, exchange, scenario.tickers, REQUEST_RETRIES="0",
                          # A webhook whose URL is a credential; nothing listens there.
                          ALERT_WEBHOOK_URL=f"http://127.0.0.1:9/hooks/{WEBHOOK_TOKEN}",
                          ALERT_TIMEOUT_SECONDS="1", **extra)
            done = subprocess.run([sys.executable, str(ROOT / "trading_bot.py"),
                                   "--log-dir", str(logs)], env=env, cwd=workdir,
                                  capture_output=True, text=True, timeout=60)
        outputs[name] = (done, expected, workdir)
    return outputs


@pytest.mark.parametrize("name", list(RUNS))
def test_no_secret_in_any_file_or_output_of_a_run(runs, name):
    done, expected, workdir = runs[name]
    assert done.returncode == expected, done.stderr
    files = [p for p in workdir.rglob("*") if p.is_file()]
    assert any(p.name == "bot.log" for p in files) or expected == 2
    texts = {str(p.relative_to(workdir)): p.read_bytes().decode("utf-8", "replace")
             for p in files}
    texts["stdout"], texts["stderr"] = done.stdout, done.stderr
    leaks = {where: [s for s in SECRETS if s in text] for where, text in texts.items()}
    assert {where: found for where, found in leaks.items() if found} == {}


def test_the_failing_runs_say_why(runs):
    assert "check ALPACA_API_KEY / ALPACA_SECRET_KEY" in runs["keys refused"][0].stderr
    assert "unexpected error" in runs["unexpected error"][0].stderr
    assert "POSITION_SIZE_USD" in runs["config error"][0].stderr
    assert "HTTP 500" in runs["fails at the broker"][0].stderr
    # The webhook, whose URL holds a token, was tried (and its URL kept out of the log).
    assert "not sent to webhook" in runs["fails at the broker"][0].stderr


def test_env_and_state_are_git_ignored():
    for path in (".env", "logs/positions.json", "logs/trades.csv", "sim/exchange.json"):
        check = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert check.returncode == 0, f"{path} is not git-ignored"
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=ROOT, capture_output=True,
                             text=True)
    assert tracked.stdout == ""


def test_live_trading_needs_the_live_flag(tmp_path):
    assert Config().trading_url == PAPER_URL and Config().alpaca_paper
    assert Config(alpaca_paper=False).trading_url == LIVE_URL
    prepared = prepare(SCENARIOS["entries"], tmp_path / "prepared")
    with prepared.fresh(tmp_path) as (exchange, server, logs):
        env = bot_env(server, exchange, prepared.scenario.tickers, ALPACA_PAPER="false")
        bot = [sys.executable, str(ROOT / "trading_bot.py"), "--log-dir", str(logs)]
        requests_before = len(exchange.requests.entries)
        refused = subprocess.run(bot, env=env, cwd=tmp_path, capture_output=True, text=True,
                                 timeout=60)
        assert refused.returncode == 2
        assert "ALPACA_PAPER=false selects the live account; add --live" in refused.stderr
        assert len(exchange.requests.entries) == requests_before  # not one request
        assert len(exchange.orders) == 0 and not (logs / "runs").exists()
        allowed = subprocess.run([*bot, "--live"], env=env, cwd=tmp_path, capture_output=True,
                                 text=True, timeout=60)
        assert allowed.returncode == 0, allowed.stderr
        assert "trading LIVE account" in allowed.stderr
        assert len(exchange.orders) == 3


def test_the_local_exchange_listens_on_loopback_only_and_wants_the_keys(tmp_path):
    prepared = prepare(SCENARIOS["entries"], tmp_path / "prepared")
    with prepared.fresh(tmp_path) as (exchange, server, logs):
        assert server.host == "127.0.0.1"
        for address in _other_addresses():
            with pytest.raises(OSError):
                socket.create_connection((address, server.port), timeout=2).close()
        key, secret = exchange.config.key_id, exchange.config.secret_key
        paths = ["/v2/account", "/v2/orders", "/v2/stocks/bars?symbols=AAA&timeframe=1Day",
                 "/v2/stocks/snapshots?symbols=AAA", "/_sim/clock", "/_sim/requests"]
        for path in paths:
            url = server.trading_url + path
            for headers in ({}, {"APCA-API-KEY-ID": key},
                            {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": "wrong"},
                            {"APCA-API-KEY-ID": "wrong", "APCA-API-SECRET-KEY": secret}):
                answer = requests.get(url, headers=headers, timeout=5)
                # Alpaca's Market Data API answers bad keys with 403, its Trading API with 401.
                refusal = 403 if path.startswith("/v2/stocks") else 401
                assert answer.status_code == refusal, (path, headers)
            answer = requests.get(url, headers={"APCA-API-KEY-ID": key,
                                                "APCA-API-SECRET-KEY": secret}, timeout=5)
            assert answer.status_code == 200, (path, answer.text)
        refused = requests.post(server.trading_url + "/v2/orders", timeout=5,
                                json={"symbol": "AAA", "qty": 1, "side": "buy",
                                      "type": "market", "time_in_force": "day"})
        assert refused.status_code == 401 and len(exchange.orders) == 0


def _other_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (none in some sandboxes)."""
    found = set()
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.connect(("10.255.255.255", 1))  # no packet is sent: it only picks a route
        found.add(probe.getsockname()[0])
        probe.close()
    except OSError:
        pass
    try:
        found |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None,
                                                            socket.AF_INET)}
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127.") and a != "0.0.0.0")


# -- from the first line to the last -------------------------------------------------------------

def test_every_file_a_run_writes_is_private(runs):
    done, _, workdir = runs["succeeds"]
    files = [p for p in (workdir / "logs").rglob("*") if p.is_file()]
    assert any(p.name == "bot.log" for p in files) and len(files) >= 5
    loose = {str(p.relative_to(workdir)): oct(p.stat().st_mode & 0o777) for p in files
             if p.stat().st_mode & 0o077}
    assert loose == {}


def test_an_uncaught_exception_is_printed_redacted(tmp_path):
    """Python's excepthook (main thread and others) goes through the bot's redaction."""
    script = ("import threading, logger\n"
              f"logger.setup_logging(secrets=[{SECRET!r}])\n"
              f"t = threading.Thread(target=lambda: 1 / 0 if {SECRET!r} else 0)\n"
              "t.start(); t.join()\n"
              f"raise RuntimeError('the key is {SECRET}')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "RuntimeError: the key is <redacted>" in done.stderr
    assert "ZeroDivisionError" in done.stderr
    assert SECRET not in done.stderr + done.stdout


def test_a_setting_that_holds_a_key_by_mistake_is_not_echoed(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET,
           "POSITION_SIZE_USD": SECRET, "Z_SCORE_WINDOW": KEY}
    done = subprocess.run([sys.executable, str(ROOT / "trading_bot.py"), "--log-dir",
                           str(tmp_path / "logs")], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "POSITION_SIZE_USD" in done.stderr or "Z_SCORE_WINDOW" in done.stderr
    assert SECRET not in done.stderr + done.stdout and KEY not in done.stderr + done.stdout


@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o640, True), (0o600, False)])
def test_a_readable_env_file_is_warned_about(tmp_path, mode, warned):
    env_file = tmp_path / ".env"
    env_file.write_text(f"ALPACA_API_KEY={KEY}\nALPACA_SECRET_KEY={SECRET}\n"
                        "POSITION_SIZE_USD=-1\n")
    env_file.chmod(mode)
    done = subprocess.run([sys.executable, str(ROOT / "trading_bot.py")],
                          env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2  # the bad setting: the check comes before anything else
    assert ("chmod 600" in done.stderr) == warned
    assert SECRET not in done.stderr


def test_the_local_exchange_takes_its_keys_from_a_file_not_the_command_line(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text(f"{KEY}\n{SECRET}\n")
    keys.chmod(0o600)
    process = subprocess.Popen([sys.executable, "-m", "simbroker", "--port", "0", "--data",
                                "splits", "--keys-file", str(keys)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        while url is None:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            if line.startswith("APCA_API_BASE_URL="):
                url = line.strip().split("=", 1)[1]
        cmdline = (open(f"/proc/{process.pid}/cmdline", "rb").read()
                   if sys.platform == "linux" else b"")
        assert SECRET.encode() not in cmdline and KEY.encode() not in cmdline
        ok = requests.get(url + "/v2/account", timeout=5,
                          headers={"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET})
        assert ok.status_code == 200
        default = requests.get(url + "/v2/account", timeout=5, headers={
            "APCA-API-KEY-ID": "SIMKEY", "APCA-API-SECRET-KEY": "SIMSECRET"})
        assert default.status_code == 401
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=20)
    assert SECRET not in out
