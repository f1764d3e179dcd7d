"""Email over SMTP: ``TICKZEN_SMTP_URL`` parsed, one message per event composed, sent.

``smtp://user:pass@host:port`` (plain, port 25), ``smtps://`` (TLS from the start, 465) and
``smtp+starttls://`` (STARTTLS, 587). A message has a plain-text part and an HTML alternative
built from the same lines, with every value escaped, and absolute links back to the portal.
Sending raises ``MailError`` saying whether a later attempt may succeed.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

from storage.notification_records import OutboxEvent

SCHEMES = {"smtp": ("plain", 25), "smtps": ("ssl", 465), "smtp+starttls": ("starttls", 587)}
ITEMS_IN_MAIL = 50


class MailError(Exception):
    """Sending failed; ``retryable`` when a later attempt may succeed (network, 4xx)."""

    def __init__(self, message: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    security: str = "plain"                 # plain | ssl | starttls
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def parse(cls, url: str) -> SMTPSettings:
        """``smtp[s|+starttls]://[user:pass@]host[:port]``; ValueError saying what is wrong."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"TICKZEN_SMTP_URL is not a valid URL: {exc}") from None
        if parts.scheme not in SCHEMES:
            raise ValueError("TICKZEN_SMTP_URL must start with smtp://, smtps:// or "
                             "smtp+starttls://")
        if not parts.hostname:
            raise ValueError("TICKZEN_SMTP_URL has no host")
        security, default_port = SCHEMES[parts.scheme]
        return cls(host=parts.hostname, port=port or default_port, security=security,
                   username=unquote(parts.username or ""),
                   password=unquote(parts.password or ""))


class Mailer:
    """Sends one message per call over a fresh SMTP connection (events are rare)."""

    def __init__(self, settings: SMTPSettings, mail_from: str, *, timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if not parseaddr(mail_from)[1] or "@" not in parseaddr(mail_from)[1]:
            raise ValueError(f"TICKZEN_MAIL_FROM is not an email address: {mail_from!r}")
        self.settings = settings
        self.mail_from = mail_from
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    @classmethod
    def from_url(cls, url: str, mail_from: str, **kwargs: Any) -> Mailer:
        return cls(SMTPSettings.parse(url), mail_from, **kwargs)

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            if s.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout,
                                                        context=self.ssl_context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
            with client:
                if s.security == "starttls":
                    client.starttls(context=self.ssl_context)
                if s.username:
                    client.login(s.username, s.password)
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise MailError(f"the SMTP server refused the recipient: {exc.recipients}",
                            retryable=all(400 <= c < 500 for c in codes),
                            code=codes[0] if codes else None) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(f"the SMTP server refused the login ({exc.smtp_code})",
                            retryable=False, code=exc.smtp_code) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            raise MailError(f"SMTP {exc.smtp_code}: {text}"[:500],
                            retryable=not 500 <= exc.smtp_code < 600,
                            code=exc.smtp_code) from None
        except (smtplib.SMTPException, OSError) as exc:      # refused, timeout, TLS, DNS
            raise MailError(f"SMTP server {s.host}:{s.port} unreachable: "
                            f"{exc or type(exc).__name__}"[:500], retryable=True) from None


# ---------------------------------------------------------------------------------------------
# Composing.


def _lines(event: OutboxEvent, url: Any) -> list[tuple[str, str | None]]:
    """The message as (text, link) lines, shared by the text and the HTML part."""
    data = event.data or {}
    lines: list[tuple[str, str | None]] = [(event.message, None), ("", None)]
    run = data.get("run")
    if isinstance(run, dict):
        counts = run.get("counts") or {}
        lines.append((f"Run: {run.get('name', '')}", None))
        lines.append((f"Items: {run.get('total', 0)} — {counts.get('published', 0)} "
                      f"published, {counts.get('skipped', 0)} skipped, "
                      f"{counts.get('failed', 0)} failed", None))
        if run.get("error"):
            lines.append((f"Error: {run['error']}", None))
    failed = data.get("failed_items") or []
    if failed:
        lines.append(("", None))
        lines.append(("Failed items:", None))
        for item in failed[:ITEMS_IN_MAIL]:
            lines.append((f"  • {item.get('label') or item.get('key')}: "
                          f"{item.get('error') or 'no error recorded'}", None))
        if len(failed) > ITEMS_IN_MAIL:
            lines.append((f"  … and {len(failed) - ITEMS_IN_MAIL} more", None))
    for fire in data.get("fires") or []:
        lines.append((f"Fire due {fire.get('scheduled_for')}: {fire.get('outcome')} "
                      f"({fire.get('reason') or 'no reason given'})", None))
    if data.get("error") and not (isinstance(run, dict) and run.get("error")):
        lines.append((f"Error: {data['error']}", None))
    if event.link:
        lines.append(("", None))
        lines.append(("Open in TickZen: ", url(event.link)))
    lines.append(("Choose which events email you: ", url("/account")))
    return lines


def compose(event: OutboxEvent, to: str, mail_from: str, public_url: str = "") -> EmailMessage:
    """One message for one event: subject, text, HTML, absolute links, a stable Message-ID."""
    base = public_url.rstrip("/")

    def url(link: str) -> str:
        return f"{base}{link}" if base and link.startswith("/") else link

    lines = _lines(event, url)
    message = EmailMessage()
    message["Subject"] = f"[TickZen] {event.title}"
    message["From"] = mail_from
    message["To"] = formataddr(("", to))
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "tickzen.invalid"
    message["Message-ID"] = f"<{event.id}@{domain}>"        # one event, one message id
    message["Auto-Submitted"] = "auto-generated"
    message["X-TickZen-Event"] = event.type
    message.set_content(_text(event, lines))
    message.add_alternative(_html(event, lines), subtype="html")
    return message


def _text(event: OutboxEvent, lines: Sequence[tuple[str, str | None]]) -> str:
    body = [event.title, "=" * min(len(event.title), 72), ""]
    body += [f"{text}{link}" if link else text for text, link in lines]
    return "\n".join(body) + "\n"


def _html(event: OutboxEvent, lines: Sequence[tuple[str, str | None]]) -> str:
    e = html.escape
    parts = [f"<h1 style=\"font-size:18px\">{e(event.title)}</h1>"]
    for text, link in lines:
        if link:
            parts.append(f"<p>{e(text)}<a href=\"{e(link, quote=True)}\">{e(link)}</a></p>")
        elif text:
            parts.append(f"<p>{e(text)}</p>")
    return ("<!doctype html><html><body style=\"font-family:sans-serif\">"
            + "\n".join(parts) + "</body></html>\n")
