"""Internal links: a "Related analysis" block and inline links to the site's own earlier posts.

The runner finds the candidates (published posts of the same site, never the item's own slug:
runner/links.py) and hands them over in ``ctx.site.links``; this module only chooses and writes.
Choice: the same ticker first, then posts whose ticker or company name the article mentions,
then posts of the same kind, newest first; with ``same_category`` only posts sharing one of the
article's categories. Inline: the first mention of a target's ticker (or name) in a paragraph
or list item becomes a link to it, at most one link per target, never inside a heading, a
table, a caption or another link.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Iterable, Sequence

from automation_scripts.base import InternalLinks, LinkTarget, SiteContext
from automation_scripts.variants import Variants

RELATED_HEADING = "Related analysis"
_SLUG_TICKER = re.compile(r"^(?P<ticker>[a-z0-9][a-z0-9-]{0,14}?)-(?:stock-analysis|earnings-"
                          r"(?:preview|recap))(?:-|$)")
_SLUG_KIND = {"stock-analysis": "stock", "earnings": "earnings"}
_TAG = re.compile(r"(<[^>]+>)")
_NO_LINK_INSIDE = {"a", "h1", "h2", "h3", "h4", "h5", "h6", "table", "caption", "figcaption",
                   "strong"}
_LINKABLE = {"p", "li"}


def about_slug(slug: str) -> tuple[str, str]:
    """(ticker, kind) that one of our slugs names (``aapl-stock-analysis-2026-02-13`` ->
    ``("AAPL", "stock")``); empty strings when it names none."""
    match = _SLUG_TICKER.match(slug)
    if not match:
        return "", ""
    kind = "stock" if "-stock-analysis" in slug else "earnings"
    return match.group("ticker").upper(), kind


def select_links(site: SiteContext, *, ticker: str = "", name: str = "", kind: str = "",
                 categories: Iterable[str] = (), text: str = "", own_slug: str = ""
                 ) -> list[LinkTarget]:
    """The targets of one article, best first, at most ``internal_links.max``."""
    options: InternalLinks = site.internal_links
    if not options.enabled or options.max <= 0:
        return []
    wanted = {c.strip().lower() for c in categories if c.strip()}
    chosen: list[tuple[tuple[int, str], LinkTarget]] = []
    for target in site.links:
        if not target.url or target.slug == own_slug:
            continue
        if options.same_category and wanted and not (
                {c.lower() for c in target.categories} & wanted
                or (not target.categories and target.kind == kind)):
            continue
        if ticker and target.ticker == ticker:
            rank = 0
        elif _mentions(text, target):
            rank = 1
        elif kind and target.kind == kind:
            rank = 2
        else:
            rank = 3
        chosen.append(((rank, _newest_first(target.published)), target))
    chosen.sort(key=lambda pair: pair[0])
    seen: set[str] = set()
    out: list[LinkTarget] = []
    for _, target in chosen:
        if target.url in seen:
            continue
        seen.add(target.url)
        out.append(target)
        if len(out) >= options.max:
            break
    return out


def _newest_first(published: str) -> str:
    """A sort key that puts later ISO dates first."""
    return "".join(chr(0x10FFFF - ord(c)) for c in published) if published else "\U0010ffff"


def _pattern(word: str) -> re.Pattern[str] | None:
    word = word.strip()
    if len(word) < 2:
        return None
    return re.compile(r"(?<![\w$.-])" + re.escape(word) + r"(?![\w-])")


def _mentions(text: str, target: LinkTarget) -> bool:
    return any(p.search(text) for p in (_pattern(target.ticker), _pattern(target.name)) if p)


def related_block(links: Sequence[LinkTarget], v: Variants) -> str:
    """The "Related analysis" section (escaped HTML), or "" without links."""
    if not links:
        return ""
    intro = v.pick("related-intro", ["More from this site:", "Earlier analysis on this site:",
                                     "Further reading:", "You may also like:"])
    items = "".join(f'<li><a href="{_html.escape(t.url, quote=True)}">'
                    f"{_html.escape(t.title)}</a></li>" for t in links)
    return f"<h2>{RELATED_HEADING}</h2>\n<p>{intro}</p>\n<ul class=\"related\">{items}</ul>"


def link_inline(html: str, links: Sequence[LinkTarget]) -> str:
    """The first mention of each target's ticker or name in a paragraph or list item linked
    to it (at most one link per target)."""
    pending = [t for t in links if t.ticker or t.name]
    if not pending:
        return html
    parts = _TAG.split(html)
    stack: list[str] = []
    for i, part in enumerate(parts):
        if part.startswith("<"):
            _track(stack, part)
            continue
        if not part or not pending or not stack or stack[-1] not in _LINKABLE \
                or _NO_LINK_INSIDE & set(stack):
            continue
        parts[i], pending = _link_text(part, pending)
    return "".join(parts)


def _track(stack: list[str], tag: str) -> None:
    match = re.match(r"<\s*(/)?\s*([a-zA-Z0-9]+)", tag)
    if not match or tag.endswith("/>"):
        return
    name = match.group(2).lower()
    if name in ("br", "img", "hr"):
        return
    if match.group(1):
        if name in stack:
            while stack and stack.pop() != name:
                pass
    else:
        stack.append(name)


def _link_text(text: str, pending: list[LinkTarget]) -> tuple[str, list[LinkTarget]]:
    """Link the earliest mention of any pending target in this text node (text is HTML-escaped
    already: tickers and names are matched in it as they are escaped)."""
    remaining = list(pending)
    while remaining:
        best: tuple[int, int, LinkTarget] | None = None
        for target in remaining:
            for word in (target.ticker, target.name):
                pattern = _pattern(_html.escape(word)) if word else None
                match = pattern.search(text) if pattern else None
                if match and (best is None or match.start() < best[0]):
                    best = (match.start(), match.end(), target)
        if best is None:
            break
        start, end, target = best
        link = f'<a href="{_html.escape(target.url, quote=True)}">{text[start:end]}</a>'
        head, tail = text[:start] + link, text[end:]
        remaining = [t for t in remaining if t is not target]
        tail, remaining = _link_text(tail, remaining)
        return head + tail, [t for t in pending if t in remaining]
    return text, pending


def add_internal_links(html: str, site: SiteContext, v: Variants, *, ticker: str = "",
                       name: str = "", kind: str = "", categories: Iterable[str] = (),
                       own_slug: str = "") -> tuple[str, list[LinkTarget]]:
    """``html`` with inline links and the "Related analysis" block; and the targets used."""
    links = select_links(site, ticker=ticker, name=name, kind=kind, categories=categories,
                         text=html, own_slug=own_slug)
    if not links:
        return html, []
    html = link_inline(html, links)
    return html + "\n" + related_block(links, v), links
