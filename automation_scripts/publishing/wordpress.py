"""The WordPress publisher: media uploads, terms, the post, and the slug look-ups that make a
retry safe (over ``wordpress_client``)."""

from __future__ import annotations

import html as _html
import logging
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from automation_scripts.base import Article, Image
from automation_scripts.publishing import (
    POST_STATUSES,
    AuthError,
    PublishError,
    PublishResult,
    TransientError,
    with_code,
    wp_date,
)
from automation_scripts.publishing.safety import (
    SAFE_FILE_NAME,
    follow_internal_links,
    media_of,
    replace_image_placeholders,
    run_marker,
    run_of,
    sanitize_html,
)
from automation_scripts.publishing.structured_data import article_json_ld, json_ld_script
from automation_scripts.publishing.wordpress_client import (
    AUTH_HEADER_HINT,
    WordPressClient,
)

log = logging.getLogger(__name__)

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
        # post id -> the uploads its content names as its own (read by ``applied_run``).
        self._own_media: dict[str, list[int]] = {}

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
        name = image.filename if SAFE_FILE_NAME.match(image.filename) else "image.png"
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
        ``run_id`` so a retry of the same run can tell the update was applied. The uploads
        the replaced content named as its own are deleted once the update is in: a daily
        update would otherwise leave three charts a day in the media library."""
        replaced = self._own_media.get(str(post_id))
        if replaced is None:
            replaced = media_of(self._raw_content(post_id))
        payload, uploaded = self._payload(article, run_id)
        if status in ("draft", "publish"):
            payload["status"] = status
        if self.fence is not None:
            self.fence()
        post = self.client.json("POST", f"posts/{int(post_id)}", json=payload,
                                params={"_fields": _POST_FIELDS})
        self._delete_media([m for m in replaced if m not in uploaded], f"post {post_id}")
        return PublishResult(str(post["id"]), str(post.get("link") or ""),
                             str(post.get("status") or status), existed=True)

    def applied_run(self, post_id: str) -> str:
        """The run whose content the post carries ("" when unmarked); the uploads it names
        are kept for an ``update`` that follows."""
        raw = self._raw_content(post_id)
        self._own_media[str(post_id)] = media_of(raw)
        return run_of(raw)

    def _raw_content(self, post_id: str) -> str:
        post = self.lookup.json("GET", f"posts/{int(post_id)}",
                                params={"context": "edit", "_fields": "id,content"})
        content = post.get("content") if isinstance(post, dict) else None
        return str((content.get("raw") if isinstance(content, dict) else "") or "")

    def _delete_media(self, media: Sequence[int], of: str) -> None:
        """Delete uploads of ours no post uses any more (a failure is logged: the post is
        right either way, the library keeps one more image)."""
        for media_id in media:
            try:
                self.client.json("DELETE", f"media/{int(media_id)}", params={"force": "true"})
            except PublishError as exc:
                log.warning("could not delete media %s of %s: %s", media_id, of, exc)

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
            content += "\n" + run_marker(run_id, uploaded)
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
        try:
            self.client.json("DELETE", f"posts/{mine.post_id}", params={"force": "true"})
        except PublishError as exc:
            log.error("could not delete duplicate post %s of %s: %s", mine.post_id, slug, exc)
        else:
            self._delete_media(media, f"the duplicate of {slug}")
        return PublishResult(str(first["id"]), str(first.get("link") or ""),
                             str(first.get("status") or status), existed=True)
