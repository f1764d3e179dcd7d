"""The Article of any kind, assembled from the written text: the site's internal links, and
the search fields (the meta description as excerpt, the focus keyword, the FAQ entries the
publisher turns into structured data), and which writer wrote it."""

from __future__ import annotations

from automation_scripts.base import Article, FaqEntry, Image, SiteContext
from automation_scripts.internal_links import add_internal_links
from automation_scripts.variants import Variants
from automation_scripts.writing import ArticleText


def finish_article(slug: str, text: ArticleText, *, site: SiteContext, about: dict[str, str],
                   kind: str, categories: list[str], tags: list[str], images: list[Image],
                   focus_keyword: str, faq: list[dict[str, str]], seed: str) -> Article:
    """The Article of any kind: the written text with the site's internal links, and the
    search fields (meta description = excerpt, focus keyword, FAQ for structured data)."""
    html, _links = add_internal_links(text.html, site, Variants(seed),
                                      ticker=about.get("ticker", ""),
                                      name=about.get("name", ""), kind=kind,
                                      categories=categories, own_slug=slug)
    return Article(slug=slug, title=text.title, html=html, excerpt=text.excerpt,
                   images=images, categories=categories, tags=tags,
                   focus_keyword=focus_keyword,
                   faq=[FaqEntry(q["question"], q["answer"]) for q in faq],
                   about=about, writer=text.writer, writer_note=text.writer_note)
