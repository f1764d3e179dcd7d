"""Publishing: one Publisher interface, a WordPress REST client and the local archive.

(Interface fixed here; implementation: issue 4.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


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


@dataclass
class Image:
    filename: str                   # e.g. "aapl-price.png"
    data: bytes
    alt: str
    role: str = "inline"            # "featured" | "inline"
    mime: str = "image/png"


@dataclass
class Article:
    """What an automation produces. ``html`` may hold ``{{image:<filename>}}`` placeholders
    that the publisher replaces with the uploaded image's URL."""

    slug: str
    title: str
    html: str
    excerpt: str = ""
    images: list[Image] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class PublishResult:
    post_id: str
    post_url: str
    status: str                     # draft | publish | future
    existed: bool = False           # found by the idempotency look-up, not created now


class Publisher(Protocol):
    def find_existing(self, slug: str) -> PublishResult | None:
        """The post with this slug in any status, or None."""

    def publish(self, article: Article, *, status: str, date_gmt: datetime | None = None
                ) -> PublishResult:
        """Create the post (with images, terms). Raises a PublishError subclass."""


class PublishingService:
    """Exactly-once publishing of articles to a user's sites: the runner's only entry point.

    ``publish`` reserves the slug in the site's ledger (atomically against the daily limit),
    looks the slug up on the site itself, creates the post only when it is nowhere, and records
    the result. A timeout after the request went out is followed by a look-up before any retry.
    """

    def __init__(self, store, secrets, archive_dir, *, allow_private_urls: bool = True) -> None:
        self.store = store
        self.secrets = secrets
        self.archive_dir = archive_dir
        self.allow_private_urls = allow_private_urls

    def already_published(self, user_id: str, site_id: str, slug: str):
        """The ledger entry (storage.base.LedgerEntry) when ``slug`` is published there."""
        raise NotImplementedError("issue 4")

    def publish(self, user_id: str, site_id: str, article: Article, *, run_id: str, kind: str,
                options: dict) -> PublishResult:
        """Publish once; ``options`` may override status ('draft'|'publish'|'future')."""
        raise NotImplementedError("issue 4")
