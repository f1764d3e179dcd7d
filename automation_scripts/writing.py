"""Article text: a template writer (always available) and an optional LLM writer.

The interface is generic so every automation can use it: ``Writer.write(kind, facts)`` ->
``ArticleText``. ``kind`` names a template (``stock`` -> ``article_templates/stock/
article.html.j2``); ``facts`` is a plain dict. Templates run in a plain ``jinja2.Environment``
with autoescape on (these are not Flask templates), and the result is sanitised again with
nh3, so a hostile ticker or feed text can never become markup.

Varied phrasing: templates get ``v`` (automation_scripts/variants.py): ``v.pick``, ``v.order``
and ``v(section, n)`` choose words, sections and their order from a stable hash of the
article's seed, which the automations make of the item and the site. The same item on the same
site always reads the same; on another site, or another item, it reads differently.

The LLM writer's numbers are checked (automation_scripts/fact_check.py): an answer quoting a
figure that is not in the facts is refused, asked for once more naming the wrong figures, and
then the template writer writes the article; ``ArticleText.writer_note`` says why. A run's
LLM calls are capped (``TICKZEN_LLM_MAX_CALLS``, counted by the ``calls`` budget the automation
passes): past the cap the template writer writes, and says so.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from html import unescape
from pathlib import Path
from typing import Any, Protocol

import jinja2
import nh3
import requests

from automation_scripts.fact_check import FactIndex, unsupported_figures
from automation_scripts.llm_calls import CallBudget
from automation_scripts.publishing import safety
from automation_scripts.variants import choices_of, variant_index

__all__ = ["ArticleText", "CallBudget", "LLMWriter", "TemplateWriter", "Writer", "clean_html",
           "feed_text", "fmt_big_money", "fmt_money", "fmt_num", "fmt_pct", "meta_description",
           "plain_text", "template_env", "text_only", "variant_index", "writer_from_settings"]

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "article_templates"
_TAG_RE = re.compile(r"<[^>]+>")
META_DESCRIPTION_MAX = 160


@dataclass
class ArticleText:
    """A written article: ``html`` is sanitised and may hold ``{{image:<file>}}`` sources."""

    title: str
    html: str
    excerpt: str                    # the meta description: at most 160 characters
    writer: str = "template"        # "template" | "llm:<model>"
    writer_note: str = ""           # why the template wrote it when an LLM was asked


class Writer(Protocol):
    def write(self, kind: str, facts: Mapping[str, Any], calls: CallBudget | None = None
              ) -> ArticleText:
        """Write the article of ``kind`` from ``facts``; ``calls`` counts the run's LLM calls
        (None: uncapped)."""


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


def meta_description(text: str, limit: int = META_DESCRIPTION_MAX) -> str:
    """``text`` as a meta description: plain, at most ``limit`` characters, cut at a word
    with an ellipsis when it is longer."""
    text = " ".join(text_only(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-–—")
    return cut + "…"


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
    env.filters.update(pct=fmt_pct, money=fmt_money, num=fmt_num, big=fmt_big_money)
    return env


# ---------------------------------------------------------------------------------------------
# Template writer.


class TemplateWriter:
    """Renders ``<kind>/title.txt.j2``, ``article.html.j2`` and ``excerpt.txt.j2`` with the
    facts (``f``) and the article's choices of words (``v``)."""

    name = "template"

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self.env = template_env(directory)

    def write(self, kind: str, facts: Mapping[str, Any], calls: CallBudget | None = None
              ) -> ArticleText:
        v = choices_of(dict(facts), kind)
        context = {"f": facts, "v": v, "variant": v}
        title = self.env.get_template(f"{kind}/title.txt.j2").render(context)
        title = text_only(title)
        html = self.env.get_template(f"{kind}/article.html.j2").render(context)
        html = re.sub(r"\n\s*\n+", "\n", clean_html(html)).strip()
        excerpt = self.env.get_template(f"{kind}/excerpt.txt.j2").render(context)
        return ArticleText(title=title, html=html, excerpt=meta_description(excerpt),
                           writer=self.name)


# ---------------------------------------------------------------------------------------------
# LLM writer.


class LLMRefused(ValueError):
    """The completion quoted figures that are not in the facts."""

    def __init__(self, wrong: list[str]) -> None:
        super().__init__("figures not in the facts: " + ", ".join(wrong[:8]))
        self.wrong = wrong


class CallCapReached(RuntimeError):
    """The run has made its ``TICKZEN_LLM_MAX_CALLS`` LLM calls; ``wrong``: the figures of a
    refused first answer, when the cap stopped the second try."""

    def __init__(self, limit: int, wrong: list[str]) -> None:
        super().__init__(f"the run reached its cap of {limit} LLM calls")
        self.limit = limit
        self.wrong = wrong


class LLMWriter:
    """Asks an OpenAI-compatible chat endpoint for the narrative; checks its numbers; any
    failure -> the template writer, with ``writer_note`` saying why.

    The LLM writes the prose sections only; the key-figures table, the FAQ, the charts, the
    data source and the disclaimer always come from the template (``<kind>/frame.html.j2``),
    so a model can neither drop the disclaimer nor invent the numbers in the table. Every
    number in its title, summary and body must be a figure of the facts at the precision shown
    (fact_check.py); otherwise it is asked once more, naming the wrong figures, and a second
    refusal falls back. A timeout, a 429 or a 5xx falls back at once. The answer is sanitised
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

    def _messages(self, kind: str, facts: Mapping[str, Any], wrong: list[str]
                  ) -> list[dict[str, str]]:
        prompt = (
            "Write a short, factual, neutral financial article from these facts. Answer with "
            "a JSON object only: {\"title\": str, \"summary\": str, \"body_html\": str} where "
            "body_html uses only <h2>, <p>, <ul>, <li>, <strong>, <em>. Do not give investment "
            "advice. Use only the numbers given, rounded as they are shown; write no other "
            "number or date.\nKind: " + kind + "\nFacts:\n"
            + json.dumps(_jsonable(facts), default=str)[:12000])
        messages = [{"role": "system", "content": "You are a careful markets writer."},
                    {"role": "user", "content": prompt}]
        if wrong:
            messages.append({"role": "user", "content": (
                "Your previous answer was refused: these figures are not in the facts: "
                + ", ".join(wrong[:20]) + ". Write it again using only figures from the facts.")})
        return messages

    def _ask(self, kind: str, facts: Mapping[str, Any], wrong: list[str] | None = None
             ) -> dict[str, str]:
        url = self.base_url + ("/chat/completions" if self.base_url.endswith("/v1")
                               else "/v1/chat/completions")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "temperature": 0.4,
                "messages": self._messages(kind, facts, wrong or [])}
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

    def _checked(self, kind: str, facts: Mapping[str, Any], calls: CallBudget | None
                 ) -> dict[str, str]:
        """An answer whose every figure is in the facts (one more try after a refusal), each
        call counted against the run's cap."""
        index = FactIndex.of(_jsonable(facts))
        wrong: list[str] = []
        for _ in range(2):
            if calls is not None and not calls.take():
                raise CallCapReached(calls.limit, wrong)
            answer = self._ask(kind, facts, wrong)
            prose = " ".join([text_only(answer["title"]), text_only(answer["summary"]),
                              plain_text(answer["body_html"])])
            wrong = unsupported_figures(prose, facts, index)
            if not wrong:
                return answer
            log.info("LLM writer (%s): refused figures not in the facts: %s", self.model,
                     ", ".join(wrong[:8]))
        raise LLMRefused(wrong)

    def write(self, kind: str, facts: Mapping[str, Any], calls: CallBudget | None = None
              ) -> ArticleText:
        try:
            answer = self._checked(kind, facts, calls)
        except Exception as exc:  # noqa: BLE001 - any failure falls back, and says why
            log.warning("LLM writer (%s at %s) failed, using the template writer: %s: %s",
                        self.model, self.base_url, type(exc).__name__, str(exc)[:200])
            text = self.fallback.write(kind, facts)
            return replace(text, writer_note=_refusal_note(self.name, exc))
        env = self.fallback.env if isinstance(self.fallback, TemplateWriter) else template_env()
        v = choices_of(dict(facts), kind)
        html = env.get_template(f"{kind}/frame.html.j2").render(
            f=facts, v=v, variant=v, summary=answer["summary"],
            body=_Markup(clean_html(answer["body_html"])))
        return ArticleText(title=text_only(answer["title"])[:200],
                           html=re.sub(r"\n\s*\n+", "\n", clean_html(html)).strip(),
                           excerpt=meta_description(answer["summary"]), writer=self.name)


def _refusal_note(name: str, exc: Exception) -> str:
    """Why the template wrote an article the LLM was asked for, in a line a user reads."""
    if isinstance(exc, CallCapReached):
        refused = (f"{name} quoted figures that are not in the data "
                   f"({', '.join(exc.wrong[:5])}) and " if exc.wrong else "")
        return (f"{refused}the run reached its cap of {exc.limit} LLM calls "
                f"(TICKZEN_LLM_MAX_CALLS); written by the template writer")
    if isinstance(exc, LLMRefused):
        return (f"{name} quoted figures that are not in the data twice "
                f"({', '.join(exc.wrong[:5])}); written by the template writer")
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"{name} answered HTTP {exc.response.status_code}; written by the template writer"
    if isinstance(exc, requests.Timeout):
        return f"{name} did not answer in time; written by the template writer"
    if isinstance(exc, requests.RequestException):
        return f"{name} could not be reached; written by the template writer"
    return f"{name} gave no usable answer ({str(exc)[:120]}); written by the template writer"


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
