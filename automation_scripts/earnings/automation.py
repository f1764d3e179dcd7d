"""The ``earnings`` automation: one article per ticker around its earnings report.

Before the report date the article is a preview (consensus, track record); on the day after
and later it is a recap (actual vs estimate). The kind of article and the report date are
part of the idempotency key, so a preview and a recap of the same report are two posts, and
the same preview is never published twice on a site.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from automation_scripts.articles import finish_article
from automation_scripts.base import (
    Article,
    AutomationError,
    Image,
    InvalidItems,
    ItemContext,
    PreparedItem,
    SiteContext,
    slugify,
)
from automation_scripts.earnings.providers import (
    PROVIDERS,
    EarningsDataError,
    EarningsProvider,
    Fundamentals,
    ProviderConfig,
    get_provider,
)
from automation_scripts.faq import EARNINGS_QUESTIONS, build_faq, faq_dicts
from automation_scripts.llm_calls import CallBudget
from automation_scripts.tickers import EARNINGS
from automation_scripts.variants import Variants, variant_seed
from automation_scripts.writing import (
    Writer,
    clean_html,
    fmt_big_money,
    fmt_money,
    fmt_pct,
    writer_from_settings,
)

MAX_ITEMS = 500


def eps_chart(f: Fundamentals, *, next_estimate: bool) -> bytes:
    """PNG of EPS actual vs estimate per quarter (Figure + Agg: no pyplot, thread-safe)."""
    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    labels = [q.period for q in f.quarters]
    actual = [q.eps_actual for q in f.quarters]
    estimate = [q.eps_estimate for q in f.quarters]
    xs = list(range(len(labels)))
    ax.bar([x - 0.2 for x in xs], [e if e is not None else 0 for e in estimate], width=0.4,
           label="Estimate", color="#9aa5b1")
    ax.bar([x + 0.2 for x in xs], [a if a is not None else 0 for a in actual], width=0.4,
           label="Actual", color=["#2e7d32" if (a or 0) >= (e or 0) else "#c62828"
                                  for a, e in zip(actual, estimate, strict=True)])
    if next_estimate and f.next_eps_estimate is not None:
        xs.append(len(labels))
        labels.append("Next (est.)")
        ax.bar([len(labels) - 1 - 0.2], [f.next_eps_estimate], width=0.4, color="#9aa5b1",
               hatch="//", edgecolor="#52606d")
    ax.set_xticks(xs, labels, rotation=30, ha="right")
    ax.set_ylabel("EPS ($)")
    title = f"{f.ticker}: EPS actual vs estimate"
    ax.set_title(title + (" (DEMO DATA)" if f.demo else ""))
    ax.axhline(0, color="#333", linewidth=0.6)
    ax.legend(handles=[Patch(color="#9aa5b1", label="Estimate"),
                       Patch(color="#2e7d32", label="Actual (met or beat)"),
                       Patch(color="#c62828", label="Actual (missed)")],
              loc="upper left", fontsize=8)
    fig.text(0.99, 0.01, f.source, ha="right", va="bottom", fontsize=8, color="#52606d")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class EarningsAutomation:
    """``kind = "earnings"``: items are tickers or ``{ticker, report_date}`` dicts."""

    kind = "earnings"
    label_field = "ticker"

    link_category = "Earnings"      # internal links with same_category: this category's posts

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self.config = ProviderConfig.from_settings(self.settings)
        self.writer: Writer = writer_from_settings(self.settings)

    @staticmethod
    def link_topic(item: PreparedItem) -> str:
        """What the runner searches the site's posts for (internal links): the ticker."""
        return str((item.input or {}).get("ticker") or "")

    # -- prepare ---------------------------------------------------------------------------

    def provider_for(self, options: Mapping[str, Any]) -> EarningsProvider:
        name = str(options.get("data_source") or options.get("provider") or "demo")
        if name not in PROVIDERS:
            raise InvalidItems([f"unknown earnings data source {name[:30]!r}; use one of "
                                f"{', '.join(PROVIDERS)}"])
        try:
            return get_provider(name, self.config)
        except EarningsDataError as exc:
            raise InvalidItems([str(exc)]) from None

    def prepare(self, raw_items: list[Any], options: Mapping[str, Any], today: date
                ) -> tuple[list[PreparedItem], list[str]]:
        """Validate tickers, resolve each report date, decide preview vs recap."""
        if not isinstance(raw_items, list) or not raw_items:
            raise InvalidItems(["give at least one ticker"])
        if len(raw_items) > MAX_ITEMS:
            raise InvalidItems([f"at most {MAX_ITEMS} tickers per run"])
        provider = self.provider_for(options)
        errors: list[str] = []
        notes: list[str] = []
        items: list[PreparedItem] = []
        seen: set[str] = set()
        for n, raw in enumerate(raw_items, 1):
            ticker_raw = raw.get("ticker") if isinstance(raw, dict) else raw
            try:
                ticker = EARNINGS.normalise(ticker_raw)
            except ValueError as exc:
                errors.append(f"item {n}: {exc}")
                continue
            try:
                report_date = self._report_date(provider, ticker, raw, today)
            except (ValueError, EarningsDataError) as exc:
                errors.append(f"item {n} ({ticker}): {exc}")
                continue
            article_type = "preview" if report_date >= today.isoformat() else "recap"
            # Update mode: one post per ticker and site, the preview becoming the recap.
            key = slugify(f"{ticker} earnings") if options.get("mode") == "update" else \
                slugify(f"{ticker} earnings {article_type} {report_date}")
            if key in seen:
                notes.append(f"{ticker} {article_type} for {report_date} was listed twice; "
                             "kept once")
                continue
            seen.add(key)
            items.append(PreparedItem(
                key=key, label=f"{ticker} earnings {article_type} ({report_date})",
                input={"ticker": ticker, "report_date": report_date,
                       "article_type": article_type, "provider": provider.name,
                       "hour": _hour(raw)}))
        if errors:
            raise InvalidItems(errors)
        return items, notes

    @staticmethod
    def _report_date(provider: EarningsProvider, ticker: str, raw: Any, today: date) -> str:
        given = raw.get("report_date") or raw.get("date") if isinstance(raw, dict) else None
        if given:
            try:
                return date.fromisoformat(str(given)[:10]).isoformat()
            except ValueError:
                raise ValueError(f"report date {str(given)[:20]!r} is not YYYY-MM-DD") from None
        return provider.report_date(ticker, today)

    # -- process ---------------------------------------------------------------------------

    def process(self, item: PreparedItem, ctx: ItemContext) -> Article:
        data = item.input
        ticker, report_date = data["ticker"], data["report_date"]
        article_type = data["article_type"]
        provider = get_provider(data.get("provider") or "demo", self.config)
        today = _today(ctx)
        ctx.progress("processing", f"{ticker}: fetching earnings data from {provider.name}",
                     percent=10, data={"ticker": ticker})
        as_of = date.fromisoformat(report_date) if article_type == "preview" else today
        f = provider.fundamentals(ticker, as_of)
        if len(f.quarters) < 4 and not f.demo and provider.name != "file":
            raise AutomationError(f"{ticker}: only {len(f.quarters)} reported quarters "
                                  "available; need at least 4")
        if not f.quarters:
            raise AutomationError(f"{ticker}: no reported quarters available")
        latest = f.quarters[-1]
        if article_type == "recap" and not f.demo and (latest.report_date or "") < report_date:
            raise AutomationError(f"{ticker}: results for {report_date} are not available "
                                  "yet; retry later")
        ctx.checkpoint()
        ctx.progress("processing", f"{ticker}: drawing the EPS chart", percent=45,
                     data={"ticker": ticker})
        chart = eps_chart(f, next_estimate=article_type == "preview")
        ctx.checkpoint()
        ctx.progress("processing", f"{ticker}: writing the {article_type}", percent=75,
                     data={"ticker": ticker})
        article = self.render(item.key, f, article_type, report_date, data.get("hour"), chart,
                              site=ctx.site, calls=CallBudget.for_item(ctx.workdir,
                                                                       self.settings))
        ctx.checkpoint()
        return article

    def render(self, slug: str, f: Fundamentals, article_type: str, report_date: str,
               hour: str | None, chart: bytes, site: SiteContext | None = None,
               calls: CallBudget | None = None) -> Article:
        """Write the article through the shared Writer (templates, or the LLM with the
        template as fallback); every number in ``facts`` comes from ``f``. The words are
        seeded by the report and the site."""
        site = site or SiteContext()
        facts = earnings_facts(f, article_type, report_date, hour, site_id=site.id)
        text = self.writer.write(f"earnings/{article_type}", facts, calls)
        text = replace(text, html=clean_html(text.html))
        demo = " (demo data)" if f.demo else ""
        image = Image(filename=f"{slug}-eps.png", data=chart, role="featured",
                      alt=f"{f.ticker} EPS actual vs estimate by quarter{demo}")
        return finish_article(
            slug, text, site=site, about={"ticker": f.ticker, "name": f.name or ""},
            kind=self.kind, categories=["Earnings"],
            tags=[f.ticker, "earnings", article_type] + (["demo"] if f.demo else []),
            images=[image], focus_keyword=f"{f.ticker} earnings {article_type}",
            faq=facts["faq"], seed=facts["seed"])


def earnings_facts(f: Fundamentals, article_type: str, report_date: str,
                   hour: str | None, site_id: str = "") -> dict[str, Any]:
    """Plain, JSON-able facts for the writer: figures pre-formatted as the article shows them,
    so a template and an LLM both quote exactly the same numbers."""
    latest = f.quarters[-1]
    surprises = [q.surprise_pct for q in f.quarters if q.surprise_pct is not None]
    eps_change = None
    if f.next_eps_estimate is not None and latest.eps_actual:
        eps_change = (f.next_eps_estimate - latest.eps_actual) / abs(latest.eps_actual) * 100
    verdict, verb = "in line", "matched"
    if latest.surprise_pct is not None and latest.surprise_pct > 0.5:
        verdict, verb = "beat", "beat"
    elif latest.surprise_pct is not None and latest.surprise_pct < -0.5:
        verdict, verb = "miss", "missed"
    pct = partial(fmt_pct, in_percent=True)        # the providers give figures in percent
    margin = partial(fmt_pct, signed=False, in_percent=True)

    def quarter(q: Any) -> dict[str, Any]:
        return {"period": q.period, "report_date": q.report_date or "n/a",
                "eps_actual": fmt_money(q.eps_actual),
                "eps_estimate": fmt_money(q.eps_estimate), "surprise": pct(q.surprise_pct),
                "revenue": fmt_big_money(q.revenue),
                "revenue_estimate": fmt_big_money(q.revenue_estimate)}

    facts: dict[str, Any] = {
        "seed": variant_seed(f"{f.ticker}-{report_date}", site_id), "ticker": f.ticker,
        "name": f.name,
        "demo": f.demo, "source": f.source, "article_type": article_type,
        "report_date": report_date,
        "report_date_long": date.fromisoformat(report_date).strftime("%A, %B %-d, %Y"),
        "hour_text": {"bmo": "before the market opens",
                      "amc": "after the market closes"}.get(hour or "", ""),
        "quarters": [quarter(q) for q in f.quarters], "quarter_count": len(f.quarters),
        "latest": quarter(latest), "beats": sum(1 for x in surprises if x > 0),
        "avg_surprise": pct(sum(surprises) / len(surprises)) if surprises else "n/a",
        "growth_yoy": pct(f.revenue_growth_yoy()), "growth_qoq": pct(f.revenue_growth_qoq()),
        "eps_change": pct(eps_change), "verdict": verdict, "verdict_verb": verb,
        "next_report_date": f.next_report_date or "",
        "next_eps_estimate": fmt_money(f.next_eps_estimate),
        "next_revenue_estimate": fmt_big_money(f.next_revenue_estimate),
        "gross_margin": margin(f.gross_margin),
        "operating_margin": margin(f.operating_margin),
        "net_margin": margin(f.net_margin),
    }
    facts["faq"] = faq_dicts(build_faq(facts, Variants(facts["seed"]), EARNINGS_QUESTIONS))
    return facts


def _hour(raw: Any) -> str | None:
    hour = raw.get("hour") if isinstance(raw, dict) else None
    return hour if hour in ("bmo", "amc") else None


def _today(ctx: ItemContext) -> date:
    clock = ctx.services.get("clock") if ctx.services else None
    if callable(clock):
        now = clock()
        return now.date() if isinstance(now, datetime) else now
    return datetime.now(UTC).date()


def create(settings: Mapping[str, Any]) -> EarningsAutomation:
    """Entry point the automation registry calls with the automation settings (the listed
    variables an automation may see, typed, plus INSTANCE_PATH)."""
    return EarningsAutomation(settings)
