"""Article text: a template writer (always available) and an optional LLM writer.

The interface is generic so every automation can use it: ``Writer.write(kind, facts)`` ->
``ArticleText``. ``kind`` names a template (``stock`` -> ``article_templates/stock/
article.html.j2``); ``facts`` is a plain dict. Templates run in a plain ``jinja2.Environment``
with autoescape on (these are not Flask templates), and the result is sanitised again with
nh3, so a hostile ticker or feed text can never become markup.

Varied phrasing: templates call ``variant("section", n)``, which picks one of ``n`` phrasings
from a stable hash of the article's seed (its ticker) and the section name. The same ticker
always reads the same; fifty tickers in one run do not read alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any, Protocol

import jinja2
import nh3
import requests

from automation_scripts.publishing import safety

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "article_templates"
_TAG_RE = re.compile(r"<[^>]+>")


@dataclass
class ArticleText:
    """A written article: ``html`` is sanitised and may hold ``{{image:<file>}}`` sources."""

    title: str
    html: str
    excerpt: str
    writer: str = "template"        # "template" | "llm:<model>"


class Writer(Protocol):
    def write(self, kind: str, facts: Mapping[str, Any]) -> ArticleText:
        """Write the article of ``kind`` from ``facts``."""


# ---------------------------------------------------------------------------------------------
# Helpers shared by every kind.


def clean_html(html: str) -> str:
    """Sanitise rendered article HTML with the publisher's own allow-list (one list for the
    whole product, see publishing/safety.py): defence in depth behind autoescape."""
    return safety.sanitize_html(html)


def plain_text(html: str) -> str:
    """Text of an HTML fragment (for excerpts and similarity checks)."""
    text = nh3.clean(html, tags=set())
    return re.sub(r"\s+", " ", text.replace("&amp;", "&").replace("&lt;", "<")
                  .replace("&gt;", ">").replace("&quot;", '"').replace("&#39;", "'")).strip()


def feed_text(value: str | None) -> str:
    """Text of a feed field (feeds put markup in titles and summaries): every tag becomes a
    space and every entity is decoded, so words from adjacent elements stay apart."""
    if not value:
        return ""
    return " ".join(unescape(_TAG_RE.sub(" ", value)).split())


def text_only(html: str) -> str:
    """Plain text for titles and excerpts: no tags, and no angle brackets left to misread."""
    return re.sub(r"[<>]", "", plain_text(html))


def variant_index(seed: str, section: str, count: int) -> int:
    """Which of ``count`` phrasings ``seed`` uses in ``section`` (stable across processes)."""
    digest = hashlib.sha256(f"{seed}|{section}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % max(1, count)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_pct(value: Any, digits: int = 1, signed: bool = True, *,
            in_percent: bool = False) -> str:
    """A ratio as a percentage (0.052 -> +5.2%); ``in_percent`` when the value is already
    one (5.2 -> +5.2%)."""
    if _missing(value):
        return "n/a"
    shown = value if in_percent else value * 100
    return f"{shown:+.{digits}f}%" if signed else f"{shown:.{digits}f}%"


def fmt_money(value: Any, digits: int = 2) -> str:
    if _missing(value):
        return "n/a"
    return f"${value:,.{digits}f}"


def fmt_big_money(value: Any) -> str:
    """Dollars in words for large amounts: $1.23 billion, $456.00 million, $12,345."""
    if _missing(value):
        return "n/a"
    for unit, size in (("trillion", 1e12), ("billion", 1e9), ("million", 1e6)):
        if abs(value) >= size:
            return f"${value / size:,.2f} {unit}"
    return f"${value:,.0f}"


def fmt_num(value: Any, digits: int = 2) -> str:
    if _missing(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def template_env(directory: Path = TEMPLATE_DIR, *, trim_blocks: bool = False
                 ) -> jinja2.Environment:
    """Plain (non-Flask) Jinja with autoescape on: feed and provider text is never trusted."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(directory)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=trim_blocks,
                             lstrip_blocks=True)
    env.filters.update(pct=fmt_pct, money=fmt_money, num=fmt_num)
    return env


# ---------------------------------------------------------------------------------------------
# Template writer.


class TemplateWriter:
    """Renders ``<kind>/title.txt.j2`` and ``<kind>/article.html.j2`` with the facts."""

    name = "template"

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self.env = template_env(directory)

    def write(self, kind: str, facts: Mapping[str, Any]) -> ArticleText:
        seed = str(facts.get("seed") or facts.get("ticker") or facts.get("title") or kind)

        def variant(section: str, count: int) -> int:
            return variant_index(seed, section, count)

        context = {"f": facts, "variant": variant}
        title = self.env.get_template(f"{kind}/title.txt.j2").render(context)
        title = text_only(title)
        html = self.env.get_template(f"{kind}/article.html.j2").render(context)
        html = re.sub(r"\n\s*\n+", "\n", clean_html(html)).strip()
        excerpt = text_only(self.env.get_template(f"{kind}/excerpt.txt.j2").render(context))
        return ArticleText(title=title, html=html, excerpt=excerpt[:300], writer=self.name)


# ---------------------------------------------------------------------------------------------
# LLM writer.


class LLMWriter:
    """Asks an OpenAI-compatible chat endpoint for the narrative; any failure -> template.

    The LLM writes the prose sections only; the key-figures table, the charts, the data source
    and the disclaimer always come from the template (``<kind>/frame.html.j2``), so a model can
    neither drop the disclaimer nor invent the numbers in the table. The answer is sanitised
    like everything else.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *,
                 fallback: Writer | None = None, timeout: float = 30.0,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.fallback = fallback or TemplateWriter()
        self.timeout = timeout
        self.session = session or requests.Session()
        self.name = f"llm:{model}"

    def _ask(self, kind: str, facts: Mapping[str, Any]) -> dict[str, str]:
        url = self.base_url + ("/chat/completions" if self.base_url.endswith("/v1")
                               else "/v1/chat/completions")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        prompt = (
            "Write a short, factual, neutral financial article from these facts. Answer with "
            "a JSON object only: {\"title\": str, \"summary\": str, \"body_html\": str} where "
            "body_html uses only <h2>, <p>, <ul>, <li>, <strong>, <em>. Do not give investment "
            "advice; use only the numbers given.\nKind: " + kind + "\nFacts:\n"
            + json.dumps(_jsonable(facts), default=str)[:12000])
        body = {"model": self.model, "temperature": 0.4,
                "messages": [{"role": "system", "content": "You are a careful markets writer."},
                             {"role": "user", "content": prompt}]}
        resp = self.session.post(url, json=body, headers=headers, timeout=self.timeout)
        resp.raise_for_status()
        content = resp.json()["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise ValueError("the completion has no text content")
        match = re.search(r"\{.*\}", content, re.S)
        if not match:
            raise ValueError("the completion is not a JSON object")
        answer = json.loads(match.group(0))
        out = {k: answer.get(k) for k in ("title", "summary", "body_html")}
        if not all(isinstance(v, str) and v.strip() for v in out.values()):
            raise ValueError("the completion lacks title, summary or body_html")
        if len(plain_text(out["body_html"])) < 80:
            raise ValueError("the completion's body is too short to publish")
        return out

    def write(self, kind: str, facts: Mapping[str, Any]) -> ArticleText:
        try:
            answer = self._ask(kind, facts)
            env = self.fallback.env if isinstance(self.fallback, TemplateWriter) \
                else template_env()
            html = env.get_template(f"{kind}/frame.html.j2").render(
                f=facts, summary=answer["summary"],
                body=_Markup(clean_html(answer["body_html"])),
                variant=lambda section, count: variant_index(
                    str(facts.get("ticker", "")), section, count))
            return ArticleText(title=text_only(answer["title"])[:200],
                               html=clean_html(html),
                               excerpt=text_only(answer["summary"])[:300], writer=self.name)
        except Exception as exc:  # noqa: BLE001 - any failure falls back, and says why
            log.warning("LLM writer (%s at %s) failed, using the template writer: %s: %s",
                        self.model, self.base_url, type(exc).__name__, str(exc)[:200])
            return self.fallback.write(kind, facts)


def _Markup(html: str) -> Any:       # noqa: N802 - reads like the jinja2 type it builds
    from markupsafe import Markup

    return Markup(html)               # already sanitised by nh3 just above


def _jsonable(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Facts without the bulky or binary parts (images, series)."""
    return {k: v for k, v in facts.items() if k not in ("images", "series")}


def writer_from_settings(settings: Mapping[str, Any]) -> Writer:
    """The LLM writer when TICKZEN_LLM_BASE_URL and _MODEL are set, else the template one
    (a timeout the settings lack is the writer's own)."""
    template = TemplateWriter()
    base = settings.get("TICKZEN_LLM_BASE_URL")
    model = settings.get("TICKZEN_LLM_MODEL")
    if base and model:
        timeout = settings.get("TICKZEN_LLM_TIMEOUT")
        return LLMWriter(str(base), str(model), settings.get("TICKZEN_LLM_API_KEY"),
                         fallback=template, **({"timeout": float(timeout)} if timeout else {}))
    return template
