"""The WordPress REST client (requests + tenacity retries), the connection check and the
WordPress publisher: media uploads, terms, the post, and the slug look-ups that make a retry
safe."""

from __future__ import annotations

import html as _html
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential

from automation_scripts.base import Article, Image
from automation_scripts.publishing import (
    POST_STATUSES,
    AuthError,
    NotFoundError,
    PermissionDenied,
    PublishError,
    PublishResult,
    TLSError,
    TransientError,
    with_code,
    wp_date,
)
from automation_scripts.publishing.safety import (
    follow_internal_links,
    replace_image_placeholders,
    run_marker,
    run_of,
    sanitize_html,
)
from automation_scripts.publishing.site_gate import SiteGate
from automation_scripts.publishing.structured_data import article_json_ld, json_ld_script

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
_BAD_CREDENTIAL_CODES = ("incorrect_password", "invalid_username", "invalid_email",
                         "application_passwords_disabled",
                         "application_passwords_disabled_for_user")
AUTH_HEADER_HINT = (
    "If the username and application password are right, the web server is stripping the "
    "Authorization header before WordPress sees it: on Apache add "
    "'SetEnvIf Authorization \"(.*)\" HTTP_AUTHORIZATION=$1' to .htaccess; on nginx add "
    "'fastcgi_param HTTP_AUTHORIZATION $http_authorization;' to the PHP location.")









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
            return with_code(AuthError(
                "WordPress rejected the username or application password" + detail),
                "bad_credentials", status)
        if sent_credentials:
            return with_code(AuthError(
                "WordPress did not accept the login" + detail + ". Check the username and "
                "application password. " + AUTH_HEADER_HINT), "not_authenticated", status)
        return with_code(AuthError("WordPress requires a login" + detail), "no_credentials",
                          status)
    if status == 403:
        return with_code(PermissionDenied(
            "this WordPress user may not do that" + detail), "forbidden", status)
    if status == 404:
        if code:
            return with_code(NotFoundError(
                "WordPress REST route not found" + detail), "rest_not_found", status)
        return with_code(NotFoundError(
            "the REST API was not found at this URL (HTTP 404, not a WordPress JSON answer): "
            "check the site URL, and that the REST API is not disabled"), "rest_not_found", status)
    if status == 429 or status >= 500:
        exc = with_code(TransientError(f"WordPress is unavailable right now{detail}"),
                         "transient", status)
        exc.retry_after = _retry_after(response)      # type: ignore[attr-defined]
        return exc
    exc = with_code(PublishError(f"WordPress refused the request{detail}"),
                     code or "refused", status)
    if code == "term_exists":
        exc.term_id = data.get("term_id")             # type: ignore[attr-defined]
    return exc


def _transport_error(exc: requests.RequestException, url: str) -> PublishError:
    host = urlsplit(url).netloc
    if isinstance(exc, requests.exceptions.SSLError):
        return with_code(TLSError(
            f"TLS/HTTPS error talking to {host}: the certificate is not valid or the "
            "handshake failed"), "tls_error")
    if isinstance(exc, requests.Timeout):
        return with_code(TransientError(f"{host} did not answer in time (timeout)"), "timeout")
    text = str(exc)
    if "refused" in text.lower():
        return with_code(TransientError(f"connection to {host} refused: is the site up and "
                                         "the URL right?"), "connection_refused")
    if "Name or service not known" in text or "getaddrinfo" in text or "resolve" in text:
        return with_code(TransientError(f"host {host} cannot be resolved"), "dns_error")
    return with_code(TransientError(f"connection to {host} failed or was dropped"),
                      "connection_error")


class WordPressClient:
    """Minimal WordPress REST client: authenticated JSON calls with retries on transients.

    Retries (exponential backoff with jitter, Retry-After honoured) happen on connection errors,
    timeouts, 429 and 5xx, never on other 4xx. ``retry=False`` is for the post-creating POST,
    whose caller must look the slug up before trying again.
    """

    def __init__(self, base_url: str, username: str, app_password: str, *,
                 timeout: tuple[float, float] = (5.0, 30.0), policy: RetryPolicy | None = None,
                 session: requests.Session | None = None, gate: SiteGate | None = None
                 ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._auth = (username, app_password) if username or app_password else None
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        # Shared with the site's other clients: a Retry-After makes all of them wait.
        self.gate = gate or SiteGate()

    def __repr__(self) -> str:            # never show the password
        return f"WordPressClient({self.base_url!r}, user={self.username!r})"

    def url(self, route: str) -> str:
        return f"{self.base_url}/wp-json/wp/v2/{route.lstrip('/')}"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return 0.0          # the site's gate waits it out, for every request to the site
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
            self.gate.wait(self.policy.sleep)
            response = self.session.request(method, url, **kwargs)
            if response.status_code == 429 or response.status_code >= 500:
                failed = _Retryable(response)
                if failed.retry_after is not None:
                    self.gate.hold(min(failed.retry_after, self.policy.max_wait))
                raise failed
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
            raise with_code(NotFoundError(
                f"{self.base_url} redirects to {where} (HTTP {response.status_code}): use the "
                "address WordPress really answers on as the site URL"), "redirect",
                response.status_code)
        if not 200 <= response.status_code < 300:
            raise error_for_response(response, sent_credentials=self._auth is not None)
        if not _is_json(response):
            raise with_code(NotFoundError(
                f"{self.base_url} answered with {response.headers.get('Content-Type') or 'no'}"
                " content instead of WordPress REST JSON: check the site URL, and that the "
                "REST API is not disabled"), "not_json", response.status_code)
        return response

    def json(self, method: str, route: str, **kwargs: Any) -> Any:
        response = self.send(method, route, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise with_code(NotFoundError("WordPress answered with invalid JSON"),
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

# What we read back from a create: asking for only these spares WordPress rendering the whole
# post for its answer (``the_content`` filters, every image's srcset) and the media's sizes.
_POST_FIELDS = "id,link,slug,status"
_MEDIA_FIELDS = "id,source_url"


class WordPressPublisher:
    """Publishes to one WordPress site. ``client`` creates media and posts (the rotated
    author); ``lookup_client`` (the site's own account) finds posts and terms."""

    def __init__(self, client: WordPressClient, lookup_client: WordPressClient | None = None,
                 *, structured_data: bool = False,
                 terms: dict[tuple[str, str], int] | None = None) -> None:
        self.client = client
        self.lookup = lookup_client or client
        # (taxonomy, lower-case name) -> term id; the caller may share one per site.
        self._terms: dict[tuple[str, str], int] = {} if terms is None else terms
        # The site's ``structured_data`` option: JSON-LD goes into the post only when the
        # posting user may save it (unfiltered_html), else WordPress would show it as text.
        self.structured_data = structured_data
        self._may_embed: bool | None = None
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
            raise with_code(AuthError(
                "WordPress did not accept the login (it treats the request as anonymous). "
                "Check the username and application password. " + AUTH_HEADER_HINT),
                "not_authenticated", 400) from None
        return [p for p in posts if isinstance(p, dict) and p.get("slug") == slug
                and "id" in p] if isinstance(posts, list) else []

    def term_id(self, taxonomy: str, name: str) -> int:
        """Get-or-create a category/tag by name (a racing creator's ``term_exists`` is fine).

        A category is the site's own structure, few and mostly there: searched first. A tag
        is mostly new (a ticker's): created first, since WordPress answers an existing name
        (in any case) with ``term_exists`` and its id, one request either way."""
        key = (taxonomy, name.strip().lower())
        if key in self._terms:
            return self._terms[key]
        found = self.lookup.json("GET", taxonomy, params={
            "search": name, "per_page": 100, "context": "view"}) if taxonomy != "tags" else []
        for term in found if isinstance(found, list) else []:
            if _html.unescape(str(term.get("name", ""))).strip().lower() == key[1]:
                self._terms[key] = int(term["id"])
                return self._terms[key]
        try:
            created = self.lookup.json("POST", taxonomy, json={"name": name.strip()},
                                       params={"_fields": "id"})
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
        media = self.client.json("POST", "media", params={"_fields": _MEDIA_FIELDS},
                                 files={"file": (name, image.data, image.mime)},
                                 data={"alt_text": image.alt, "title": image.alt[:100]})
        return {"id": int(media["id"]), "source_url": str(media.get("source_url") or "")}

    def publish(self, article: Article, *, status: str, date_gmt: datetime | None = None,
                run_id: str = "") -> PublishResult:
        if status not in POST_STATUSES:
            raise PublishError(f"status must be one of {', '.join(POST_STATUSES)}")
        payload, media = self._payload(article, run_id)
        payload.update(slug=article.slug, status=status)
        if date_gmt is not None:
            payload["date_gmt"] = wp_date(date_gmt)
        return self.create_post(payload, media=media)

    def update(self, post_id: str, article: Article, *, status: str, run_id: str
               ) -> PublishResult:
        """Update the post in place (new content, new featured image); marked with
        ``run_id`` so a retry of the same run can tell the update was applied."""
        payload, _ = self._payload(article, run_id)
        if status in ("draft", "publish"):
            payload["status"] = status
        if self.fence is not None:
            self.fence()
        post = self.client.json("POST", f"posts/{int(post_id)}", json=payload,
                                params={"_fields": _POST_FIELDS})
        return PublishResult(str(post["id"]), str(post.get("link") or ""),
                             str(post.get("status") or status), existed=True)

    def applied_run(self, post_id: str) -> str:
        """The run whose content the post carries ("" when unmarked)."""
        post = self.lookup.json("GET", f"posts/{int(post_id)}",
                                params={"context": "edit", "_fields": "id,content"})
        content = post.get("content") if isinstance(post, dict) else None
        raw = content.get("raw") if isinstance(content, dict) else ""
        return run_of(str(raw or ""))

    def _payload(self, article: Article, run_id: str) -> tuple[dict[str, Any], list[int]]:
        """Terms, uploaded images and the post fields shared by create and update; with the
        ids of the media uploaded for it."""
        categories = [self.term_id("categories", c) for c in article.categories if c.strip()]
        tags = [self.term_id("tags", t) for t in article.tags if t.strip()]
        urls: dict[str, str] = {}
        uploaded: list[int] = []
        featured, featured_url = 0, ""
        for image in article.images:
            media = self.upload_image(image)
            uploaded.append(media["id"])
            urls[image.filename] = media["source_url"]
            if image.role == "featured" and not featured:
                featured, featured_url = media["id"], media["source_url"]
        content = follow_internal_links(
            sanitize_html(replace_image_placeholders(article.html, urls)),
            self.lookup.base_url)
        if self.structured_data and self.may_embed_json_ld():
            content += "\n" + json_ld_script(article_json_ld(
                article, image_url=featured_url, published=datetime.now(UTC)))
        if run_id:
            content += "\n" + run_marker(run_id)
        payload: dict[str, Any] = {"title": article.title, "content": content,
                                   "excerpt": article.excerpt, "categories": categories,
                                   "tags": tags}
        if featured:
            payload["featured_media"] = featured
        return payload, uploaded

    def may_embed_json_ld(self) -> bool:
        """Whether the posting user has ``unfiltered_html`` (asked once per publisher)."""
        if self._may_embed is None:
            try:
                me = self.client.json("GET", "users/me", params={"context": "edit"})
                caps = me.get("capabilities") if isinstance(me, dict) else {}
                self._may_embed = bool(isinstance(caps, dict) and caps.get("unfiltered_html"))
            except PublishError as exc:
                log.warning("could not read the WordPress user's capabilities: %s", exc)
                self._may_embed = False
        return self._may_embed

    def published_posts(self, *, search: str = "", categories: list[int] | None = None,
                        limit: int = 100) -> list[dict[str, Any]]:
        """The site's own published posts (newest first): id, slug, link, title, date,
        categories. Drafts, scheduled and private posts are never in it."""
        params: dict[str, Any] = {"status": "publish", "per_page": max(1, min(limit, 100)),
                                  "orderby": "date", "order": "desc",
                                  "_fields": "id,slug,link,title,date_gmt,categories"}
        if search:
            params["search"] = search
        if categories:
            params["categories"] = ",".join(str(c) for c in categories)
        found = self.lookup.json("GET", "posts", params=params)
        return [p for p in found if isinstance(p, dict) and p.get("status", "publish")
                == "publish" and p.get("link")] if isinstance(found, list) else []

    def category_names(self, ids: list[int]) -> dict[int, str]:
        """Names of categories by id (one request)."""
        if not ids:
            return {}
        terms = self.lookup.json("GET", "categories", params={
            "include": ",".join(str(i) for i in sorted(set(ids))), "per_page": 100,
            "_fields": "id,name"})
        return {int(t["id"]): _html.unescape(str(t.get("name") or "")) for t in terms
                if isinstance(t, dict) and "id" in t} if isinstance(terms, list) else {}

    def category_id(self, name: str) -> int | None:
        """The id of an existing category (None when the site has none of that name)."""
        found = self.lookup.json("GET", "categories", params={"search": name, "per_page": 100,
                                                               "_fields": "id,name"})
        for term in found if isinstance(found, list) else []:
            if _html.unescape(str(term.get("name", ""))).strip().lower() == name.lower():
                return int(term["id"])
        return None

    def create_post(self, payload: dict[str, Any], *, media: Sequence[int] = ()
                    ) -> PublishResult:
        """POST the post once per attempt; after a transient failure (the request may have
        reached WordPress) look the slug up before trying again. ``media``: what was uploaded
        for this post, deleted with it when it turns out a duplicate."""
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
                post = self.client.json("POST", "posts", json=payload, retry=False,
                                        params={"_fields": _POST_FIELDS})
            except TransientError as exc:
                log.warning("creating post %s: %s (attempt %d)", slug, exc, attempt)
                last = exc
                continue
            return self._keep_oldest(slug, post, payload["status"], media)
        found = self.find_existing(slug)
        if found is not None:
            return PublishResult(found.post_id, found.post_url, found.status)
        assert last is not None
        raise last

    def _keep_oldest(self, slug: str, post: dict[str, Any], status: str,
                     media: Sequence[int] = ()) -> PublishResult:
        """After a create: if another post already has our slug (WordPress gave ours ``-2``, or
        two drafts share it), a duplicate was just made: delete ours (and the media uploaded
        for it) and use the older one."""
        mine = PublishResult(str(post["id"]), str(post.get("link") or ""),
                             str(post.get("status") or status))
        if status != "draft" and post.get("slug") == slug:
            # WordPress makes the slug of a post that is not a draft unique among all posts:
            # ours kept it, so no other post has it (a draft may share its slug: look).
            return mine
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
        for route in (f"posts/{mine.post_id}", *(f"media/{int(m)}" for m in media)):
            try:
                self.client.json("DELETE", route, params={"force": "true"})
            except PublishError as exc:
                log.error("could not delete %s of the duplicate of %s: %s", route, slug, exc)
        return PublishResult(str(first["id"]), str(first.get("link") or ""),
                             str(first.get("status") or status), existed=True)
