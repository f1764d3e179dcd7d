"""Article and FAQPage structured data (JSON-LD), made by the publisher from the article's data.

Never taken from article HTML: the sanitiser drops every ``<script>`` of the HTML, and the one
script a post may carry is the ``<script type="application/ld+json">`` built here from plain
fields, serialised with ``<``, ``>`` and ``&`` escaped, so no text of a ticker, a feed or an LLM
can close the element or open another.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from automation_scripts.base import Article

SCRIPT_OPEN = '<script type="application/ld+json">'


def article_json_ld(article: Article, *, published: datetime | None = None,
                    modified: datetime | None = None, url: str = "", image_url: str = "",
                    publisher: str = "") -> list[dict[str, Any]]:
    """The ``Article`` object, and a ``FAQPage`` when the article has FAQ entries."""
    data: dict[str, Any] = {"@context": "https://schema.org", "@type": "Article",
                            "headline": article.title[:110],
                            "description": article.excerpt}
    if article.focus_keyword:
        data["keywords"] = article.focus_keyword
    if published is not None:
        data["datePublished"] = published.isoformat()
    if modified is not None or published is not None:
        data["dateModified"] = (modified or published).isoformat()  # type: ignore[union-attr]
    if url:
        data["mainEntityOfPage"] = url
    if image_url:
        data["image"] = image_url
    if publisher:
        data["publisher"] = {"@type": "Organization", "name": publisher}
    about = {k: v for k, v in article.about.items() if v}
    if about.get("ticker"):
        data["about"] = {"@type": "Corporation", "tickerSymbol": about["ticker"],
                         **({"name": about["name"]} if about.get("name") else {})}
    out = [data]
    if article.faq:
        out.append({"@context": "https://schema.org", "@type": "FAQPage",
                    "mainEntity": [{"@type": "Question", "name": q.question,
                                    "acceptedAnswer": {"@type": "Answer", "text": q.answer}}
                                   for q in article.faq]})
    return out


def json_ld_script(objects: list[dict[str, Any]]) -> str:
    """One ``<script type="application/ld+json">`` element per object, safe inside HTML."""
    def one(obj: dict[str, Any]) -> str:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return f"{SCRIPT_OPEN}{text}</script>"
    return "\n".join(one(obj) for obj in objects)
