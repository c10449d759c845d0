"""Alerts: exact payloads over real local HTTP and SMTP servers, failures that never raise,
and no secret in a payload, an email or a log line."""

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from alerts import (
    EVENTS,
    MAX_WEBHOOK_CHARS,
    Alerter,
    load_alert_settings,
    redact,
    run_alerts,
    webhook_payload,
)
from errors import ConfigError

KEY, SECRET = "PKTESTKEY0123456789", "sEcReTkEy/0123456789abcdefghij"
TOKEN = "XyZtOkEn0123456789"
PASSWORD = "smtp-pa55word!"

SUMMARY = {
    "started_at": "2022-03-01T17:00:00+00:00", "outcome": "done", "market_open": True,
    "now": "2022-03-01T17:00:05+00:00", "equity_usd": 100012.5, "symbols_evaluated": 25,
    "z_scores": {"KO": -3.2104, "PG": 0.05, "AAPL": -1.8}, "prices": {},
    "skipped": {"XYZ": "no current price"},
    "exits": [
        {"symbol": "KO", "side": "sell", "qty": 2.0, "limit_price": 61.5, "z": -3.2104,
         "client_order_id": "mr-20220301-KO-exit", "exit_reason": "stop_loss",
         "status": "accepted"},
        {"symbol": "PG", "side": "buy", "qty": 1.0, "limit_price": 150.0, "z": 0.05,
         "client_order_id": "mr-20220301-PG-exit", "exit_reason": "mean_reversion",
         "status": "new"},
    ],
    "entries": [
        {"symbol": "AAPL", "side": "buy", "qty": 0.6, "limit_price": 163.2, "z": -1.8,
         "client_order_id": "mr-20220301-AAPL-long", "status": "new"},
    ],
    "fills": [{"symbol": "KO", "side": "sell", "filled_qty": 2.0, "filled_avg_price": 61.52,
               "status": "filled"}],
    "trades_recorded": 1, "notes": [], "errors": [], "requests": 9,
}

PLACED_TEXT = ("Orders placed 2022-03-01 12:00 EST (3):\n"
               "  EXIT sell 2 KO limit 61.5, z=-3.21 (stop_loss): accepted\n"
               "  EXIT buy 1 PG limit 150, z=0.05 (mean_reversion): new\n"
               "  ENTRY buy 0.6 AAPL limit 163.2, z=-1.80: new")
FILLED_TEXT = "Orders filled 2022-03-01 12:00 EST (1):\n  sell 2 KO @ 61.52: filled"
STOP_TEXT = ("STOP-LOSS exits 2022-03-01 12:00 EST (1):\n"
             "  STOP-LOSS sell 2 KO limit 61.5, z=-3.21 (stop_loss): accepted")
SUMMARY_TEXT = ("Daily summary 2022-03-01 12:00 EST: done.\n"
                "Equity: $100,012.50.\n"
                "Symbols evaluated: 25; skipped: 1.\n"
                "Exits sent: 2; entries sent: 1; fills: 1; trades recorded: 1.")


# -- local servers ------------------------------------------------------------------------

class Receiver:
    """What the local webhook received; `status` and `delay` shape its answer."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, dict]] = []
        self.status = 200
        self.delay = 0.0
        self.url = ""


@pytest.fixture
def webhook():
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.posts.append((self.path, self.headers["Content-Type"], json.loads(body)))
            time.sleep(receiver.delay)
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/{TOKEN}"
    yield receiver
    server.shutdown()
    server.server_close()


class Inbox:
    def __init__(self) -> None:
        self.messages = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.reply = "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(envelope)
        return self.reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        inbox.logins.append((auth_data.login, auth_data.password))
        # handled=False: aiosmtpd then answers 535 itself (its default leaves the client hanging)
        return AuthResult(success=auth_data.password == PASSWORD.encode(), handled=False)

    # Controller checks readiness by connecting to its port, so port 0 cannot be used.
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(),
                            auth_require_tls=False, authenticator=authenticate)
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def logs(caplog):
    # setup_logging (run by other tests through trading_bot.main) stops "bot" propagating.
    bot = logging.getLogger("bot")
    propagate = bot.propagate
    bot.propagate = True
    caplog.set_level(logging.INFO, logger="bot")
    yield caplog
    bot.propagate = propagate


def smtp_env(port: int, **extra: str) -> dict[str, str]:
    return {"ALERT_SMTP_HOST": "127.0.0.1", "ALERT_SMTP_PORT": str(port),
            "ALERT_SMTP_FROM": "bot@example.com",
            "ALERT_SMTP_TO": "me@example.com, you@example.com", "ALERT_SMTP_STARTTLS": "false",
            **extra}


# -- messages -----------------------------------------------------------------------------

def test_one_message_per_event_kind_with_exact_texts():
    alerts = run_alerts(SUMMARY)
    assert [(a.kind, a.text) for a in alerts] == [
        ("placed", PLACED_TEXT), ("filled", FILLED_TEXT), ("stop_loss", STOP_TEXT),
        ("summary", SUMMARY_TEXT)]
    assert [a.subject for a in alerts] == [
        "Orders placed 2022-03-01 12:00 EST", "Orders filled 2022-03-01 12:00 EST",
        "STOP-LOSS exits 2022-03-01 12:00 EST", "Daily summary 2022-03-01 12:00 EST"]


def test_quiet_day_sends_only_the_summary_and_a_closed_market_says_so():
    quiet = {**SUMMARY, "exits": [], "entries": [], "fills": []}
    assert [a.kind for a in run_alerts(quiet)] == ["summary"]
    closed = {"started_at": "2022-03-05T17:00:00+00:00", "outcome": "market_closed",
              "now": "2022-03-05T17:00:00+00:00"}
    assert [a.text for a in run_alerts(closed)] == \
        ["Daily summary 2022-03-05 12:00 EST: market closed, nothing to do."]


def test_events_setting_filters_and_errors_are_listed():
    settings = load_alert_settings({"ALERT_EVENTS": "stop_loss, summary"})
    with_errors = {**SUMMARY, "errors": ["KO: connection failed"]}
    alerts = run_alerts(with_errors, settings.events)
    assert [a.kind for a in alerts] == ["stop_loss", "summary"]
    assert alerts[1].text.endswith("Errors (1):\n  KO: connection failed")
    assert load_alert_settings({}).events == frozenset(EVENTS)
    assert load_alert_settings({"ALERT_EVENTS": "none"}).events == frozenset()


def test_webhook_payload_fits_discord_and_redaction_takes_longest_first():
    payload = webhook_payload("x" * 5000)
    assert len(payload["content"]) == MAX_WEBHOOK_CHARS and payload["text"] == payload["content"]
    assert redact("key abcd and abcdef", ["abcd", "abcdef", "ab"]) == \
        "key <redacted> and <redacted>"


@pytest.mark.parametrize("env, name", [
    ({"ALERT_WEBHOOK_URL": "hooks.slack.com/services/x"}, "ALERT_WEBHOOK_URL"),
    ({"ALERT_SMTP_TO": "me@example.com"}, "ALERT_SMTP_HOST"),
    ({"ALERT_SMTP_HOST": "smtp.example.com"}, "ALERT_SMTP_TO"),
    ({**smtp_env(25), "ALERT_SMTP_PORT": "smtp"}, "ALERT_SMTP_PORT"),
    ({**smtp_env(25), "ALERT_SMTP_USER": "bot"}, "ALERT_SMTP_PASSWORD"),
    ({**smtp_env(25), "ALERT_SMTP_FROM": ""}, "ALERT_SMTP_FROM"),
    ({**smtp_env(25), "ALERT_SMTP_STARTTLS": "maybe"}, "ALERT_SMTP_STARTTLS"),
    ({"ALERT_EVENTS": "failed,fills"}, "ALERT_EVENTS"),
    ({"ALERT_TIMEOUT_SECONDS": "0"}, "ALERT_TIMEOUT_SECONDS"),
])
def test_bad_settings_name_the_setting(env, name):
    with pytest.raises(ConfigError, match=name) as raised:
        load_alert_settings(env)
    assert "slack.com" not in str(raised.value)  # a webhook URL is never echoed


def test_smtp_defaults():
    smtp = load_alert_settings({"ALERT_SMTP_HOST": "smtp.example.com",
                                "ALERT_SMTP_USER": "bot@example.com",
                                "ALERT_SMTP_PASSWORD": PASSWORD,
                                "ALERT_SMTP_TO": "me@example.com"}).smtp
    assert (smtp.port, smtp.starttls, smtp.sender) == (587, True, "bot@example.com")
    assert PASSWORD not in repr(smtp)


def test_nothing_configured_does_nothing(logs):
    alerter = Alerter.from_env({}, [KEY, SECRET])
    assert not alerter.enabled
    alerter.run_finished(SUMMARY)
    alerter.run_failed("boom")
    assert "alert" not in logs.text


# -- delivery -----------------------------------------------------------------------------

def test_webhook_receives_exact_payloads(webhook, logs):
    Alerter.from_env({"ALERT_WEBHOOK_URL": webhook.url}, [KEY, SECRET]).run_finished(SUMMARY)
    assert webhook.posts == [
        (f"/services/T000/B000/{TOKEN}", "application/json", {"text": t, "content": t})
        for t in (PLACED_TEXT, FILLED_TEXT, STOP_TEXT, SUMMARY_TEXT)]
    assert "alert summary sent to webhook" in logs.text
    assert TOKEN not in logs.text


def test_email_receives_one_message_per_event(smtp, logs):
    env = smtp_env(smtp.port, ALERT_SMTP_USER="bot", ALERT_SMTP_PASSWORD=PASSWORD)
    Alerter.from_env(env, [KEY, SECRET]).run_finished(SUMMARY)
    assert smtp.logins == [(b"bot", PASSWORD.encode())] * 4
    assert [m.rcpt_tos for m in smtp.messages] == [["me@example.com", "you@example.com"]] * 4
    assert {m.mail_from for m in smtp.messages} == {"bot@example.com"}
    texts = [m.content.decode() for m in smtp.messages]
    for text, subject, body in zip(texts, ["Orders placed", "Orders filled", "STOP-LOSS exits",
                                           "Daily summary"],
                                   [PLACED_TEXT, FILLED_TEXT, STOP_TEXT, SUMMARY_TEXT],
                                   strict=True):
        assert f"Subject: [trading bot] {subject} 2022-03-01 12:00 EST" in text
        assert body.replace("\n", "\r\n") in text
    assert "alert summary sent to email" in logs.text


def test_run_failed_reaches_both_channels_with_every_secret_redacted(webhook, smtp, logs):
    env = {"ALERT_WEBHOOK_URL": webhook.url,
           **smtp_env(smtp.port, ALERT_SMTP_USER="bot", ALERT_SMTP_PASSWORD=PASSWORD)}
    alerter = Alerter.from_env(env, [KEY, SECRET])
    alerter.run_failed(f"HTTP 401 for key {KEY} secret {SECRET}; posting to {webhook.url} "
                       f"(path /services/T000/B000/{TOKEN}) with password {PASSWORD}")
    expected = ("Trading bot run FAILED: HTTP 401 for key <redacted> secret <redacted>; posting "
                "to <redacted> (path <redacted>) with password <redacted>\n"
                "The next run reconciles with the broker; see the run's bot.log for details.")
    assert webhook.posts == [(f"/services/T000/B000/{TOKEN}", "application/json",
                              {"text": expected, "content": expected})]
    [mail] = smtp.messages
    received = mail.content.decode()
    assert "Subject: [trading bot] Trading bot run FAILED" in received
    for secret in (KEY, SECRET, TOKEN, PASSWORD):
        assert secret not in received and secret not in logs.text


def test_webhook_answering_500_is_logged_and_skipped_for_the_rest_of_the_run(webhook, logs):
    webhook.status = 500
    alerter = Alerter.from_env({"ALERT_WEBHOOK_URL": webhook.url}, [KEY, SECRET])
    alerter.run_finished(SUMMARY)  # must not raise
    assert len(webhook.posts) == 1
    assert "alert placed not sent to webhook: HTTP 500" in logs.text
    assert "alert summary not sent to webhook: it failed earlier in this run" in logs.text
    assert TOKEN not in logs.text
    assert all(r.levelno <= logging.WARNING for r in logs.records)
    # The next run (the same alerter in a multi-day --sim) tries again.
    webhook.status = 200
    alerter.run_finished(SUMMARY)
    assert len(webhook.posts) == 5


def test_closed_ports_are_logged_and_never_raise(logs):
    port = free_port()
    env = {"ALERT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hooks/{TOKEN}",
           **smtp_env(port, ALERT_SMTP_USER="bot", ALERT_SMTP_PASSWORD=PASSWORD)}
    alerter = Alerter.from_env(env, [KEY, SECRET])
    alerter.run_failed("broker unreachable")
    alerter.run_finished(SUMMARY)
    assert "alert failed not sent to webhook: connection failed (ConnectionRefusedError)" \
        in logs.text
    assert "alert failed not sent to email: connection failed (ConnectionRefusedError)" \
        in logs.text
    assert TOKEN not in logs.text and PASSWORD not in logs.text


def test_slow_webhook_times_out(webhook, logs):
    webhook.delay = 3.0
    env = {"ALERT_WEBHOOK_URL": webhook.url, "ALERT_TIMEOUT_SECONDS": "0.2"}
    Alerter.from_env(env).run_finished(SUMMARY)
    # One timeout, then the channel is skipped for the run's other messages: the receiver
    # was asked once.
    assert "alert placed not sent to webhook: no answer within the timeout" in logs.text
    assert "alert summary not sent to webhook: it failed earlier in this run" in logs.text
    assert len(webhook.posts) == 1


def test_smtp_refusal_and_bad_login_are_logged(smtp, logs):
    smtp.reply = "554 5.7.1 rejected"
    Alerter.from_env(smtp_env(smtp.port)).run_failed("x")
    assert "alert failed not sent to email: SMTPDataError (SMTP 554)" in logs.text
    wrong = smtp_env(smtp.port, ALERT_SMTP_USER="bot", ALERT_SMTP_PASSWORD="wrong-password")
    Alerter.from_env(wrong).run_failed("x")
    assert "alert failed not sent to email: SMTPAuthenticationError (SMTP 535)" in logs.text
    assert "wrong-password" not in logs.text


def test_malformed_summary_is_logged_not_raised(webhook, logs):
    Alerter.from_env({"ALERT_WEBHOOK_URL": webhook.url}).run_finished({"exits": [None]})
    assert webhook.posts == []
    assert "alerts not sent: the run summary could not be read" in logs.text
