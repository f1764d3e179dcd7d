"""The site an item is written for, as its automation sees it: the site's id (which seeds the
article's words) and, when the site's ``internal_links`` option is on, the candidate links.

Candidates are the site's own published posts only, never another site's, never a draft or a
scheduled post, never the item's own slug:

- WordPress: ``GET /wp/v2/posts?status=publish&_fields=...`` once per run (``categories`` set
  when ``same_category`` is on and the automation names its category), plus one ``search`` per
  topic (ticker) of the run's items, each asked once per run and kept;
- local archive: the ledger (``store.list_posts``) with each post's article.json for its status,
  categories and subject.

A failing look-up costs the article its links, never the item.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from automation_scripts.base import InternalLinks, LinkTarget, PreparedItem, SiteContext
from automation_scripts.internal_links import about_slug
from automation_scripts.publishing import PublishError
from automation_scripts.publishing.archive import load_archived_article, local_post_url
from automation_scripts.writing import text_only
from storage.base import Site

log = logging.getLogger(__name__)

LISTED_POSTS = 100              # the newest posts of a site looked at per run
LEDGER_POSTS = 200
MAX_SEARCHES = 20               # topic searches per run


def internal_links_option(site: Site | None) -> InternalLinks:
    """The site's ``internal_links`` option (validated by the portal), or links off."""
    raw = ((site.defaults or {}) if site else {}).get("internal_links") or {}
    if not isinstance(raw, dict) or not raw.get("enabled"):
        return InternalLinks()
    try:
        limit = max(0, min(10, int(raw.get("max", 5))))
    except (TypeError, ValueError):
        limit = 5
    return InternalLinks(True, limit, bool(raw.get("same_category")))


class SiteLinks:
    """One run's view of its site: built once per run, asked once per item (thread-safe:
    several of a run's items are in flight at once)."""

    def __init__(self, site: Site | None, publishing: Any, *, store: Any,
                 category: str | None = None,
                 topic: Callable[[PreparedItem], str] | None = None) -> None:
        self.site = site
        self.publishing = publishing
        self.store = store
        self.category = category
        self.topic = topic
        self.options = internal_links_option(site)
        self._lock = threading.Lock()
        self._listed: list[LinkTarget] | None = None
        self._searched: dict[str, list[LinkTarget]] = {}
        self._publisher: Any = None
        self._names: dict[int, str] = {}

    def context_for(self, item: PreparedItem) -> SiteContext:
        """The SiteContext of one item's article."""
        site = self.site
        if site is None:
            return SiteContext()
        links: tuple[LinkTarget, ...] = ()
        if self.options.enabled and self.options.max > 0:
            try:
                links = tuple(t for t in self._candidates(item) if t.slug != item.key)
            except (PublishError, OSError, ValueError) as exc:
                log.warning("internal links of site %s unavailable: %s", site.id, exc)
        return SiteContext(id=site.id, name=site.name, internal_links=self.options,
                           links=links)

    # ------------------------------------------------------------------------------------------

    def _candidates(self, item: PreparedItem) -> list[LinkTarget]:
        with self._lock:
            if self._listed is None:
                self._listed = self._local() if self.site.kind == "local" else self._remote("")
            found = list(self._listed)
            topic = self.topic(item) if self.topic and self.site.kind != "local" else ""
            if topic:
                if topic not in self._searched and len(self._searched) < MAX_SEARCHES:
                    self._searched[topic] = self._remote(topic)
                found += self._searched.get(topic, [])
        unique: dict[str, LinkTarget] = {}
        for target in found:
            unique.setdefault(target.url, target)
        return list(unique.values())

    def _local(self) -> list[LinkTarget]:
        site = self.site
        out = []
        for entry in self.store.list_posts(site.user_id, site.id, limit=LEDGER_POSTS):
            if entry.status != "published":
                continue
            stored = load_archived_article(self.publishing.archive_dir, site.user_id, site.id,
                                           entry.slug) or {}
            if stored.get("status") != "publish":
                continue                    # drafts and scheduled posts are not public
            ticker, kind = about_slug(entry.slug)
            about = stored.get("about") or {}
            out.append(LinkTarget(
                url=local_post_url(site.id, entry.slug), title=entry.title or entry.slug,
                slug=entry.slug, ticker=str(about.get("ticker") or ticker),
                name=str(about.get("name") or ""), kind=entry.kind or kind,
                categories=tuple(str(c) for c in stored.get("categories") or ()),
                published=(entry.published_at or entry.created_at).isoformat()))
        return out

    def _remote(self, search: str) -> list[LinkTarget]:
        if self._publisher is None:
            self._publisher = self.publishing.lookup_publisher(self.site)
        publisher = self._publisher
        categories = None
        if self.options.same_category and self.category:
            category = publisher.category_id(self.category)
            if category is None:
                return []                   # no post of the site has that category yet
            categories = [category]
        posts = publisher.published_posts(search=search, categories=categories,
                                          limit=LISTED_POSTS)
        wanted = [int(c) for p in posts for c in p.get("categories") or []
                  if int(c) not in self._names]
        self._names.update(publisher.category_names(wanted))
        out = []
        for post in posts:
            slug = str(post.get("slug") or "")
            title = post.get("title")
            title = str(title.get("rendered") if isinstance(title, dict) else title or slug)
            ticker, kind = about_slug(slug)
            out.append(LinkTarget(
                url=str(post["link"]), title=text_only(title), slug=slug, ticker=ticker, kind=kind,
                categories=tuple(self._names.get(int(c), "") for c in
                                 post.get("categories") or () if self._names.get(int(c))),
                published=str(post.get("date_gmt") or "")))
        return out

