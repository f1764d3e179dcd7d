"""Publishing: one Publisher interface, its error tree and the post statuses.

The implementations live beside it: ``wordpress`` (the REST client and publisher), ``archive``
(the built-in local archive) and ``safety`` (the HTML allow-list, image placeholders, the SSRF
check for URLs). Exactly-once publishing through the store's ledger is the runner's job
(``runner.publishing``): nothing here knows the store or Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from automation_scripts.base import Article, Image

__all__ = ["POST_STATUSES", "Article", "AuthError", "Image", "LimitReached", "NotFoundError",
           "PermissionDenied", "PublishError", "PublishResult", "Publisher", "ReservationLost",
           "TLSError", "TransientError", "UnsafeURLError", "with_code", "wp_date"]

POST_STATUSES = ("draft", "publish", "future")


class PublishError(Exception):
    """Base of every publishing error. ``retryable``: a later retry may succeed."""

    retryable = False


class AuthError(PublishError):
    """Wrong credentials, or the host strips the Authorization header."""


class PermissionDenied(PublishError):
    """The user may not publish (capability missing)."""


class NotFoundError(PublishError):
    """REST API disabled or wrong URL."""


class TransientError(PublishError):
    """Timeout, connection error, 429, 5xx: worth retrying (after a look-up)."""

    retryable = True


class LimitReached(PublishError):
    """The site's daily post limit is used up."""


class ReservationLost(TransientError):
    """Another attempt took over this slug's reservation: it publishes the post, we must not."""


@dataclass
class PublishResult:
    post_id: str
    post_url: str
    status: str                     # draft | publish | future
    existed: bool = False           # found by the idempotency look-up, not created now
    updated: bool = False           # update mode: this run's content is on the post now


class Publisher(Protocol):
    def find_existing(self, slug: str) -> PublishResult | None:
        """The post with this slug in any status, or None."""

    def publish(self, article: Article, *, status: str, date_gmt: datetime | None = None,
                run_id: str = "") -> PublishResult:
        """Create the post (with images, terms). Raises a PublishError subclass."""

    def update(self, post_id: str, article: Article, *, status: str, run_id: str
               ) -> PublishResult:
        """Replace the post's content, title, excerpt and featured image (update mode),
        marking it as ``run_id``'s."""

    def applied_run(self, post_id: str) -> str:
        """The run whose content the post carries now ("" when unknown)."""


class TLSError(PublishError):
    """The site's HTTPS certificate or handshake failed (retrying will not help)."""


class UnsafeURLError(PublishError):
    """The site URL is not allowed (scheme, credentials, private address)."""


def _with_code(exc: PublishError, code: str, status: int | None = None) -> PublishError:
    """Attach a machine-readable ``code`` (and HTTP status) to a PublishError."""
    exc.code = code            # type: ignore[attr-defined]
    exc.http_status = status   # type: ignore[attr-defined]
    return exc




def wp_date(value: datetime) -> str:
    """A WordPress ``date_gmt``: UTC, no zone suffix, whole seconds."""
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()

def with_code(exc: PublishError, code: str, status: int | None = None) -> PublishError:
    """Attach a machine-readable ``code`` (and HTTP status) to a PublishError."""
    exc.code = code            # type: ignore[attr-defined]
    exc.http_status = status   # type: ignore[attr-defined]
    return exc
