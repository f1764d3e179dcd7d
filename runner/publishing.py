"""Exactly-once publishing through the store's ledger: the runner's only way to a site.

The ledger reservation, the slug look-ups on the site, the gap between scheduled posts and the
author rotation live here, beside the store; the publishers themselves know no store.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from automation_scripts.base import Article
from automation_scripts.publishing import (
    POST_STATUSES,
    AuthError,
    LimitReached,
    NotFoundError,
    PublishError,
    PublishResult,
    ReservationLost,
    TransientError,
    UnsafeURLError,
    with_code,
)
from automation_scripts.publishing.archive import LocalArchivePublisher
from automation_scripts.publishing.safety import url_problem
from automation_scripts.publishing.site_gate import SiteGate
from automation_scripts.publishing.wordpress import WordPressPublisher
from automation_scripts.publishing.wordpress_client import (
    ConnectionCheck,
    RetryPolicy,
    WordPressClient,
    check_wordpress,
)
from storage.base import ConflictError, DailyLimitReached, LedgerEntry, Site, StoreError, utcnow
from storage.base import NotFoundError as StoreNotFound

log = logging.getLogger(__name__)

DEFAULT_GAP_MINUTES = (30, 90)
MODES = ("create", "update")
LOCAL_RESERVATION_TTL = 15.0    # seconds: writing an archive folder takes milliseconds
TERMS_TTL = 300.0               # seconds a site's category and tag ids are reused


@dataclass(frozen=True)
class _Held:
    """What getting hold of a slug came to: ``settled`` when someone else published it;
    ``fresh`` when our reservation is the slug's first (no earlier attempt may have posted)."""

    settled: PublishResult | None = None
    fresh: bool = False


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

def run_mode(options: dict[str, Any] | None) -> str:
    """A run's ``mode`` option: ``create`` (a new post per item, the default) or ``update``
    (one post per ticker and site, updated by every run); checked at submit."""
    mode = (options or {}).get("mode") or "create"
    return mode if mode in MODES else "create"


def with_updated_line(article: Article, when: datetime) -> Article:
    """The article with an "Updated on" line above its text (update mode)."""
    line = f'<p class="updated-on"><em>Updated on {when:%B} {when.day}, {when:%Y}</em></p>\n'
    return replace(article, html=line + article.html)


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
        # site -> (since, its term ids): the items of a run share the look-ups of its terms.
        self._terms: dict[tuple[str, str], tuple[float, dict[tuple[str, str], int]]] = {}
        # site -> its gate: a Retry-After one publish is told holds the site's others too.
        self._gates: dict[tuple[str, str], SiteGate] = {}

    def ttl_for(self, site: Site) -> float:
        """Seconds a holder may go without renewing its reservation before it counts as dead:
        one post-creating request with its retries (WordPress); a moment (local archive)."""
        if self.reservation_ttl is not None:
            return self.reservation_ttl
        if site.kind == "local":
            return LOCAL_RESERVATION_TTL
        attempts = max(1, self.policy.attempts)
        return sum(self.timeout) * attempts + self.policy.max_wait * (attempts - 1)

    def already_published(self, user_id: str, site_id: str, slug: str, *,
                          run_id: str = "", mode: str = "create") -> LedgerEntry | None:
        """The ledger entry (storage.base.LedgerEntry) when ``slug`` is published there and
        there is nothing left to do. In update mode a published post still waits for this
        run's update: the entry comes back only once ``run_id`` wrote it, as that run's."""
        entry = self.store.get_post(user_id, site_id, slug)
        if entry is None or entry.status != "published":
            return None
        if mode != "update":
            return entry
        if not run_id or entry.last_updated_run != run_id:
            return None
        return replace(entry, run_id=run_id)

    def _site(self, user_id: str, site_id: str) -> Site:
        site = self.store.get_site(user_id, site_id)
        if site is None:
            raise with_code(NotFoundError(f"site {site_id} not found"), "site_not_found")
        return site

    def _client(self, site: Site, username: str, password_enc: str
                ) -> WordPressClient:
        problem = url_problem(site.url, allow_private=self.allow_private_urls)
        if problem:
            raise with_code(UnsafeURLError(problem), "unsafe_url")
        try:
            password = self.secrets.decrypt(password_enc)
        except Exception as exc:   # SecretsError: a changed key; say so without the secret
            raise with_code(AuthError(str(exc)), "secrets_error") from None
        return WordPressClient(site.url, username, password, timeout=self.timeout,
                               policy=self.policy,
                               gate=self._gates.setdefault((site.id, site.url), SiteGate()))

    def _publisher_for(self, site: Site, *, rotate: bool
                       ) -> WordPressPublisher | LocalArchivePublisher:
        """The site's publisher; with ``rotate`` the next author (cursor kept in site.state)."""
        if site.kind == "local":
            return LocalArchivePublisher(self.archive_dir, site.user_id, site.id, self.clock)
        if site.kind != "wordpress":
            raise PublishError(f"unknown site kind {site.kind!r}")
        main = self._client(site, site.username, site.app_password_enc)
        structured = bool((site.defaults or {}).get("structured_data"))
        authors = [a for a in site.authors if a.get("username") and a.get("app_password_enc")]
        if not rotate or not authors:
            return WordPressPublisher(main, structured_data=structured,
                                      terms=self._terms_of(site))
        state = self.store.update_site_state(site.user_id, site.id,
                                             _rotate_mutation(len(authors)))
        author = authors[int(state.get("author_index", 0)) % len(authors)]
        client = self._client(site, author["username"], author["app_password_enc"])
        return WordPressPublisher(client, lookup_client=main, structured_data=structured,
                                  terms=self._terms_of(site))

    def _terms_of(self, site: Site) -> dict[tuple[str, str], int]:
        """The site's category and tag ids found lately (shared by concurrent publishes:
        a term two of them create at once comes back as ``term_exists`` with its id)."""
        key, now = (site.id, site.url), time.monotonic()
        since, terms = self._terms.get(key, (now, {}))
        if now - since > TERMS_TTL:
            since, terms = now, {}
        self._terms[key] = (since, terms)
        return terms

    def lookup_publisher(self, site: Site) -> WordPressPublisher | LocalArchivePublisher:
        """The site's publisher with its own account, for look-ups (internal links)."""
        return self._publisher_for(site, rotate=False)

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
            raise with_code(PublishError(f"status must be one of {', '.join(POST_STATUSES)}, "
                                          f"not {status!r}"), "bad_status")
        attempt = uuid.uuid4().hex
        update = run_mode(options) == "update"
        for _ in range(100):               # each round ends in a result, or in a lost claim
            held = self._hold(site, article, attempt, kind=kind, run_id=run_id,
                              status=status, update=update)
            if held.settled is not None:
                if update and held.settled.existed:
                    return self._update(site, article, status, run_id)
                return held.settled
            try:
                # The archive's look-up is a file read; WordPress's is a request.
                result = self._create_or_find(site, article, status, attempt, run_id,
                                              look_up=not held.fresh or site.kind == "local")
            except ReservationLost as exc:
                log.info("%s on site %s: %s; waiting for the new holder", article.slug,
                         site_id, exc)
                continue
            except PublishError:
                self._release_quietly(user_id, site_id, article.slug, attempt)
                self._terms.pop((site.id, site.url), None)     # a term may be gone
                raise
            except Exception as exc:
                self._release_quietly(user_id, site_id, article.slug, attempt)
                raise with_code(PublishError(f"publishing failed: {exc.__class__.__name__}"),
                                 "internal") from exc
            self.store.complete_post(user_id, site_id, article.slug, post_id=result.post_id,
                                     post_url=result.post_url, title=article.title)
            log.info("published %s on site %s as %s (%s)", article.slug, site_id,
                     result.post_id, "found" if result.existed else "created")
            return result
        raise with_code(TransientError(f"{article.slug}: another worker kept the reservation"),
                         "reservation_busy")

    def _update(self, site: Site, article: Article, status: str, run_id: str
                ) -> PublishResult:
        """Update mode on a published post: apply this run's content once. The ledger says
        whether this run already did (``last_updated_run``); after a crash between the site's
        answer and that record, the post's own run marker says so."""
        entry = self.store.get_post(site.user_id, site.id, article.slug)
        if entry is None or entry.status != "published" or not entry.post_id:
            raise with_code(PublishError(f"{article.slug}: no published post to update"),
                            "not_published")
        if entry.last_updated_run == run_id:
            return PublishResult(str(entry.post_id), str(entry.post_url or ""), status,
                                 existed=True, updated=True)
        publisher = self._publisher_for(site, rotate=False)
        if publisher.applied_run(str(entry.post_id)) == run_id:
            result = PublishResult(str(entry.post_id), str(entry.post_url or ""), status,
                                   existed=True)
        else:
            result = publisher.update(str(entry.post_id),
                                      with_updated_line(_merge_terms(site, article),
                                                        self.clock()),
                                      status=status, run_id=run_id)
        self.store.record_update(site.user_id, site.id, article.slug, run_id=run_id,
                                 post_id=result.post_id, post_url=result.post_url,
                                 title=article.title)
        log.info("updated %s on site %s (post %s) for run %s", article.slug, site.id,
                 result.post_id, run_id)
        return replace(result, existed=True, updated=True)

    def _create_or_find(self, site: Site, article: Article, status: str, attempt: str,
                        run_id: str = "", *, look_up: bool = True) -> PublishResult:
        """Holding the reservation: the site itself is the next authority (a crash after
        WordPress created the post but before we recorded it); create only when it is nowhere.

        A fresh reservation (no earlier attempt ever held the slug) skips the look-up: no
        attempt of ours can have made the post, and a post made some other way is caught
        after the create (``_keep_oldest``: WordPress gives ours a ``-2`` slug, or, for a
        draft, the duplicate is looked for), as is one made by a released attempt whose
        request WordPress finished late."""
        lookup = self._publisher_for(site, rotate=False)
        if look_up:
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
        return publisher.publish(_merge_terms(site, article), status=status, date_gmt=date_gmt,
                                 run_id=run_id)

    def _fence(self, site: Site, slug: str, attempt: str) -> Callable[[], None]:
        """Renew our claim on ``slug`` right before creating; ReservationLost if it is gone."""
        def renew() -> None:
            try:
                self.store.claim_post(site.user_id, site.id, slug, expected_attempt=attempt,
                                      attempt=attempt, now=self.clock())
            except (ConflictError, StoreNotFound) as exc:
                raise with_code(ReservationLost(
                    f"the reservation of {slug} passed to another worker"),
                    "reservation_lost") from exc
        return renew

    def _hold(self, site: Site, article: Article, attempt: str, *, kind: str, run_id: str,
              status: str, update: bool = False) -> _Held:
        """Get hold of ``article.slug`` in the ledger for ``attempt``; ``settled`` is a result
        when it is (or just got) published by someone else."""
        slug, uid = article.slug, site.user_id
        ttl = self.ttl_for(site)
        seen: tuple[str, Any] | None = None
        deadline = time.monotonic() + ttl
        while True:
            now = self.clock()
            entry = LedgerEntry(user_id=uid, site_id=site.id, slug=slug, item_key=slug,
                                kind=kind, run_id=run_id, day=now.date().isoformat(),
                                title=article.title, created_at=now, attempt=attempt,
                                reserved_at=now, last_updated_run=run_id if update else "")
            try:
                stored, new = self.store.reserve_post(entry, site.daily_limit)
            except DailyLimitReached as exc:
                raise with_code(LimitReached(
                    f"the daily limit of {site.daily_limit} posts for site {site.name!r} is "
                    f"used up ({exc})"), "daily_limit") from None
            if new or stored.attempt == attempt:
                return _Held(fresh=new)
            if stored.status == "published":
                return _Held(PublishResult(str(stored.post_id or ""),
                                           str(stored.post_url or ""), status, existed=True))
            # Held by another attempt. The site knows whether that post already exists.
            found = self._publisher_for(site, rotate=False).find_existing(slug)
            if found is not None:
                self.store.complete_post(uid, site.id, slug, post_id=found.post_id,
                                         post_url=found.post_url, title=article.title)
                return _Held(found)
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
                return _Held()
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
