"""Optional alerts about the daily run: a chat webhook (Slack or Discord) and/or email (SMTP).

Settings come from the environment or `.env` (see docs/operations.md):
ALERT_WEBHOOK_URL; ALERT_SMTP_HOST, ALERT_SMTP_PORT, ALERT_SMTP_USER, ALERT_SMTP_PASSWORD,
ALERT_SMTP_FROM, ALERT_SMTP_TO, ALERT_SMTP_STARTTLS; ALERT_EVENTS; ALERT_TIMEOUT_SECONDS;
ALERT_WEBHOOK_FORMAT. What the messages say is alert_messages.py.

An alert is a courtesy, never a reason to fail a run: a channel that errors or times out is
logged (without its URL or password) and skipped for the rest of the run, and nothing here
raises once the settings are loaded. Every text passes through secret redaction before it
reaches a channel or a log line.

The wiring in trading_bot.py is one line per hook:

    alerter = Alerter.from_env(env, secrets)      # after the config loaded
    alerter.run_finished(summary.__dict__)        # after every run, failed ones too
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
from email.message import EmailMessage
from typing import Any, Protocol

from alert_messages import (
    ERROR,
    EVENTS,
    FAILED,
    WARNING,
    Alert,
    failure_alert,
    run_alerts,
)
from errors import ConfigError

log = logging.getLogger("bot.alerts")

WEBHOOK_FORMATS = ("auto", "slack", "discord", "text")
# Discord rejects a `content` longer than 2000 characters (Slack allows more); one limit for both.
MAX_WEBHOOK_CHARS = 2000
DEFAULT_TIMEOUT_SECONDS = 10.0
REDACTED = "<redacted>"


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
    webhook_format: str = "auto"  # auto (from the URL), slack, discord or text


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
    fmt = get("ALERT_WEBHOOK_FORMAT").lower() or "auto"
    if fmt not in WEBHOOK_FORMATS:
        raise ConfigError(f"ALERT_WEBHOOK_FORMAT={fmt!r} is unknown; use one of "
                          f"{', '.join(WEBHOOK_FORMATS)} (auto: from the webhook URL)")
    return AlertSettings(webhook_url=url, smtp=_smtp_settings(get),
                         events=parse_events(get("ALERT_EVENTS")), timeout_seconds=timeout,
                         webhook_format=fmt)


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


# -- formatting --------------------------------------------------------------------------

def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (longest first, so a secret containing another goes whole)
    replaced by <redacted>. Secrets shorter than 4 characters are ignored, as in logger.py:
    replacing "a" everywhere would hide the message, not protect anything."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def webhook_payload(text: str) -> dict[str, str]:
    """One JSON body both services read: Slack shows `text`, Discord shows `content`; for a
    webhook that is neither (ALERT_WEBHOOK_FORMAT=text, or a URL of another service)."""
    return {"text": _cut(text, MAX_WEBHOOK_CHARS), "content": _cut(text, MAX_WEBHOOK_CHARS)}


def webhook_format(url: str, setting: str = "") -> str:
    """slack, discord or text: ALERT_WEBHOOK_FORMAT, else what the URL is (Slack's incoming
    webhooks live under /services/, Discord's under /api/webhooks/)."""
    if setting and setting != "auto":
        return setting
    parsed = urllib.parse.urlsplit(url)
    host, path = (parsed.hostname or "").lower(), parsed.path
    if host.endswith("slack.com") or path.startswith("/services/"):
        return "slack"
    if host.endswith(("discord.com", "discordapp.com")) or path.startswith("/api/webhooks/"):
        return "discord"
    return "text"


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack Block Kit: a header, a context line and one mrkdwn section per part, with the
    plain text as `text` (what notifications show). Limits: a header's text 150 characters, a
    section's 3000, 50 blocks (docs.slack.dev/reference/block-kit/blocks). `&`, `<` and `>`
    are escaped: Slack reads `<!channel>` as a ping
    (docs.slack.dev/messaging/formatting-message-text)."""
    icon = {ERROR: ":red_circle: ", WARNING: ":warning: "}.get(alert.severity, "")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(icon + alert.title, 150),
                                    "emoji": True}}]
    if alert.context:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _cut(_slack_escape(alert.context), 3000)}]})
    for heading, lines in alert.sections[:47]:
        body = "\n".join(_slack_escape(line) for line in lines)
        text = f"*{_slack_escape(heading)}*\n{body}" if heading else body
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, 3000)}})
    return {"text": _cut(alert.text, 3000), "blocks": blocks}


def discord_payload(alert: Alert) -> dict[str, Any]:
    """Discord: one embed coloured by severity, the sections in its description in Discord's
    markdown. Limits: title 256, description 4096, 6000 in all; `content` 2000
    (discord.com/developers/docs/resources/message#embed-object-embed-limits)."""
    parts = [f"*{_discord_escape(alert.context)}*"] if alert.context else []
    for heading, lines in alert.sections:
        body = "\n".join(_discord_escape(line) for line in lines)
        parts.append(f"**{_discord_escape(heading)}**\n{body}" if heading else body)
    color = {ERROR: 0xD62728, WARNING: 0xFF9F1C}.get(alert.severity, 0x2CA02C)
    return {"content": "", "allowed_mentions": {"parse": []},
            "embeds": [{"title": _cut(alert.title, 256),
                        "description": _cut("\n\n".join(parts), 4096), "color": color}]}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _discord_escape(text: str) -> str:
    # Markdown's emphasis and code marks; `_` too, common in exit reasons like stop_loss.
    for mark in ("\\", "*", "_", "`", "~", "|"):
        text = text.replace(mark, "\\" + mark)
    return text


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# -- channels -----------------------------------------------------------------------------

class Channel(Protocol):
    name: str

    def send(self, alert: Alert, timeout: float) -> None: ...


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, format_setting: str = "") -> None:
        self._url = url
        self.format = webhook_format(url, format_setting)

    def payload(self, alert: Alert) -> dict[str, Any]:
        if self.format == "slack":
            return slack_payload(alert)
        if self.format == "discord":
            return discord_payload(alert)
        return webhook_payload(alert.text)

    def send(self, alert: Alert, timeout: float) -> None:
        body = json.dumps(self.payload(alert)).encode()
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
            channels = ([WebhookChannel(settings.webhook_url, settings.webhook_format)]
                        if settings.webhook_url else []) \
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

    def run_failed(self, reason: str, summary: Mapping[str, Any] | None = None) -> None:
        """A failure outside a run's summary (run_finished reports a failed run itself)."""
        if FAILED in self.settings.events:
            self._send_all([failure_alert(reason, summary)])

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
            clean = alert.redacted(lambda text: redact(text, self._secrets))
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
