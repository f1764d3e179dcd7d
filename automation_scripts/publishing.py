"""Publishing: one Publisher interface, a WordPress REST client and the local archive.

The interface at the top is fixed (the runner and the automations build against it); below it:
the WordPress REST client (requests + tenacity retries), the local archive, HTML sanitising
(nh3), the SSRF check for site URLs, test-connection, and ``PublishingService`` which makes
publishing exactly-once through the store's ledger. Nothing here knows Flask.
"""

from __future__ import annotations

import html as _html
import ipaddress
import json
import logging
import os
import random
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import nh3
import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from storage.base import ConflictError, DailyLimitReached, LedgerEntry, Site, StoreError, utcnow
from storage.base import NotFoundError as StoreNotFound


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


# =============================================================================================
# Implementation (issue 4). Everything below is additive to the fixed interface above.

log = logging.getLogger(__name__)

POST_STATUSES = ("draft", "publish", "future")
DEFAULT_GAP_MINUTES = (30, 90)
LOCAL_RESERVATION_TTL = 15.0    # seconds: writing an archive folder takes milliseconds
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_PLACEHOLDER = re.compile(r"\{\{\s*image:([^}\s]+)\s*\}\}")
_BAD_CREDENTIAL_CODES = ("incorrect_password", "invalid_username", "invalid_email",
                         "application_passwords_disabled",
                         "application_passwords_disabled_for_user")
AUTH_HEADER_HINT = (
    "If the username and application password are right, the web server is stripping the "
    "Authorization header before WordPress sees it: on Apache add "
    "'SetEnvIf Authorization \"(.*)\" HTTP_AUTHORIZATION=$1' to .htaccess; on nginx add "
    "'fastcgi_param HTTP_AUTHORIZATION $http_authorization;' to the PHP location.")


class TLSError(PublishError):
    """The site's HTTPS certificate or handshake failed (retrying will not help)."""


class UnsafeURLError(PublishError):
    """The site URL is not allowed (scheme, credentials, private address)."""


def _with_code(exc: PublishError, code: str, status: int | None = None) -> PublishError:
    """Attach a machine-readable ``code`` (and HTTP status) to a PublishError."""
    exc.code = code            # type: ignore[attr-defined]
    exc.http_status = status   # type: ignore[attr-defined]
    return exc


# ---------------------------------------------------------------------------------------------
# HTML at the boundary: sanitised to an allow-list, whatever the automation produced.

ALLOWED_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "ul", "ol", "li",
                "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
                "strong", "em", "a", "img", "figure", "figcaption", "blockquote"}
ALLOWED_ATTRIBUTES = {"a": {"href"}, "img": {"src", "alt"}}


def sanitize_html(html: str) -> str:
    """The HTML reduced to ALLOWED_TAGS; links get rel="noopener noreferrer nofollow"."""
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


def replace_image_placeholders(html: str, urls: dict[str, str]) -> str:
    """``{{image:<filename>}}`` -> the image's URL (HTML-escaped); unknown ones vanish."""
    return _PLACEHOLDER.sub(lambda m: _html.escape(urls.get(m.group(1), ""), quote=True), html)


# ---------------------------------------------------------------------------------------------
# Site URLs (SSRF): http/https, no credentials, and no private addresses unless allowed.


def url_problem(url: str, *, allow_private: bool,
                resolve: Callable[[str], list[str]] | None = None) -> str | None:
    """Why ``url`` may not be used as a site URL, or None when it is fine.

    Every address the host name resolves to is checked, so a public name that points at
    127.0.0.1 is refused as well when ``allow_private`` is False.
    """
    if not isinstance(url, str) or not url.strip():
        return "url is required for a WordPress site"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "url is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "url must start with http:// or https://"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "url must not contain credentials (use the username and app_password fields)"
    host = parts.hostname
    if not host:
        return "url has no host name"
    if allow_private:
        return None
    try:
        addresses = (resolve or _resolve)(host)
    except OSError:
        return f"url host {host!r} cannot be resolved"
    if not addresses:
        return f"url host {host!r} cannot be resolved"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
                or ip.is_multicast or ip.is_unspecified):
            return (f"url host {host!r} resolves to a private or local address ({ip}); "
                    "such addresses are refused here")
    return None


def _resolve(host: str) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})


# ---------------------------------------------------------------------------------------------
# The WordPress REST client.


class _Retryable(Exception):
    """Internal: an answer worth retrying (429 / 5xx), carrying Retry-After if any."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = _retry_after(response)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class RetryPolicy:
    """How often and how long the client retries transient failures."""

    attempts: int = 4               # total tries per request
    backoff: float = 0.5            # exponential base (seconds) for jittered waits
    max_wait: float = 30.0          # cap for one wait (also caps Retry-After)
    sleep: Callable[[float], None] = time.sleep


def _is_json(response: requests.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "").lower()


def _error_body(response: requests.Response) -> tuple[str, str, dict[str, Any]]:
    """(code, message, data) of a WordPress REST error answer (empty when it is not JSON)."""
    if not _is_json(response):
        return "", "", {}
    try:
        body = response.json()
    except ValueError:
        return "", "", {}
    if not isinstance(body, dict):
        return "", "", {}
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    return (str(body.get("code") or ""), _html.unescape(str(body.get("message") or "")),
            data)


def error_for_response(response: requests.Response, *, sent_credentials: bool = True
                       ) -> PublishError:
    """Map a non-2xx WordPress answer into the PublishError tree (by type, not by string)."""
    status = response.status_code
    code, message, data = _error_body(response)
    detail = f" ({status} {code}: {message})" if code else f" (HTTP {status})"
    if status == 401:
        if code in _BAD_CREDENTIAL_CODES:
            return _with_code(AuthError(
                "WordPress rejected the username or application password" + detail),
                "bad_credentials", status)
        if sent_credentials:
            return _with_code(AuthError(
                "WordPress did not accept the login" + detail + ". Check the username and "
                "application password. " + AUTH_HEADER_HINT), "not_authenticated", status)
        return _with_code(AuthError("WordPress requires a login" + detail), "no_credentials",
                          status)
    if status == 403:
        return _with_code(PermissionDenied(
            "this WordPress user may not do that" + detail), "forbidden", status)
    if status == 404:
        if code:
            return _with_code(NotFoundError(
                "WordPress REST route not found" + detail), "rest_not_found", status)
        return _with_code(NotFoundError(
            "the REST API was not found at this URL (HTTP 404, not a WordPress JSON answer): "
            "check the site URL, and that the REST API is not disabled"), "rest_not_found", status)
    if status == 429 or status >= 500:
        exc = _with_code(TransientError(f"WordPress is unavailable right now{detail}"),
                         "transient", status)
        exc.retry_after = _retry_after(response)      # type: ignore[attr-defined]
        return exc
    exc = _with_code(PublishError(f"WordPress refused the request{detail}"),
                     code or "refused", status)
    if code == "term_exists":
        exc.term_id = data.get("term_id")             # type: ignore[attr-defined]
    return exc


def _transport_error(exc: requests.RequestException, url: str) -> PublishError:
    host = urlsplit(url).netloc
    if isinstance(exc, requests.exceptions.SSLError):
        return _with_code(TLSError(
            f"TLS/HTTPS error talking to {host}: the certificate is not valid or the "
            "handshake failed"), "tls_error")
    if isinstance(exc, requests.Timeout):
        return _with_code(TransientError(f"{host} did not answer in time (timeout)"), "timeout")
    text = str(exc)
    if "refused" in text.lower():
        return _with_code(TransientError(f"connection to {host} refused: is the site up and "
                                         "the URL right?"), "connection_refused")
    if "Name or service not known" in text or "getaddrinfo" in text or "resolve" in text:
        return _with_code(TransientError(f"host {host} cannot be resolved"), "dns_error")
    return _with_code(TransientError(f"connection to {host} failed or was dropped"),
                      "connection_error")


class WordPressClient:
    """Minimal WordPress REST client: authenticated JSON calls with retries on transients.

    Retries (exponential backoff with jitter, Retry-After honoured) happen on connection errors,
    timeouts, 429 and 5xx, never on other 4xx. ``retry=False`` is for the post-creating POST,
    whose caller must look the slug up before trying again.
    """

    def __init__(self, base_url: str, username: str, app_password: str, *,
                 timeout: tuple[float, float] = (5.0, 30.0), policy: RetryPolicy | None = None,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._auth = (username, app_password) if username or app_password else None
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()

    def __repr__(self) -> str:            # never show the password
        return f"WordPressClient({self.base_url!r}, user={self.username!r})"

    def url(self, route: str) -> str:
        return f"{self.base_url}/wp-json/wp/v2/{route.lstrip('/')}"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_wait)
        return wait_random_exponential(multiplier=self.policy.backoff,
                                       max=self.policy.max_wait)(state)

    def send(self, method: str, route: str, *, retry: bool = True, **kwargs: Any
             ) -> requests.Response:
        """One REST call; returns the 2xx JSON response or raises a PublishError."""
        url = self.url(route)
        kwargs.setdefault("timeout", self.timeout)
        # Never follow a redirect: its target escaped the SSRF check, and requests would turn
        # a redirected POST into a GET. The user fixes the site URL instead.
        kwargs.setdefault("allow_redirects", False)
        if self._auth:
            kwargs.setdefault("auth", self._auth)

        def once() -> requests.Response:
            response = self.session.request(method, url, **kwargs)
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(response)
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts if retry else 1),
            wait=self._wait, sleep=self.policy.sleep, reraise=True,
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable) or (
                isinstance(e, requests.RequestException)
                and not isinstance(e, requests.exceptions.SSLError)
                and isinstance(e, (requests.ConnectionError, requests.Timeout)))),
            before_sleep=lambda s: log.info("retrying %s %s after %s", method, route,
                                            s.outcome.exception() if s.outcome else "?"))
        try:
            response = retrying(once)
        except _Retryable as exc:
            raise error_for_response(exc.response) from None
        except requests.RequestException as exc:
            raise _transport_error(exc, url) from exc
        if 300 <= response.status_code < 400:
            target = urlsplit(response.headers.get("Location") or "")
            where = f"{target.scheme}://{target.netloc}" if target.netloc else "another address"
            raise _with_code(NotFoundError(
                f"{self.base_url} redirects to {where} (HTTP {response.status_code}): use the "
                "address WordPress really answers on as the site URL"), "redirect",
                response.status_code)
        if not 200 <= response.status_code < 300:
            raise error_for_response(response, sent_credentials=self._auth is not None)
        if not _is_json(response):
            raise _with_code(NotFoundError(
                f"{self.base_url} answered with {response.headers.get('Content-Type') or 'no'}"
                " content instead of WordPress REST JSON: check the site URL, and that the "
                "REST API is not disabled"), "not_json", response.status_code)
        return response

    def json(self, method: str, route: str, **kwargs: Any) -> Any:
        response = self.send(method, route, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise _with_code(NotFoundError("WordPress answered with invalid JSON"),
                             "not_json") from exc


# ---------------------------------------------------------------------------------------------
# Test connection.


@dataclass
class ConnectionCheck:
    """The answer of a site's test-connection: ``ok`` and a message a user can act on."""

    ok: bool
    code: str                       # ok | bad_credentials | not_authenticated | cannot_publish
    message: str                    # | rest_not_found | not_json | tls_error | timeout ...
    user: str = ""
    capabilities: list[str] = field(default_factory=list)


def check_wordpress(client: WordPressClient) -> ConnectionCheck:
    """``users/me?context=edit`` plus a capability check, each failure with its own message."""
    try:
        me = client.json("GET", "users/me", params={"context": "edit"})
    except PublishError as exc:
        return ConnectionCheck(False, getattr(exc, "code", "error"), str(exc))
    caps = me.get("capabilities") or {} if isinstance(me, dict) else {}
    granted = sorted(k for k, v in caps.items() if v) if isinstance(caps, dict) else []
    name = str(me.get("username") or me.get("slug") or client.username) if isinstance(
        me, dict) else client.username
    if "publish_posts" in granted:
        return ConnectionCheck(True, "ok", f"Connected as {name}; this user may publish posts.",
                               name, granted)
    if "edit_posts" in granted:
        return ConnectionCheck(False, "cannot_publish",
                               f"Connected as {name}, but this user may only write drafts for "
                               "review (no publish_posts capability): use an Author, Editor or "
                               "Administrator account, or publish as draft.", name, granted)
    return ConnectionCheck(False, "cannot_publish",
                           f"Connected as {name}, but this user may not write posts "
                           "(no edit_posts capability).", name, granted)


# ---------------------------------------------------------------------------------------------
# Publishers.


def _wp_date(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()


class WordPressPublisher:
    """Publishes to one WordPress site. ``client`` creates media and posts (the rotated
    author); ``lookup_client`` (the site's own account) finds posts and terms."""

    def __init__(self, client: WordPressClient, lookup_client: WordPressClient | None = None
                 ) -> None:
        self.client = client
        self.lookup = lookup_client or client
        self._terms: dict[tuple[str, str], int] = {}
        # Called before every post-creating request; raises (ReservationLost) when this
        # attempt no longer holds the slug, so it never creates a post another attempt makes.
        self.fence: Callable[[], None] | None = None

    def find_existing(self, slug: str) -> PublishResult | None:
        posts = self._posts_with_slug(slug)
        if not posts:
            return None
        oldest = min(posts, key=lambda p: int(p["id"]))      # duplicates: the first one counts
        return PublishResult(str(oldest["id"]), str(oldest.get("link") or ""),
                             str(oldest.get("status") or ""), existed=True)

    def _posts_with_slug(self, slug: str) -> list[dict[str, Any]]:
        """Every post (any status but trash) whose slug is exactly ``slug``."""
        try:
            posts = self.lookup.json("GET", "posts", params={"slug": slug, "status": "any",
                                                              "context": "edit", "per_page": 20})
        except PublishError as exc:
            if getattr(exc, "code", "") != "rest_invalid_param":
                raise
            # WordPress refuses status=any to anonymous users: the login did not arrive.
            raise _with_code(AuthError(
                "WordPress did not accept the login (it treats the request as anonymous). "
                "Check the username and application password. " + AUTH_HEADER_HINT),
                "not_authenticated", 400) from None
        return [p for p in posts if isinstance(p, dict) and p.get("slug") == slug
                and "id" in p] if isinstance(posts, list) else []

    def term_id(self, taxonomy: str, name: str) -> int:
        """Get-or-create a category/tag by name (a racing creator's ``term_exists`` is fine)."""
        key = (taxonomy, name.strip().lower())
        if key in self._terms:
            return self._terms[key]
        found = self.lookup.json("GET", taxonomy, params={"search": name, "per_page": 100,
                                                           "context": "view"})
        for term in found if isinstance(found, list) else []:
            if _html.unescape(str(term.get("name", ""))).strip().lower() == key[1]:
                self._terms[key] = int(term["id"])
                return self._terms[key]
        try:
            created = self.lookup.json("POST", taxonomy, json={"name": name.strip()})
            term_id = int(created["id"])
        except PublishError as exc:
            existing = getattr(exc, "term_id", None)
            if getattr(exc, "code", "") != "term_exists" or existing is None:
                raise
            term_id = int(existing)
        self._terms[key] = term_id
        return term_id

    def upload_image(self, image: Image) -> dict[str, Any]:
        """Upload to /wp/v2/media with its alt text; returns {id, source_url}."""
        name = image.filename if _SAFE_NAME.match(image.filename) else "image.png"
        media = self.client.json("POST", "media",
                                 files={"file": (name, image.data, image.mime)},
                                 data={"alt_text": image.alt, "title": image.alt[:100]})
        return {"id": int(media["id"]), "source_url": str(media.get("source_url") or "")}

    def publish(self, article: Article, *, status: str, date_gmt: datetime | None = None
                ) -> PublishResult:
        if status not in POST_STATUSES:
            raise PublishError(f"status must be one of {', '.join(POST_STATUSES)}")
        categories = [self.term_id("categories", c) for c in article.categories if c.strip()]
        tags = [self.term_id("tags", t) for t in article.tags if t.strip()]
        urls: dict[str, str] = {}
        featured = 0
        for image in article.images:
            media = self.upload_image(image)
            urls[image.filename] = media["source_url"]
            if image.role == "featured" and not featured:
                featured = media["id"]
        payload: dict[str, Any] = {
            "title": article.title, "slug": article.slug, "status": status,
            "content": sanitize_html(replace_image_placeholders(article.html, urls)),
            "excerpt": article.excerpt, "categories": categories, "tags": tags,
        }
        if featured:
            payload["featured_media"] = featured
        if date_gmt is not None:
            payload["date_gmt"] = _wp_date(date_gmt)
        return self.create_post(payload)

    def create_post(self, payload: dict[str, Any]) -> PublishResult:
        """POST the post once per attempt; after a transient failure (the request may have
        reached WordPress) look the slug up before trying again."""
        slug = payload["slug"]
        policy = self.client.policy
        last: PublishError | None = None
        for attempt in range(1, max(1, policy.attempts) + 1):
            if attempt > 1:
                found = self.find_existing(slug)
                if found is not None:
                    log.info("post %s was created by an earlier attempt: %s", slug, found.post_id)
                    return PublishResult(found.post_id, found.post_url, found.status)
                delay = getattr(last, "retry_after", None)
                if delay is None:
                    delay = random.uniform(0, policy.backoff * 2 ** (attempt - 2))
                policy.sleep(min(delay, policy.max_wait))
            if self.fence is not None:
                self.fence()
            try:
                post = self.client.json("POST", "posts", json=payload, retry=False)
            except TransientError as exc:
                log.warning("creating post %s: %s (attempt %d)", slug, exc, attempt)
                last = exc
                continue
            return self._keep_oldest(slug, post, payload["status"])
        found = self.find_existing(slug)
        if found is not None:
            return PublishResult(found.post_id, found.post_url, found.status)
        assert last is not None
        raise last

    def _keep_oldest(self, slug: str, post: dict[str, Any], status: str) -> PublishResult:
        """After a create: if another post already has our slug (WordPress gave ours ``-2``, or
        two drafts share it), a duplicate was just made: delete ours and use the older one."""
        mine = PublishResult(str(post["id"]), str(post.get("link") or ""),
                             str(post.get("status") or status))
        try:
            others = [p for p in self._posts_with_slug(slug) if str(p["id"]) != mine.post_id]
        except PublishError as exc:
            log.warning("could not check %s for a duplicate after creating it: %s", slug, exc)
            return mine
        older = [p for p in others if int(p["id"]) < int(post["id"])]
        if not older:
            return mine
        first = min(older, key=lambda p: int(p["id"]))
        log.warning("post %s (%s) duplicates %s: deleting the new one", mine.post_id,
                    post.get("slug"), first["id"])
        try:
            self.client.json("DELETE", f"posts/{mine.post_id}", params={"force": "true"})
        except PublishError as exc:
            log.error("could not delete duplicate post %s of %s: %s", mine.post_id, slug, exc)
        return PublishResult(str(first["id"]), str(first.get("link") or ""),
                             str(first.get("status") or status))


def archive_path(archive_dir: str | os.PathLike[str], user_id: str, site_id: str,
                 slug: str | None = None) -> Path:
    """instance/archive/<user>/<site>[/<slug>], refusing ids that could escape the folder."""
    parts = [user_id, site_id] + ([slug] if slug is not None else [])
    for part in parts:
        if not isinstance(part, str) or not _SAFE_ID.match(part):
            raise ValueError(f"unsafe archive path component {part!r}")
    return Path(archive_dir, *parts)


def local_post_url(site_id: str, slug: str) -> str:
    return f"/sites/{site_id}/posts/{slug}"


def load_archived_article(archive_dir: str | os.PathLike[str], user_id: str, site_id: str,
                          slug: str) -> dict[str, Any] | None:
    """The stored article.json of a local-archive post, or None."""
    try:
        path = archive_path(archive_dir, user_id, site_id, slug) / "article.json"
    except ValueError:
        return None
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def archived_image_path(archive_dir: str | os.PathLike[str], user_id: str, site_id: str,
                        slug: str, filename: str) -> Path | None:
    """The stored image file of a local-archive post, or None (also for unsafe names)."""
    if not _SAFE_NAME.match(filename) or filename == "article.json":
        return None
    try:
        path = archive_path(archive_dir, user_id, site_id, slug) / "images" / filename
    except ValueError:
        return None
    return path if path.is_file() else None


class LocalArchivePublisher:
    """The built-in target: articles and images under instance/archive/<user>/<site>/<slug>/,
    served by the portal at ``/sites/<site>/posts/<slug>``. article.json is written last
    (atomically), so its presence means "published"."""

    def __init__(self, archive_dir: str | os.PathLike[str], user_id: str, site_id: str,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.archive_dir = Path(archive_dir)
        self.user_id = user_id
        self.site_id = site_id
        self.clock = clock

    def find_existing(self, slug: str) -> PublishResult | None:
        stored = load_archived_article(self.archive_dir, self.user_id, self.site_id, slug)
        if stored is None:
            return None
        return PublishResult(slug, local_post_url(self.site_id, slug),
                             str(stored.get("status") or "publish"), existed=True)

    def publish(self, article: Article, *, status: str, date_gmt: datetime | None = None
                ) -> PublishResult:
        if status not in POST_STATUSES:
            raise PublishError(f"status must be one of {', '.join(POST_STATUSES)}")
        try:
            folder = archive_path(self.archive_dir, self.user_id, self.site_id, article.slug)
        except ValueError as exc:
            raise PublishError(f"invalid slug {article.slug!r}") from exc
        images_dir = folder / "images"
        images_dir.mkdir(parents=True, exist_ok=True)
        base = local_post_url(self.site_id, article.slug) + "/images/"
        urls: dict[str, str] = {}
        images = []
        for image in article.images:
            if not _SAFE_NAME.match(image.filename) or image.filename == "article.json":
                raise PublishError(f"invalid image file name {image.filename!r}")
            (images_dir / image.filename).write_bytes(image.data)
            urls[image.filename] = base + image.filename
            images.append({"filename": image.filename, "alt": image.alt, "role": image.role,
                           "mime": image.mime, "url": urls[image.filename]})
        record = {
            "slug": article.slug, "title": article.title, "excerpt": article.excerpt,
            "html": sanitize_html(replace_image_placeholders(article.html, urls)),
            "categories": list(article.categories), "tags": list(article.tags),
            "images": images, "status": status,
            "date_gmt": _wp_date(date_gmt) if date_gmt else None,
            "published_at": self.clock().isoformat(),
        }
        tmp = folder / f".article.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, folder / "article.json")
        return PublishResult(article.slug, local_post_url(self.site_id, article.slug), status)


# ---------------------------------------------------------------------------------------------
# Exactly-once: the service the runner calls.


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def gap_range(defaults: dict[str, Any]) -> tuple[int, int]:
    """The site's [min, max] minutes between scheduled posts (validated by the portal)."""
    raw = defaults.get("gap_minutes") or DEFAULT_GAP_MINUTES
    try:
        low, high = int(raw[0]), int(raw[1])
    except (TypeError, ValueError, IndexError):
        return DEFAULT_GAP_MINUTES
    return (low, high) if 0 <= low <= high else DEFAULT_GAP_MINUTES


def _schedule_mutation(now: datetime, gap: timedelta
                       ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(state: dict[str, Any]) -> dict[str, Any]:
        last = _parse_time(state.get("last_scheduled"))
        base = max(now, last) if last else now
        return {**state, "last_scheduled": (base + gap).isoformat()}
    return mutate


def _rotate_mutation(count: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(state: dict[str, Any]) -> dict[str, Any]:
        cursor = int(state.get("author_cursor") or 0) % count
        return {**state, "author_index": cursor, "author_cursor": (cursor + 1) % count}
    return mutate

def _merge_terms(site: Site, article: Article) -> Article:
    defaults = site.defaults or {}
    categories = list(article.categories)
    if not categories and defaults.get("category"):
        categories = [str(defaults["category"])]
    tags = list(article.tags)
    for tag in defaults.get("tags") or []:
        if str(tag).lower() not in {t.lower() for t in tags}:
            tags.append(str(tag))
    return replace(article, categories=categories, tags=tags)


class PublishingService:
    """Exactly-once publishing of articles to a user's sites: the runner's only entry point.

    ``publish`` reserves the slug in the site's ledger (atomically against the daily limit),
    looks the slug up on the site itself, creates the post only when it is nowhere, and records
    the result. A timeout after the request went out is followed by a look-up before any retry.

    Several workers (a stalled owner and the instance that took its run over): the reservation
    names its holder (``attempt``) and is renewed right before each post-creating request. A
    second worker that finds it held waits while the holder is live (watching the ledger and the
    site), and takes over a stale one only by compare-and-set, after looking the slug up; a
    holder that lost its reservation creates nothing. Should a paused holder still create a post
    after all, the duplicate is found right after creation and the newer post is deleted.
    """

    def __init__(self, store: Any, secrets: Any, archive_dir: Any, *,
                 allow_private_urls: bool = True, timeout: tuple[float, float] = (5.0, 30.0),
                 policy: RetryPolicy | None = None, clock: Callable[[], datetime] = utcnow,
                 rng: random.Random | None = None, reservation_ttl: float | None = None,
                 poll_interval: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.secrets = secrets
        self.archive_dir = archive_dir
        self.allow_private_urls = allow_private_urls
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.reservation_ttl = reservation_ttl
        self.poll_interval = poll_interval
        self.sleep = sleep

    def ttl_for(self, site: Site) -> float:
        """Seconds a holder may go without renewing its reservation before it counts as dead:
        one post-creating request with its retries (WordPress); a moment (local archive)."""
        if self.reservation_ttl is not None:
            return self.reservation_ttl
        if site.kind == "local":
            return LOCAL_RESERVATION_TTL
        attempts = max(1, self.policy.attempts)
        return sum(self.timeout) * attempts + self.policy.max_wait * (attempts - 1)

    def already_published(self, user_id: str, site_id: str, slug: str
                          ) -> LedgerEntry | None:
        """The ledger entry (storage.base.LedgerEntry) when ``slug`` is published there."""
        entry = self.store.get_post(user_id, site_id, slug)
        return entry if entry is not None and entry.status == "published" else None

    def _site(self, user_id: str, site_id: str) -> Site:
        site = self.store.get_site(user_id, site_id)
        if site is None:
            raise _with_code(NotFoundError(f"site {site_id} not found"), "site_not_found")
        return site

    def _client(self, site: Site, username: str, password_enc: str
                ) -> WordPressClient:
        problem = url_problem(site.url, allow_private=self.allow_private_urls)
        if problem:
            raise _with_code(UnsafeURLError(problem), "unsafe_url")
        try:
            password = self.secrets.decrypt(password_enc)
        except Exception as exc:   # SecretsError: a changed key; say so without the secret
            raise _with_code(AuthError(str(exc)), "secrets_error") from None
        return WordPressClient(site.url, username, password, timeout=self.timeout,
                               policy=self.policy)

    def _publisher_for(self, site: Site, *, rotate: bool
                       ) -> WordPressPublisher | LocalArchivePublisher:
        """The site's publisher; with ``rotate`` the next author (cursor kept in site.state)."""
        if site.kind == "local":
            return LocalArchivePublisher(self.archive_dir, site.user_id, site.id, self.clock)
        if site.kind != "wordpress":
            raise PublishError(f"unknown site kind {site.kind!r}")
        main = self._client(site, site.username, site.app_password_enc)
        authors = [a for a in site.authors if a.get("username") and a.get("app_password_enc")]
        if not rotate or not authors:
            return WordPressPublisher(main)
        state = self.store.update_site_state(site.user_id, site.id,
                                             _rotate_mutation(len(authors)))
        author = authors[int(state.get("author_index", 0)) % len(authors)]
        client = self._client(site, author["username"], author["app_password_enc"])
        return WordPressPublisher(client, lookup_client=main)

    def _next_date(self, site: Site) -> datetime:
        """max(now, last scheduled on this site) + a random gap; persisted atomically."""
        low, high = gap_range(site.defaults)
        gap = timedelta(minutes=max(1.0, self.rng.uniform(low, high)))
        state = self.store.update_site_state(site.user_id, site.id,
                                             _schedule_mutation(self.clock(), gap))
        when = _parse_time(state.get("last_scheduled"))
        assert when is not None
        return when


    def publish(self, user_id: str, site_id: str, article: Article, *,
                 run_id: str, kind: str, options: dict) -> PublishResult:
        """Publish once; ``options`` may override status ('draft'|'publish'|'future').

        Raises LimitReached (daily limit), AuthError, PermissionDenied, NotFoundError,
        TransientError (worth a later retry) or PublishError; the reservation is released on
        failure, so a retry starts clean (and looks the slug up on the site first).
        """
        site = self._site(user_id, site_id)
        status = (options or {}).get("status") or (site.defaults or {}).get("default_status") \
            or "draft"
        if status not in POST_STATUSES:
            raise _with_code(PublishError(f"status must be one of {', '.join(POST_STATUSES)}, "
                                          f"not {status!r}"), "bad_status")
        attempt = uuid.uuid4().hex
        for _ in range(100):               # each round ends in a result, or in a lost claim
            settled = self._hold(site, article, attempt, kind=kind, run_id=run_id,
                                 status=status)
            if settled is not None:
                return settled
            try:
                result = self._create_or_find(site, article, status, attempt)
            except ReservationLost as exc:
                log.info("%s on site %s: %s; waiting for the new holder", article.slug,
                         site_id, exc)
                continue
            except PublishError:
                self._release_quietly(user_id, site_id, article.slug, attempt)
                raise
            except Exception as exc:
                self._release_quietly(user_id, site_id, article.slug, attempt)
                raise _with_code(PublishError(f"publishing failed: {exc.__class__.__name__}"),
                                 "internal") from exc
            self.store.complete_post(user_id, site_id, article.slug, post_id=result.post_id,
                                     post_url=result.post_url, title=article.title)
            log.info("published %s on site %s as %s (%s)", article.slug, site_id,
                     result.post_id, "found" if result.existed else "created")
            return result
        raise _with_code(TransientError(f"{article.slug}: another worker kept the reservation"),
                         "reservation_busy")

    def _create_or_find(self, site: Site, article: Article, status: str, attempt: str
                        ) -> PublishResult:
        """Holding the reservation: the site itself is the next authority (a crash after
        WordPress created the post but before we recorded it); create only when it is nowhere."""
        lookup = self._publisher_for(site, rotate=False)
        found = lookup.find_existing(article.slug)
        if found is not None:
            return found
        date_gmt = self._next_date(site) if status == "future" else None
        publisher = self._publisher_for(site, rotate=True) if site.kind == "wordpress" \
            and site.authors else lookup
        fence = self._fence(site, article.slug, attempt)
        if isinstance(publisher, WordPressPublisher):
            publisher.fence = fence
        else:
            fence()
        return publisher.publish(_merge_terms(site, article), status=status, date_gmt=date_gmt)

    def _fence(self, site: Site, slug: str, attempt: str) -> Callable[[], None]:
        """Renew our claim on ``slug`` right before creating; ReservationLost if it is gone."""
        def renew() -> None:
            try:
                self.store.claim_post(site.user_id, site.id, slug, expected_attempt=attempt,
                                      attempt=attempt, now=self.clock())
            except (ConflictError, StoreNotFound) as exc:
                raise _with_code(ReservationLost(
                    f"the reservation of {slug} passed to another worker"),
                    "reservation_lost") from exc
        return renew

    def _hold(self, site: Site, article: Article, attempt: str, *, kind: str, run_id: str,
              status: str) -> PublishResult | None:
        """Get hold of ``article.slug`` in the ledger for ``attempt``: None when we hold it;
        a result when it is (or just got) published by someone else."""
        slug, uid = article.slug, site.user_id
        ttl = self.ttl_for(site)
        seen: tuple[str, Any] | None = None
        deadline = time.monotonic() + ttl
        while True:
            now = self.clock()
            entry = LedgerEntry(user_id=uid, site_id=site.id, slug=slug, item_key=slug,
                                kind=kind, run_id=run_id, day=now.date().isoformat(),
                                title=article.title, created_at=now, attempt=attempt,
                                reserved_at=now)
            try:
                stored, new = self.store.reserve_post(entry, site.daily_limit)
            except DailyLimitReached as exc:
                raise _with_code(LimitReached(
                    f"the daily limit of {site.daily_limit} posts for site {site.name!r} is "
                    f"used up ({exc})"), "daily_limit") from None
            if new or stored.attempt == attempt:
                return None
            if stored.status == "published":
                return PublishResult(str(stored.post_id or ""), str(stored.post_url or ""),
                                     status, existed=True)
            # Held by another attempt. The site knows whether that post already exists.
            found = self._publisher_for(site, rotate=False).find_existing(slug)
            if found is not None:
                self.store.complete_post(uid, site.id, slug, post_id=found.post_id,
                                         post_url=found.post_url, title=article.title)
                return found
            # An earlier attempt of this very run (a crash, a restart, a takeover): the run's
            # lease has moved to us, so that attempt is no longer at work, and its fence fails
            # once we claim. Waiting out its TTL would stall every recovered run.
            same_run = stored.run_id == run_id
            holder = (stored.attempt, stored.reserved_at)
            if holder != seen:                  # the holder renewed: it is alive
                seen, deadline = holder, time.monotonic() + ttl
            held_since = stored.reserved_at or stored.created_at
            if same_run or (now - held_since).total_seconds() >= ttl \
                    or time.monotonic() >= deadline:
                try:
                    self.store.claim_post(uid, site.id, slug, expected_attempt=stored.attempt,
                                          attempt=attempt, now=now)
                except (ConflictError, StoreNotFound):
                    continue                    # renewed, released or taken meanwhile: again
                log.warning("took over the %s reservation of %s on site %s",
                            "earlier attempt's" if same_run else "stale", slug, site.id)
                return None
            self.sleep(self.poll_interval)

    def _release_quietly(self, user_id: str, site_id: str, slug: str, attempt: str) -> None:
        try:
            self.store.release_post(user_id, site_id, slug, attempt)
        except StoreError:
            log.exception("could not release the reservation of %s on %s", slug, site_id)

    def check_connection(self, site: Site) -> ConnectionCheck:
        """Test-connection for the portal: local sites are always fine."""
        if site.kind == "local":
            return ConnectionCheck(True, "ok", "The local archive is always available.")
        try:
            client = self._client(site, site.username, site.app_password_enc)
        except PublishError as exc:
            return ConnectionCheck(False, getattr(exc, "code", "error"), str(exc))
        client.policy = RetryPolicy(attempts=1, sleep=self.policy.sleep)
        return check_wordpress(client)
