"""One Standard Webhooks request: the signed POST and what its answer means for a retry.

The body is ``{type, timestamp, data}``; headers ``webhook-id`` (the delivery's id: the same on
every retry, so a receiver can drop duplicates), ``webhook-timestamp`` (this attempt, in
seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, made by
the ``standardwebhooks`` library). The URL passes the site URLs' SSRF checks on every attempt
(a name may start resolving elsewhere), and redirects are never followed.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook as Signer

from automation_scripts.publishing.safety import url_problem

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
RETRY_AFTER_MAX = 24 * 3600.0       # a Retry-After longer than a day is taken as a day
BODY_PEEK = 300                     # characters of a refusal kept in the log


def new_secret() -> str:
    """A fresh ``whsec_<base64>`` signing secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def payload(event_type: str, timestamp: datetime, data: dict[str, Any]) -> str:
    """The request body, as signed and sent."""
    return json.dumps({"type": event_type, "timestamp": timestamp.astimezone(UTC).isoformat(),
                       "data": data}, separators=(",", ":"), sort_keys=True)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return max(0.0, min(seconds, RETRY_AFTER_MAX))


@dataclass(frozen=True)
class WebhookResult:
    """What one attempt came to: ``ok`` (2xx), or an error and whether to retry."""

    status_code: int | None
    duration_ms: int
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None     # seconds the receiver asked us to wait

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """Signs and posts; knows nothing of the store."""

    def __init__(self, *, allow_private_urls: bool, timeout: tuple[float, float] = (5.0, 10.0),
                 user_agent: str = "TickZen-Webhooks/1") -> None:
        self.allow_private_urls = allow_private_urls
        self.timeout = timeout
        self.user_agent = user_agent

    def send(self, url: str, msg_id: str, body: str, secret: str, now: datetime
             ) -> WebhookResult:
        problem = url_problem(url, allow_private=self.allow_private_urls)
        if problem:
            return WebhookResult(None, 0, f"refused: {problem}")
        signature = Signer(secret).sign(msg_id, now, body)
        headers = {"content-type": "application/json", "user-agent": self.user_agent,
                   "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": signature}
        started = time.monotonic()
        try:
            with requests.post(url, data=body.encode(), headers=headers, timeout=self.timeout,
                               allow_redirects=False, stream=True) as response:
                peek = _peek(response)
                status = response.status_code
                retry_after = retry_after_seconds(response.headers.get("Retry-After"), now)
                location = response.headers.get("Location", "")
        except requests.Timeout:
            return WebhookResult(None, _ms(started), "timed out", retryable=True)
        except requests.ConnectionError as exc:
            return WebhookResult(None, _ms(started), f"connection failed: {_short(exc)}",
                                 retryable=True)
        except requests.RequestException as exc:
            return WebhookResult(None, _ms(started), f"request failed: {_short(exc)}")
        took = _ms(started)
        if 200 <= status < 300:
            return WebhookResult(status, took)
        if status == 429 or status >= 500:
            return WebhookResult(status, took, f"HTTP {status}{peek}", retryable=True,
                                 retry_after=retry_after)
        if 300 <= status < 400:
            return WebhookResult(status, took, f"HTTP {status}: redirects are not followed"
                                 f"{f' (to {location[:200]})' if location else ''}")
        return WebhookResult(status, took, f"HTTP {status}{peek}")


def _peek(response: requests.Response) -> str:
    try:
        chunk = next(response.iter_content(BODY_PEEK * 4), b"")
    except requests.RequestException:
        return ""
    text = chunk.decode(errors="replace").strip()[:BODY_PEEK]
    return f": {text}" if text else ""


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:300]
