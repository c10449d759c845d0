"""Optional alerts about the daily run: a chat webhook (Slack or Discord) and/or email (SMTP).

Settings come from the environment or `.env` (see docs/operations.md):
ALERT_WEBHOOK_URL; ALERT_SMTP_HOST, ALERT_SMTP_PORT, ALERT_SMTP_USER, ALERT_SMTP_PASSWORD,
ALERT_SMTP_FROM, ALERT_SMTP_TO, ALERT_SMTP_STARTTLS; ALERT_EVENTS; ALERT_TIMEOUT_SECONDS.

An alert is a courtesy, never a reason to fail a run: a channel that errors or times out is
logged (without its URL or password) and skipped for the rest of the run, and nothing here
raises once the settings are loaded. Every text passes through secret redaction before it
reaches a channel or a log line.

The wiring in trading_bot.py is one line per hook:

    alerter = Alerter.from_env(env, secrets)      # after the config loaded
    alerter.run_finished(summary.__dict__)        # after run_once returned
    alerter.run_failed(str(exc))                  # where main catches BotError
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

from errors import ConfigError
from market_calendar import NEW_YORK
from signal_generator import ExitReason

log = logging.getLogger("bot.alerts")

FAILED, PLACED, FILLED, STOP_LOSS, SUMMARY = "failed", "placed", "filled", "stop_loss", "summary"
EVENTS: tuple[str, ...] = (FAILED, PLACED, FILLED, STOP_LOSS, SUMMARY)
# Discord rejects a `content` longer than 2000 characters (Slack allows more); one limit for both.
MAX_WEBHOOK_CHARS = 2000
DEFAULT_TIMEOUT_SECONDS = 10.0
REDACTED = "<redacted>"
_MAX_LINES = 25  # order lines per message; a run never places more than a few dozen orders


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    user: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class AlertSettings:
    webhook_url: str = field(default="", repr=False)  # the URL is the webhook's credential
    smtp: SmtpSettings | None = None
    events: frozenset[str] = frozenset(EVENTS)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Alert:
    kind: str  # one of EVENTS
    subject: str
    text: str


# -- settings -----------------------------------------------------------------------------

def load_alert_settings(env: Mapping[str, str]) -> AlertSettings:
    """ALERT_* settings, validated. Raises ConfigError naming the setting and the fix."""
    def get(name: str) -> str:
        return (env.get(name) or "").strip()

    url = get("ALERT_WEBHOOK_URL")
    if url and not url.startswith(("https://", "http://")):
        # The value is not echoed: a webhook URL carries its token.
        raise ConfigError("ALERT_WEBHOOK_URL must start with https:// (the URL Slack or "
                          "Discord gives for an incoming webhook)")
    timeout = DEFAULT_TIMEOUT_SECONDS
    if get("ALERT_TIMEOUT_SECONDS"):
        try:
            timeout = float(get("ALERT_TIMEOUT_SECONDS"))
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 120:
            raise ConfigError(f"ALERT_TIMEOUT_SECONDS={get('ALERT_TIMEOUT_SECONDS')!r} must be "
                              "a number of seconds between 0 and 120, e.g. 10")
    return AlertSettings(webhook_url=url, smtp=_smtp_settings(get),
                         events=parse_events(get("ALERT_EVENTS")), timeout_seconds=timeout)


def parse_events(raw: str) -> frozenset[str]:
    """ALERT_EVENTS: a comma list of EVENTS, `all` (the default when empty) or `none`."""
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    if not names or names == ["all"]:
        return frozenset(EVENTS)
    if names == ["none"]:
        return frozenset()
    unknown = [n for n in names if n not in EVENTS]
    if unknown:
        raise ConfigError(f"ALERT_EVENTS: {', '.join(unknown)} unknown; use a comma list of "
                          f"{', '.join(EVENTS)} (or all, or none)")
    return frozenset(names)


def _smtp_settings(get: Any) -> SmtpSettings | None:
    host = get("ALERT_SMTP_HOST")
    if not host:
        others = [n for n in ("ALERT_SMTP_TO", "ALERT_SMTP_USER", "ALERT_SMTP_FROM") if get(n)]
        if others:
            raise ConfigError(f"{others[0]} is set but ALERT_SMTP_HOST is not; set the mail "
                              "server's host name, e.g. smtp.gmail.com")
        return None
    port_text = get("ALERT_SMTP_PORT") or "587"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"ALERT_SMTP_PORT={port_text!r} is not a port; use 587 (STARTTLS), "
                          "465 (TLS) or 25")
    recipients = tuple(a.strip() for a in get("ALERT_SMTP_TO").split(",") if a.strip())
    if not recipients:
        raise ConfigError("ALERT_SMTP_TO is empty; list the recipients separated by commas")
    user, password = get("ALERT_SMTP_USER"), get("ALERT_SMTP_PASSWORD")
    if bool(user) != bool(password):
        missing = "ALERT_SMTP_PASSWORD" if user else "ALERT_SMTP_USER"
        raise ConfigError(f"{missing} is not set; the server login needs both ALERT_SMTP_USER "
                          "and ALERT_SMTP_PASSWORD (or neither, for a relay without login)")
    sender = get("ALERT_SMTP_FROM") or (user if "@" in user else "")
    if "@" not in sender:
        raise ConfigError("ALERT_SMTP_FROM is not set; give the sender's address, e.g. "
                          "bot@example.com")
    starttls = (get("ALERT_SMTP_STARTTLS") or "true").lower()
    if starttls not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ConfigError(f"ALERT_SMTP_STARTTLS={starttls!r} is not a boolean; use true or false")
    return SmtpSettings(host=host, port=int(port_text), sender=sender, recipients=recipients,
                        starttls=starttls in ("1", "true", "yes", "on"), user=user,
                        password=password)


# -- messages (pure) ----------------------------------------------------------------------

def failure_alert(reason: str, stamp: str = "") -> Alert:
    title = f"Trading bot run FAILED {stamp}".rstrip()
    return Alert(FAILED, title, f"{title}: {reason}\nThe next run reconciles with the broker; "
                 "see the run's bot.log for details.")


def run_alerts(summary: Mapping[str, Any], events: Iterable[str] = EVENTS) -> list[Alert]:
    """The messages for one finished run (a RunSummary as a dict), one per event kind that
    has something to say, in EVENTS order, keeping only `events`."""
    wanted = set(events)
    stamp = _stamp(summary)
    exits, entries = list(summary.get("exits") or []), list(summary.get("entries") or [])
    fills = list(summary.get("fills") or [])
    stops = [e for e in exits if e.get("exit_reason") == ExitReason.STOP_LOSS]
    alerts = []
    if summary.get("outcome") == "failed":
        alerts.append(failure_alert("; ".join(summary.get("errors") or [])
                                    or "no reason recorded", stamp))
    if exits or entries:
        alerts.append(_listing(PLACED, f"Orders placed {stamp}",
                               [_order_line("EXIT", e) for e in exits]
                               + [_order_line("ENTRY", e) for e in entries]))
    if fills:
        alerts.append(_listing(FILLED, f"Orders filled {stamp}", [_fill_line(f) for f in fills]))
    if stops:
        alerts.append(_listing(STOP_LOSS, f"STOP-LOSS exits {stamp}",
                               [_order_line("STOP-LOSS", e) for e in stops]))
    alerts.append(Alert(SUMMARY, f"Daily summary {stamp}", summary_text(summary, stamp)))
    return [a for a in alerts if a.kind in wanted]


def summary_text(summary: Mapping[str, Any], stamp: str) -> str:
    outcome = summary.get("outcome") or "unknown"
    if outcome == "market_closed":
        return f"Daily summary {stamp}: market closed, nothing to do."
    equity = summary.get("equity_usd")
    parts = [f"Daily summary {stamp}: {outcome}.",
             f"Equity: {'unknown' if equity is None else f'${equity:,.2f}'}.",
             f"Symbols evaluated: {summary.get('symbols_evaluated', 0)};"
             f" skipped: {len(summary.get('skipped') or {})}.",
             f"Exits sent: {len(summary.get('exits') or [])}; entries sent: "
             f"{len(summary.get('entries') or [])}; fills: {len(summary.get('fills') or [])};"
             f" trades recorded: {summary.get('trades_recorded', 0)}."]
    unmanaged = dict(summary.get("unmanaged") or {})
    if unmanaged:
        parts.append(f"Held but not managed today ({len(unmanaged)}):\n"
                     + _lines([f"  {s}: {why}" for s, why in sorted(unmanaged.items())]))
    errors = list(summary.get("errors") or [])
    if errors:
        parts.append(f"Errors ({len(errors)}):\n" + _lines([f"  {e}" for e in errors]))
    return "\n".join(parts)


def _listing(kind: str, title: str, lines: Sequence[str]) -> Alert:
    return Alert(kind, title, f"{title} ({len(lines)}):\n" + _lines(lines))


def _stamp(summary: Mapping[str, Any]) -> str:
    raw = summary.get("now") or summary.get("started_at") or ""
    try:
        return f"{datetime.fromisoformat(raw).astimezone(NEW_YORK):%Y-%m-%d %H:%M %Z}"
    except (TypeError, ValueError):
        return str(raw)[:25]


def _order_line(label: str, e: Mapping[str, Any]) -> str:
    reason = f" ({e['exit_reason']})" if e.get("exit_reason") else ""
    z = e.get("z")
    z_text = f", z={z:.2f}" if isinstance(z, int | float) else ""
    return (f"  {label} {e.get('side', '?')} {_num(e.get('qty'))} {e.get('symbol', '?')} "
            f"limit {_num(e.get('limit_price'))}{z_text}{reason}: {e.get('status', '?')}")


def _fill_line(f: Mapping[str, Any]) -> str:
    return (f"  {f.get('side', '?')} {_num(f.get('filled_qty'))} {f.get('symbol', '?')} @ "
            f"{_num(f.get('filled_avg_price'))}: {f.get('status', '?')}")


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _lines(lines: Sequence[str]) -> str:
    if len(lines) <= _MAX_LINES:
        return "\n".join(lines)
    return "\n".join([*lines[:_MAX_LINES], f"  ... and {len(lines) - _MAX_LINES} more"])


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (longest first, so a secret containing another goes whole)
    replaced by <redacted>. Secrets shorter than 4 characters are ignored, as in logger.py:
    replacing "a" everywhere would hide the message, not protect anything."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def webhook_payload(text: str) -> dict[str, str]:
    """One JSON body both services read: Slack shows `text`, Discord shows `content`."""
    if len(text) > MAX_WEBHOOK_CHARS:
        text = text[:MAX_WEBHOOK_CHARS - 1] + "…"
    return {"text": text, "content": text}


# -- channels -----------------------------------------------------------------------------

class Channel(Protocol):
    name: str

    def send(self, alert: Alert, timeout: float) -> None: ...


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str) -> None:
        self._url = url

    def send(self, alert: Alert, timeout: float) -> None:
        body = json.dumps(webhook_payload(alert.text)).encode()
        request = urllib.request.Request(self._url, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "mean-reversion-bot"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()


class EmailChannel:
    name = "email"

    def __init__(self, smtp: SmtpSettings) -> None:
        self._smtp = smtp

    def send(self, alert: Alert, timeout: float) -> None:
        s = self._smtp
        message = EmailMessage()
        message["Subject"] = f"[trading bot] {alert.subject}"
        message["From"] = s.sender
        message["To"] = ", ".join(s.recipients)
        message.set_content(alert.text)
        # Port 465 speaks TLS from the first byte (RFC 8314); 587 and 25 upgrade with STARTTLS.
        if s.port == 465:
            server: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=timeout,
                                                    context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(s.host, s.port, timeout=timeout)
        with server:
            if s.starttls and s.port != 465:
                server.starttls(context=ssl.create_default_context())
            if s.user:
                server.login(s.user, s.password)
            server.send_message(message)


def describe_failure(exc: BaseException) -> str:
    """What went wrong, without the exception's text: urllib's and smtplib's messages can
    quote the URL (the webhook's token) or the server's reply to a login."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason  # urllib wraps the socket's error: report that one
    if isinstance(exc, TimeoutError):
        return "no answer within the timeout"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__} (SMTP {exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPException | ssl.SSLError):
        return type(exc).__name__
    if isinstance(exc, OSError):
        return f"connection failed ({type(exc).__name__})"
    return type(exc).__name__


# -- the alerter --------------------------------------------------------------------------

class Alerter:
    """Sends a run's alerts to every configured channel; never raises once built."""

    def __init__(self, settings: AlertSettings, secrets: Iterable[str] = (),
                 channels: Sequence[Channel] | None = None) -> None:
        self.settings = settings
        password = settings.smtp.password if settings.smtp else ""
        self._secrets = [*secrets, password, settings.webhook_url,
                         *_url_parts(settings.webhook_url)]
        if channels is None:
            channels = ([WebhookChannel(settings.webhook_url)] if settings.webhook_url else []) \
                + ([EmailChannel(settings.smtp)] if settings.smtp else [])
        self._channels = list(channels)

    @classmethod
    def from_env(cls, env: Mapping[str, str], secrets: Iterable[str] = ()) -> Alerter:
        """The alerter configured by ALERT_* settings (none configured: it does nothing).
        `secrets` are the other values no alert may show (the Alpaca key and secret)."""
        return cls(load_alert_settings(env), secrets)

    @property
    def enabled(self) -> bool:
        return bool(self._channels) and bool(self.settings.events)

    def run_failed(self, reason: str) -> None:
        if FAILED in self.settings.events:
            self._send_all([failure_alert(reason)])

    def run_finished(self, summary: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        try:
            alerts = run_alerts(summary, self.settings.events)
        except Exception as exc:  # a malformed summary must not fail the run it reports on
            log.warning("alerts not sent: the run summary could not be read (%s)",
                        type(exc).__name__)
            return
        self._send_all(alerts)

    def _send_all(self, alerts: Sequence[Alert]) -> None:
        """One run's alerts. A channel that fails is skipped for the rest of them, so a dead
        server costs one timeout per run, not one per message; the next run tries again."""
        down: set[str] = set()
        for alert in alerts:
            clean = Alert(alert.kind, redact(alert.subject, self._secrets),
                          redact(alert.text, self._secrets))
            for channel in self._channels:
                if channel.name in down:
                    log.info("alert %s not sent to %s: it failed earlier in this run",
                             alert.kind, channel.name)
                elif not self._send(channel, clean):
                    down.add(channel.name)

    def _send(self, channel: Channel, alert: Alert) -> bool:
        try:
            channel.send(alert, self.settings.timeout_seconds)
        except Exception as exc:  # any failure: logged, and the run goes on
            log.warning("alert %s not sent to %s: %s", alert.kind, channel.name,
                        redact(describe_failure(exc), self._secrets))
            return False
        log.info("alert %s sent to %s", alert.kind, channel.name)
        return True


def _url_parts(url: str) -> list[str]:
    """The webhook URL's path and query: an error message may quote them without the host
    (Slack's and Discord's tokens live in the path)."""
    if not url:
        return []
    parsed = urllib.parse.urlsplit(url)
    parts = [parsed.path + (f"?{parsed.query}" if parsed.query else ""), parsed.query]
    return [p for p in parts if len(p) >= 8]
