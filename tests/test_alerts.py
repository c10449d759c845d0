"""Alerts: exact payloads over real local HTTP and SMTP servers, failures that never raise,
and no secret in a payload, an email or a log line."""

import email
import email.policy
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from alerts import (
    EVENTS,
    MAX_WEBHOOK_CHARS,
    Alerter,
    discord_payload,
    load_alert_settings,
    redact,
    run_alerts,
    slack_payload,
    webhook_payload,
)
from errors import ConfigError
from simbroker import Fault
from tests.sim_harness import Sim, flat_bars, market
from tests.test_bot_e2e import DAYS, E, scenario

KEY, SECRET = "PKTESTKEY0123456789", "sEcReTkEy/0123456789abcdefghij"
TOKEN = "XyZtOkEn0123456789"
PASSWORD = "smtp-pa55word!"

LOG = "logs/runs/2022-03-01_12-00-00/bot.log"
SUMMARY = {
    "started_at": "2022-03-01T17:00:00+00:00", "outcome": "done", "market_open": True,
    "now": "2022-03-01T17:00:05+00:00", "equity_usd": 100012.5, "symbols_evaluated": 25,
    "z_scores": {"KO": -3.2104, "PG": 0.05, "AAPL": -1.8}, "prices": {},
    "skipped": {"XYZ": "no current price", "BRK.B": "not tradable at the broker"},
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
    "account": "paper", "dry_run": False, "log_path": LOG, "kill_switch": False,
    "failure": "", "equity_before_usd": 100000.0,
    "trades": [{"symbol": "KO", "side": "long", "qty": 2, "pnl_usd": -1.2,
                "exit_reason": "stop_loss", "holding_days": 3, "gross_pnl_usd": -1.2,
                "fees_usd": 0.03, "net_pnl_usd": -1.23}],
    "costs_usd": {"borrow": 0.04, "sec": 0.01, "taf": 0.01}, "costs_not_booked_usd": {},
    "positions": [
        {"symbol": "AAPL", "side": "long", "qty": 0.6, "entry_price": 163.2, "price": 163.5,
         "age_days": 0, "overdue": False, "max_holding_days": 5, "unrealised_pnl_usd": 0.18},
        {"symbol": "PG", "side": "short", "qty": 1, "entry_price": 150.0, "price": 152.0,
         "age_days": 7, "overdue": True, "max_holding_days": 5, "unrealised_pnl_usd": -2.0}],
}

CONTEXT = f"paper account · trading day 2022-03-01, run at 12:00 EST · log {LOG}"
PLACED_TEXT = ("Orders placed 2022-03-01 (paper): 3\n" + CONTEXT + "\n"
               "EXIT sell 2 KO limit 61.5, z=-3.21 (stop_loss): accepted\n"
               "EXIT buy 1 PG limit 150, z=0.05 (mean_reversion): new\n"
               "ENTRY buy 0.6 AAPL limit 163.2, z=-1.80: new")
FILLED_TEXT = ("Orders filled 2022-03-01 (paper): 1\n" + CONTEXT + "\n"
               "sell 2 KO @ 61.52: filled; trade P&L gross -$1.20 (stop_loss)")
STOP_TEXT = ("STOP-LOSS exits 2022-03-01 (paper): 1\n" + CONTEXT + "\n"
             "STOP-LOSS sell 2 KO limit 61.5, z=-3.21 (stop_loss): accepted")
SUMMARY_TEXT = ("Daily summary 2022-03-01 (paper): done, $100,012.50 (+$12.50, +0.01%)\n"
                + CONTEXT + "\n"
                "Account:\n"
                "  equity $100,012.50: +$12.50 (+0.01%) since the last run ($100,000.00)\n"
                "P&L:\n"
                "  realised gross: -$1.20 on 1 trade recorded this run\n"
                "  realised net of costs: -$1.23 (costs booked so far $0.03; a sale's SEC and "
                "FINRA fees are booked the run after it)\n"
                "  account costs since the last run: $0.06 (borrow $0.04, SEC $0.01, FINRA TAF "
                "$0.01)\n"
                "  unrealised: -$1.82 on 2 open positions at this run's prices\n"
                "Run:\n"
                "  2 exits and 1 entry sent; 1 fill; 1 trade recorded\n"
                "  25 symbols evaluated; 1 skipped; 1 ticker not tradable at the broker\n"
                "Trades recorded (1):\n"
                "  KO long 2 shares: gross -$1.20, costs $0.03, net -$1.23 (stop_loss, held 3 "
                "days)\n"
                "Positions now (2, 1 overdue):\n"
                "  AAPL long 0.6 @ 163.2, day 0, now 163.50: +$0.18\n"
                "  PG short 1 @ 150, day 7 OVERDUE (limit 5 days), now 152.00: -$2.00")
SUBJECTS = ["Orders placed 2022-03-01 (paper): 3", "Orders filled 2022-03-01 (paper): 1",
            "STOP-LOSS exits 2022-03-01 (paper): 1",
            "Daily summary 2022-03-01 (paper): done, $100,012.50 (+$12.50, +0.01%)"]


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
    assert [a.subject for a in alerts] == SUBJECTS
    assert [a.severity for a in alerts] == ["info", "info", "warning", "warning"]  # overdue


def test_quiet_day_sends_only_the_summary_and_a_closed_market_says_so():
    quiet = {**SUMMARY, "exits": [], "entries": [], "fills": []}
    assert [a.kind for a in run_alerts(quiet)] == ["summary"]
    closed = {"started_at": "2022-03-05T17:00:00+00:00", "outcome": "market_closed",
              "now": "2022-03-05T17:00:00+00:00"}
    assert [a.text for a in run_alerts(closed)] == [
        "Daily summary 2022-03-05: market closed, nothing to do\n"
        "trading day 2022-03-05, run at 12:00 EST"]


def test_events_setting_filters_and_errors_are_listed():
    settings = load_alert_settings({"ALERT_EVENTS": "stop_loss, summary"})
    with_errors = {**SUMMARY, "errors": ["KO: connection failed"]}
    alerts = run_alerts(with_errors, settings.events)
    assert [a.kind for a in alerts] == ["stop_loss", "summary"]
    assert alerts[1].text.endswith("Errors (1):\n  KO: connection failed")
    assert alerts[1].severity == "warning"
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
    env = {"ALERT_WEBHOOK_URL": webhook.url, "ALERT_WEBHOOK_FORMAT": "text"}
    Alerter.from_env(env, [KEY, SECRET]).run_finished(SUMMARY)
    assert webhook.posts == [
        (f"/services/T000/B000/{TOKEN}", "application/json", {"text": t, "content": t})
        for t in (PLACED_TEXT, FILLED_TEXT, STOP_TEXT, SUMMARY_TEXT)]
    assert "alert summary sent to webhook" in logs.text
    assert TOKEN not in logs.text


def test_slack_gets_blocks_with_the_plain_text_as_fallback(webhook):
    # A Slack URL (hooks.slack.com/services/...): the format follows from its path.
    Alerter.from_env({"ALERT_WEBHOOK_URL": webhook.url}).run_finished(SUMMARY)
    bodies = [body for _, _, body in webhook.posts]
    assert [b["text"] for b in bodies] == [PLACED_TEXT, FILLED_TEXT, STOP_TEXT, SUMMARY_TEXT]
    summary = bodies[-1]["blocks"]
    assert summary[0]["type"] == "header"
    assert summary[0]["text"] == {"type": "plain_text", "emoji": True,
                                  "text": ":warning: " + SUBJECTS[-1]}
    assert summary[1] == {"type": "context", "elements": [{"type": "mrkdwn", "text": CONTEXT}]}
    assert summary[3] == {"type": "section", "text": {"type": "mrkdwn", "text": (
        "*P&amp;L*\nrealised gross: -$1.20 on 1 trade recorded this run\n"
        "realised net of costs: -$1.23 (costs booked so far $0.03; a sale's SEC and FINRA fees "
        "are booked the run after it)\n"
        "account costs since the last run: $0.06 (borrow $0.04, SEC $0.01, FINRA TAF $0.01)\n"
        "unrealised: -$1.82 on 2 open positions at this run's prices")}}
    assert [b["text"]["text"].split("\n")[0] for b in summary[2:]] == [
        "*Account*", "*P&amp;L*", "*Run*", "*Trades recorded (1)*",
        "*Positions now (2, 1 overdue)*"]
    assert bodies[0]["blocks"][0]["text"]["text"] == SUBJECTS[0]  # no icon: nothing wrong


def test_discord_gets_one_embed_coloured_by_severity(webhook):
    url = webhook.url.replace("/services/T000/B000/", "/api/webhooks/123/")
    Alerter.from_env({"ALERT_WEBHOOK_URL": url}).run_finished(
        {**SUMMARY, "outcome": "failed", "failure": "the broker did not answer (BrokerError)"})
    bodies = [body for _, _, body in webhook.posts]
    assert [len(b["embeds"]) for b in bodies] == [1] * 5
    failed, summary = bodies[0]["embeds"][0], bodies[-1]["embeds"][0]
    assert failed["title"] == "Run FAILED 2022-03-01 (paper)"
    assert failed["color"] == 0xD62728 and summary["color"] == 0xD62728
    assert bodies[1]["embeds"][0]["color"] == 0x2CA02C  # placed: nothing wrong
    assert failed["description"].startswith(
        f"*{CONTEXT.replace('_', chr(92) + '_')}*\n\n**Why**\n"
        "the broker did not answer (BrokerError)\n\n**What the run did**\n")
    assert "KO long 2 shares: gross -$1.20, costs $0.03, net -$1.23 (stop\\_loss, held 3 " \
        "days)" in summary["description"]
    assert all(b["content"] == "" and b["allowed_mentions"] == {"parse": []} for b in bodies)


def test_a_long_message_stays_within_each_services_limits():
    many = {**SUMMARY, "positions": SUMMARY["positions"] * 200,
            "errors": ["x" * 500] * 40}
    alert = run_alerts(many)[-1]
    assert "... and 375 more" in alert.text  # 400 positions, 25 lines shown
    blocks = slack_payload(alert)["blocks"]
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    embed = discord_payload(alert)["embeds"][0]
    assert len(embed["description"]) <= 4096 and len(embed["title"]) <= 256
    assert len(webhook_payload(alert.text)["content"]) <= MAX_WEBHOOK_CHARS


def mail_text(message) -> tuple[str, str]:
    """(subject, decoded body) of a message the local SMTP server received."""
    parsed = email.message_from_bytes(message.content, policy=email.policy.default)
    return parsed["Subject"], parsed.get_content().replace("\r\n", "\n")


def test_email_receives_one_message_per_event(smtp, logs):
    env = smtp_env(smtp.port, ALERT_SMTP_USER="bot", ALERT_SMTP_PASSWORD=PASSWORD)
    Alerter.from_env(env, [KEY, SECRET]).run_finished(SUMMARY)
    assert smtp.logins == [(b"bot", PASSWORD.encode())] * 4
    assert [m.rcpt_tos for m in smtp.messages] == [["me@example.com", "you@example.com"]] * 4
    assert {m.mail_from for m in smtp.messages} == {"bot@example.com"}
    assert [mail_text(m) for m in smtp.messages] == [
        (f"[trading bot] {subject}", body + "\n") for subject, body in zip(
            SUBJECTS, [PLACED_TEXT, FILLED_TEXT, STOP_TEXT, SUMMARY_TEXT], strict=True)]
    assert "alert summary sent to email" in logs.text


def test_run_failed_reaches_both_channels_with_every_secret_redacted(webhook, smtp, logs):
    env = {"ALERT_WEBHOOK_URL": webhook.url, "ALERT_WEBHOOK_FORMAT": "text",
           **smtp_env(smtp.port, ALERT_SMTP_USER="bot", ALERT_SMTP_PASSWORD=PASSWORD)}
    alerter = Alerter.from_env(env, [KEY, SECRET])
    alerter.run_failed(f"HTTP 401 for key {KEY} secret {SECRET}; posting to {webhook.url} "
                       f"(path /services/T000/B000/{TOKEN}) with password {PASSWORD}")
    expected = ("Run FAILED\nWhy:\n  HTTP 401 for key <redacted> secret <redacted>; posting "
                "to <redacted> (path <redacted>) with password <redacted>\n"
                "Next:\n  the next run reconciles with the broker; the run's bot.log has the "
                "details")
    assert webhook.posts == [(f"/services/T000/B000/{TOKEN}", "application/json",
                              {"text": expected, "content": expected})]
    [mail] = smtp.messages
    received = mail.content.decode()
    assert mail_text(mail) == ("[trading bot] Run FAILED", expected + "\n")
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


# -- what a real run sends: the bot against the local exchange, alerts to the local webhook ----

@pytest.fixture
def bot_sim(tmp_path, monkeypatch, webhook):
    """A two-symbol market: AAA enters on day E (z=-2) and reverts on E+1; BBB enters on E+1."""
    monkeypatch.chdir(tmp_path)  # no developer .env leaks into a test
    aaa, _ = scenario(["z=0.5", "z=0.5"], symbol="AAA")
    bbb, _ = scenario(["z=-2.0", "z=0.0"], entry_z=0.0, symbol="BBB")
    data = market(flat_bars("AAA", aaa["AAA"]), flat_bars("BBB", bbb["BBB"]))
    sim = Sim(tmp_path, data, DAYS[E - 1], spread_bps=0.0)
    sim.env.update(TICKERS="AAA,BBB", ALERT_WEBHOOK_URL=webhook.url,
                   ALERT_WEBHOOK_FORMAT="text")
    yield sim
    sim.close()


def texts(webhook) -> dict[str, str]:
    """The day's messages by their first word(s): the receiver's posts, then cleared."""
    out = {body["text"].split(" 20")[0]: body["text"] for _, _, body in webhook.posts}
    webhook.posts.clear()
    return out


def test_a_normal_day_names_account_day_log_and_pnl(bot_sim, webhook):
    assert bot_sim.run(DAYS[E]) == 0
    first = texts(webhook)
    assert set(first) == {"Orders placed", "Orders filled", "Daily summary"}
    log = bot_sim.last_summary()["log_path"]
    day = DAYS[E].isoformat()
    for text in first.values():
        assert f"simulated account · trading day {day}, run at 12:00 EST · log {log}" in text
    assert "(no earlier run to compare with)" in first["Daily summary"]
    assert "Positions now (1):\n  AAA long" in first["Daily summary"]
    assert bot_sim.run(DAYS[E + 1]) == 0
    second = texts(webhook)
    summary = bot_sim.last_summary()
    (trade,) = bot_sim.trades()
    pnl = float(trade["pnl_usd"])
    assert f"sell {float(trade['qty']):g} AAA @ {float(trade['exit_price']):g}: filled; " \
        f"trade P&L gross {'+' if pnl >= 0 else '-'}${abs(pnl):,.2f} (mean_reversion)" \
        in second["Orders filled"]
    change = summary["equity_usd"] - summary["equity_before_usd"]
    assert f"since the last run (${summary['equity_before_usd']:,.2f})" in second["Daily summary"]
    assert f"{'+' if change >= 0 else '-'}${abs(change):,.2f}" in second["Daily summary"]
    assert f"realised gross: {'+' if pnl >= 0 else '-'}${abs(pnl):,.2f} on 1 trade recorded" \
        in second["Daily summary"]
    assert "AAA long" in second["Daily summary"] and "mean_reversion, held 1 day)" \
        in second["Daily summary"]


def test_a_failed_run_with_orders_out_says_what_it_did_and_why(bot_sim, webhook):
    assert bot_sim.run(DAYS[E]) == 0
    texts(webhook)
    # Day E+1: the exit of AAA is sent first and both its attempts fail (the order never
    # reaches the book); BBB's entry goes through and fills.
    bot_sim.server.faults.add(Fault(method="POST", path="/v2/orders", status=503, count=2))
    assert bot_sim.run(DAYS[E + 1]) == 1
    sent = texts(webhook)
    assert set(sent) == {"Run FAILED", "Orders placed", "Orders filled", "Daily summary"}
    failed = sent["Run FAILED"]
    assert failed.startswith(f"Run FAILED {DAYS[E + 1]} (simulated)\nsimulated account")
    assert "Why:\n  the broker did not confirm the orders for AAA; they stay pending and the " \
        "next run asks the broker for them (BrokerError)" in failed
    assert "What the run did:\n  1 exit and 1 entry sent; 1 fill\n" \
        "  not confirmed by the broker (pending, the next run asks): AAA" in failed
    assert "Positions now (2):\n  AAA long" in failed and "\n  BBB long" in failed
    assert "buy" in sent["Orders filled"] and "BBB" in sent["Orders filled"]
    assert "Daily summary" in sent and ": failed," in sent["Daily summary"]
    # The reason is in the run's own log too.
    log = Path(bot_sim.last_summary()["log_path"])
    assert "run failed: the broker did not confirm the orders for AAA" in log.read_text()


def test_the_kill_switch_is_in_the_summary(bot_sim, webhook):
    bot_sim.log_dir.mkdir(parents=True, exist_ok=True)
    (bot_sim.log_dir / "STOP").write_text("")
    assert bot_sim.run(DAYS[E]) == 0
    sent = texts(webhook)
    assert set(sent) == {"Daily summary"}  # no entry: nothing placed
    assert "Notes:\n  KILL SWITCH ON: the STOP file exists; exits only, no new entries" \
        in sent["Daily summary"]


def test_a_dry_run_says_so_in_every_message(bot_sim, webhook):
    assert bot_sim.run(DAYS[E], "--dry-run") == 0
    sent = {body["text"].split(" 20")[0]: body["text"] for _, _, body in webhook.posts}
    assert set(sent) == {"DRY RUN: Orders a dry run would place", "DRY RUN: Daily summary"}
    assert "ENTRY buy" in sent["DRY RUN: Orders a dry run would place"]
    assert ": dry_run" in sent["DRY RUN: Orders a dry run would place"]
    assert "dry run: orders computed and logged, none sent; no state file written" \
        in sent["DRY RUN: Daily summary"]
    assert bot_sim.trades() == [] and bot_sim.store.load_holdings() == {}
