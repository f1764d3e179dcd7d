"""The ``sports`` automation: one roundup article per story picked from the user's feeds.

An item is the story itself (headline, and per outlet: title, link, short summary, date,
categories), so the article can be written even after the feeds have moved on. The key is
``feeds.story_key`` of its entries: stable across fetches, so a story already published on
a site is recognised by the runner's ledger check. The roundup attributes and links every
outlet and quotes at most a short opening fragment of each summary, never a whole one. A demo
story (demo_stories.py: synthetic, made by the project) is labelled demo in the title, at the
top of the article, in the excerpt, the tags and the headline card.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from automation_scripts.articles import finish_article
from automation_scripts.base import Article, Image, InvalidItems, ItemContext, PreparedItem
from automation_scripts.sports.demo_stories import is_demo_story
from automation_scripts.sports.feeds import GENERIC_CATEGORIES, story_key
from automation_scripts.variants import Variants, variant_seed
from automation_scripts.writing import (
    ArticleText,
    clean_html,
    feed_text,
    meta_description,
    template_env,
)

MAX_STORIES = 100
MAX_ENTRIES = 20
FRAGMENT_MAX_WORDS = 15
DEFAULT_CATEGORY = "Sports"


def quote_fragment(summary: str, max_words: int = FRAGMENT_MAX_WORDS) -> str:
    """The opening words of a summary's first sentence: at most ``max_words`` and always
    shorter than the summary itself, so a whole summary is never reproduced."""
    words = summary.split()
    if len(words) < 4:
        return ""
    first = re.split(r"(?<=[.!?])\s", summary, maxsplit=1)[0].split()
    limit = min(max_words, len(first), max(3, (len(words) * 2) // 3))
    if limit >= len(words):
        limit = len(words) - 1
    return " ".join(first[:limit]).rstrip(",;:-–—")


def _clean_entry(raw: Any, n: int, m: int) -> dict[str, Any]:
    where = f"story {n}, entry {m}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    title = feed_text(raw.get("title") if isinstance(raw.get("title"), str) else "")
    link = raw.get("link") if isinstance(raw.get("link"), str) else ""
    source = feed_text(raw.get("source") if isinstance(raw.get("source"), str) else "")
    if not title:
        raise ValueError(f"{where}: a title is required")
    parts = urlsplit(link.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: link must be an http(s) URL")
    if not source:
        raise ValueError(f"{where}: the source (outlet name) is required")
    published = raw.get("published")
    if published is not None:
        try:
            published = datetime.fromisoformat(str(published)).isoformat()
        except ValueError:
            raise ValueError(f"{where}: published must be an ISO-8601 time") from None
    cats = raw.get("categories") or []
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise ValueError(f"{where}: categories must be a list of strings")
    summary = raw.get("summary") if isinstance(raw.get("summary"), str) else ""
    author = raw.get("author") if isinstance(raw.get("author"), str) else ""
    return {"source": source[:80], "feed_url": str(raw.get("feed_url") or "")[:2000],
            "title": title[:300], "link": link.strip()[:2000],
            "summary": feed_text(summary)[:2000], "published": published,
            "categories": [feed_text(c)[:60] for c in cats if feed_text(c)][:20],
            "author": feed_text(author)[:120]}


def normalise_story(raw: Any, n: int) -> dict[str, Any]:
    """Validate one submitted story dict; ValueError naming what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"story {n}: expected a story object with title and entries")
    entries = raw.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"story {n}: entries (the outlets' items) are required")
    if len(entries) > MAX_ENTRIES:
        raise ValueError(f"story {n}: at most {MAX_ENTRIES} entries")
    clean = [_clean_entry(e, n, m) for m, e in enumerate(entries, 1)]
    seen, unique = set(), []
    for e in clean:
        if e["link"] not in seen:
            seen.add(e["link"])
            unique.append(e)
    title = raw.get("title") if isinstance(raw.get("title"), str) else ""
    title = feed_text(title)[:300] or unique[0]["title"]
    return {"title": title, "entries": unique}


class SportsAutomation:
    """``kind = "sports"``: items are story dicts as ``GET /api/sports/stories`` gives them."""

    kind = "sports"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self.env = template_env(trim_blocks=True)

    def prepare(self, raw_items: list[Any], options: Mapping[str, Any], today: Any
                ) -> tuple[list[PreparedItem], list[str]]:
        if not isinstance(raw_items, list) or not raw_items:
            raise InvalidItems(["pick at least one story"])
        if len(raw_items) > MAX_STORIES:
            raise InvalidItems([f"at most {MAX_STORIES} stories per run"])
        errors: list[str] = []
        notes: list[str] = []
        items: list[PreparedItem] = []
        seen: set[str] = set()
        for n, raw in enumerate(raw_items, 1):
            try:
                story = normalise_story(raw, n)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            key = story_key(story["entries"])
            if key in seen:
                notes.append(f"story {n} ({story['title'][:60]}) was picked twice; kept once")
                continue
            seen.add(key)
            items.append(PreparedItem(key=key, input=story, label=story["title"][:120]))
        if errors:
            raise InvalidItems(errors)
        return items, notes

    def process(self, item: PreparedItem, ctx: ItemContext) -> Article:
        story = item.input
        entries = sorted(story["entries"], key=lambda e: (e.get("published") or "", e["link"]))
        ctx.progress("processing", f"Writing the roundup: {story['title'][:80]}", percent=20,
                     data={"item": item.key})
        ctx.checkpoint()
        counts = Counter(c for e in entries for c in dict.fromkeys(e["categories"])
                         if c.lower() not in GENERIC_CATEGORIES)
        ranked = [c for c, _ in counts.most_common()]
        category = ranked[0] if ranked else DEFAULT_CATEGORY
        tags = ranked[1:9]
        names = list(dict.fromkeys(e["source"] for e in entries))
        source_names = _join(names)
        times = [e["published"] for e in entries if e.get("published")]
        when = ""
        if times:
            when = f" First reported {_when(min(times))}"
            when += f", most recently updated {_when(max(times))}." if len(times) > 1 else "."
        lead = (f"{story['title']}: {len(names)} outlet{'s' if len(names) != 1 else ''} "
                f"covered this story ({source_names}).{when}")
        rows = [{"source": e["source"], "title": e["title"], "link": e["link"],
                 "author": e.get("author", ""), "when": _when(e.get("published")),
                 "fragment": quote_fragment(e.get("summary", ""))} for e in entries]
        seed = variant_seed(item.key, ctx.site_id)
        demo = is_demo_story(story)
        html = clean_html(self.env.get_template("sports/roundup.html.j2").render(
            lead=lead, entries=rows, categories=[category] + tags, source_names=source_names,
            v=Variants(seed), demo=demo))
        ctx.checkpoint()
        ctx.progress("processing", "Drawing the headline card", percent=60,
                     data={"item": item.key})
        card = headline_card(story["title"], names,
                             f"{category} · demo story" if demo else category)
        ctx.checkpoint()
        label = "[Demo] " if demo else ""
        excerpt = meta_description(("Synthetic demo story: " if demo else "")
                                   + f"{story['title']} - a roundup of reporting by "
                                   f"{source_names}.")
        image = Image(filename=f"{item.key[:60]}-card.png", data=card,
                      alt=f"Headline card: {label}{story['title']}"[:200], role="featured")
        return finish_article(item.key, ArticleText(label + story["title"], html, excerpt),
                              site=ctx.site, about={}, kind=self.kind,
                              categories=[category],
                              tags=tags + ["roundup"] + (["demo data"] if demo else []),
                              images=[image],
                              focus_keyword=category.lower() + " news", faq=[], seed=seed)


def headline_card(title: str, sources: list[str], category: str) -> bytes:
    """A 1200x630 PNG card with the headline and the outlets (Figure + Agg, no pyplot)."""
    fig = Figure(figsize=(12, 6.3), dpi=100, facecolor="#102a43")
    FigureCanvasAgg(fig)
    fig.text(0.05, 0.88, category.upper(), color="#f0b429", fontsize=20, weight="bold")
    fig.text(0.05, 0.78, "\n".join(textwrap.wrap(title, 48)[:5]), color="white", fontsize=30,
             weight="bold", va="top")
    fig.text(0.05, 0.08, "Sources: " + ", ".join(sources)[:140], color="#bcccdc", fontsize=14)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=fig.get_facecolor())
    return buf.getvalue()


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _when(value: str | None) -> str:
    if not value:
        return ""
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if stamp.tzinfo is None:
        return stamp.strftime("%b %-d, %Y %H:%M")
    return stamp.astimezone(UTC).strftime("%b %-d, %Y %H:%M UTC")


def create(settings: Mapping[str, Any]) -> SportsAutomation:
    """Entry point the automation registry calls with the automation settings (the listed
    variables an automation may see, typed, plus INSTANCE_PATH)."""
    return SportsAutomation(settings)
