"""The ``stock`` automation: prices -> TA-Lib analysis -> forecast -> charts -> article.

``process`` writes the charts and ``report.json`` into the item's workdir (the runner stores
the workdir and its file names in ``item.result``; the portal's report page reads them back)
and returns the Article the publisher posts: the price chart as featured image, the momentum
and volume charts inline via ``{{image:<file>}}`` placeholders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from automation_scripts.articles import finish_article
from automation_scripts.base import (
    Article,
    AutomationError,
    Image,
    InvalidItems,
    ItemContext,
    PreparedItem,
    slugify,
)
from automation_scripts.faq import STOCK_QUESTIONS, build_faq, faq_dicts
from automation_scripts.llm_calls import CallBudget
from automation_scripts.stock.charts import StockCharts
from automation_scripts.stock.company_data import (
    CompanyDataProvider,
    DemoCompanyData,
    Depth,
    YahooCompanyData,
    gather_depth,
)
from automation_scripts.stock.forecast import Forecast, forecast
from automation_scripts.stock.fundamentals import DEFAULT_BENCHMARK
from automation_scripts.stock.indicators import Analysis, analyse
from automation_scripts.stock.market_data import (
    DATA_SOURCES,
    DEMO_LABEL,
    PriceHistory,
    PriceProvider,
    ProviderError,
    provider_for,
)
from automation_scripts.stock.rate_limit import OnWait
from automation_scripts.stock.yahoo_prices import YahooPrices, wait_message
from automation_scripts.tickers import STOCK
from automation_scripts.variants import Variants, variant_seed
from automation_scripts.writing import ArticleText, Writer, writer_from_settings

DEFAULT_SOURCE = "demo"
YEARS = 10
UPLOAD_ID_RE = re.compile(r"^[a-f0-9]{32}$")
CATEGORY = "Stock Analysis"
MODES = ("create", "update")
DEPTH_KEYS = ("profile", "valuation", "dividends", "analysts", "benchmark", "company_source")
# The method's own constants: prose may quote them (the "14-day RSI"), so they are facts.
METHOD = {"rsi_days": 14, "averages": [20, 50, 200], "macd": [12, 26, 9], "atr_days": 14,
          "adx_days": 14, "horizons": [30, 90], "intervals": [80, 95], "range_weeks": 52,
          "range_days": 90}
SOURCE_LABELS = {"demo": f"{DEMO_LABEL} (synthetic prices, not market data)",
                 "yahoo": "Yahoo Finance daily prices (adjusted)",
                 "yahoo (recorded)": "Yahoo Finance daily prices (adjusted, recorded)",
                 "csv": "uploaded CSV price file"}


def item_slug(ticker: str, options: Mapping[str, Any], today: date) -> str:
    """The post's slug, its idempotency key: dated (one post a day), or without the date in
    update mode (one post per ticker and site, updated by every run)."""
    if options.get("mode") == "update":
        return slugify(f"{ticker} stock analysis")
    return slugify(f"{ticker} stock analysis {today.isoformat()}")


def upload_path(instance_path: str | Path, user_id: str, upload_id: str) -> Path:
    """Where ``POST /api/uploads/prices`` keeps a user's upload (shared with the portal)."""
    return Path(instance_path) / "uploads" / user_id / f"{upload_id}.csv"


@dataclass
class StockReport:
    """Everything one ticker's pipeline produced, before any file is written."""

    history: PriceHistory
    analysis: Analysis
    forecast: Forecast
    facts: dict[str, Any]
    text: ArticleText
    images: list[Image] = field(default_factory=list)

    def report_json(self) -> dict[str, Any]:
        """The page-ready summary kept beside the charts as ``report.json``."""
        f = self.facts
        return {"ticker": f["ticker"], "title": self.text.title, "html": self.text.html,
                "excerpt": self.text.excerpt, "writer": self.text.writer,
                "writer_note": self.text.writer_note, "faq": f.get("faq", []),
                "as_of": f["as_of"],
                "data_source": self.history.source, "source_label": f["source_label"],
                "is_demo": f["is_demo"], "stance": f["stance"], "last_close": f["last_close"],
                "forecast": f["forecast"], "returns": f["returns"], "risk": f["risk"],
                "range52": f["range52"], "support": f["support"],
                "resistance": f["resistance"], "omitted": f["omitted"],
                "problems": f["problems"],
                "depth": {k: f[k] for k in DEPTH_KEYS}, "depth_notes": f["depth_notes"],
                "images": [{"filename": i.filename, "alt": i.alt, "role": i.role}
                           for i in self.images]}


def build_facts(history: PriceHistory, a: Analysis, fc: Forecast,
                images: list[dict[str, str]], seed: str | None = None,
                depth: Depth | None = None) -> dict[str, Any]:
    """Plain data for the writer: numbers rounded where the text shows them. ``seed`` picks
    the words (the ticker and the site: ``variant_seed``); ``depth`` adds the company's data
    and the benchmark comparison (parts the data source lacks stay None and are left out);
    the FAQ is answered from these same figures."""
    ind_keys = ("rsi", "macd", "macd_signal", "sma20", "sma50", "sma200", "ema12", "ema26",
                "atr", "adx", "stoch_k", "stoch_d", "bb_upper", "bb_lower", "obv")
    bull = sum(s.view == "bullish" for s in a.signals)
    bear = sum(s.view == "bearish" for s in a.signals)
    strongest = next((s for s in a.signals if s.view == a.stance), None) or \
        (a.signals[0] if a.signals else None)
    headline = (strongest.text[:1].upper() + strongest.text[1:]) if strongest else \
        "Too little history for firm signals"
    years = max(1, round(a.rows / 252))
    recent = history.frame.tail(METHOD["range_days"])
    range90 = {"low": float(recent["Low"].min()), "high": float(recent["High"].max())} \
        if len(recent) >= METHOD["range_days"] else None
    facts = {
        "ticker": a.ticker, "seed": seed or a.ticker, "as_of": a.as_of, "rows": a.rows,
        "years": years, "method": METHOD, "range90": range90,
        "source": history.source, "is_demo": history.is_demo,
        "source_label": SOURCE_LABELS.get(history.source, history.source),
        "last_close": a.last_close, "change_1d": a.change_1d,
        "returns": [{"label": k, "value": v} for k, v in a.returns.items()],
        "returns_map": dict(a.returns), "ret_1y": a.returns.get("1Y"),
        "risk": dict(a.risk), "range52": dict(a.range_52w),
        "support": a.support, "resistance": a.resistance,
        "ind": {k: a.latest.get(k) for k in ind_keys},
        "signals": [{"name": s.name, "view": s.view, "text": s.text} for s in a.signals],
        "stance": a.stance, "score": a.score, "bull": bull, "bear": bear,
        "signal_headline": headline,
        "forecast": {"model": fc.model, "h30": fc.at(30), "h90": fc.at(90)},
        "omitted": list(a.omitted), "problems": list(history.problems),
        "images": images,
        **(depth or Depth()).facts(),
    }
    facts["faq"] = faq_dicts(build_faq(facts, Variants(facts["seed"]), STOCK_QUESTIONS))
    return facts


def build_report(history: PriceHistory, writer: Writer, *,
                 step: Callable[[str, int], None] | None = None,
                 charts: StockCharts | None = None, site_id: str = "",
                 calls: CallBudget | None = None, depth: Depth | None = None) -> StockReport:
    """The whole pipeline after the prices are in hand (no network, no files). Pass the
    same ``charts`` for every ticker: it keeps the chart figures between calls. ``site_id``
    seeds the words, so the same ticker reads differently on every site; ``calls`` counts
    the run's LLM calls; ``depth`` is what gather_depth found."""
    step = step or (lambda _message, _percent: None)
    charts = charts or StockCharts()
    step("Analysing", 30)
    a = analyse(history)
    step("Forecasting", 50)
    fc = forecast(history.frame["Close"])
    step("Drawing charts", 65)
    frame, src, t = history.frame, history.source, slugify(history.ticker) or "index"
    demo = " (demo data)" if history.is_demo else ""
    images = [
        Image(f"{t}-price.png", charts.price(frame, a, fc, src),
              f"{a.ticker} price with 20/50/200-day averages, Bollinger band and 90-day "
              f"forecast{demo}", "featured"),
        Image(f"{t}-momentum.png", charts.momentum(frame, a, src),
              f"{a.ticker} RSI 14 and MACD{demo}", "inline"),
        Image(f"{t}-volume.png", charts.volume(frame, a, src),
              f"{a.ticker} daily trading volume{demo}", "inline"),
    ]
    captions = ["Price, moving averages, Bollinger band and forecast fan",
                "Momentum: RSI (14) and MACD (12, 26, 9)", "Daily volume and its 50-day average"]
    sections = ["price", "momentum", "volume"]
    meta = [{"filename": i.filename, "alt": i.alt, "role": i.role,
             "caption": c + demo, "section": s} for i, c, s in zip(images, captions, sections,
                                                                   strict=True)]
    step("Writing the article", 85)
    facts = build_facts(history, a, fc, meta, seed=variant_seed(a.ticker, site_id),
                        depth=depth)
    text = writer.write("stock", facts, calls)
    return StockReport(history, a, fc, facts, text, images)


class StockAutomation:
    """kind ``stock``: one ticker per item."""

    kind = "stock"
    label_field = "ticker"
    report_file = "report.json"
    cpu_bound = True                # three charts a ticker: made in the generation processes

    link_category = CATEGORY        # internal links with same_category: this category's posts

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self.writer: Writer = writer_from_settings(self.settings)
        self.charts = StockCharts()
        # Shared by every item this automation makes: the yahoo request window and cache.
        self.yahoo = YahooPrices.from_settings(self.settings)
        # Where each data source's company data comes from (csv has none); yahoo's asks go
        # through the same request window as its prices.
        self.company_sources: dict[str, Callable[[OnWait | None], CompanyDataProvider]] = {
            "yahoo": lambda on_wait: YahooCompanyData(window=self.yahoo.window,
                                                      on_wait=on_wait),
            "demo": lambda _on_wait: DemoCompanyData()}

    @staticmethod
    def link_topic(item: PreparedItem) -> str:
        """What the runner searches the site's posts for (internal links): the ticker."""
        return str(item.input)

    # -- submit time ---------------------------------------------------------------------------

    def check_options(self, options: Mapping[str, Any]) -> list[str]:
        errors: list[str] = []
        source = options.get("data_source", DEFAULT_SOURCE)
        if source not in DATA_SOURCES:
            errors.append(f"unknown data_source {source!r}: use one of "
                          f"{', '.join(DATA_SOURCES)}")
        upload = options.get("csv_upload_id")
        if upload is not None and (not isinstance(upload, str)
                                   or not UPLOAD_ID_RE.match(upload)):
            errors.append("csv_upload_id is not a valid upload id")
        if source == "csv" and not upload and not self.settings.get("TICKZEN_CSV_DIR"):
            errors.append("the csv data source needs an uploaded price file (csv_upload_id)")
        benchmark = options.get("benchmark")
        if benchmark is not None:
            try:
                STOCK.normalise(benchmark)
            except ValueError as exc:
                errors.append(f"benchmark: {exc}")
        return errors

    def prepare(self, raw_items: list[Any], options: Mapping[str, Any], today: date
                ) -> tuple[list[PreparedItem], list[str]]:
        errors = self.check_options(options)
        if not isinstance(raw_items, list) or not raw_items:
            errors.append("no tickers given")
            raw_items = []
        items: list[PreparedItem] = []
        notes: list[str] = []
        seen: dict[str, Any] = {}
        for raw in raw_items:
            try:
                ticker = STOCK.normalise(raw)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            if ticker in seen:
                notes.append(f"duplicate ticker {raw!s} removed (same as {seen[ticker]!s})")
                continue
            seen[ticker] = raw
            key = item_slug(ticker, options, today)
            items.append(PreparedItem(key=key, input=ticker, label=ticker))
        if errors:
            raise InvalidItems(errors)
        return items, notes

    # -- one item --------------------------------------------------------------------------------

    def provider(self, ctx: ItemContext, on_wait: OnWait | None = None) -> PriceProvider:
        source = ctx.options.get("data_source", DEFAULT_SOURCE)
        injected = (ctx.services or {}).get("price_providers") or {}
        if source in injected:
            return injected[source]
        if source == "yahoo":
            return self.yahoo.provider(on_wait)
        settings = self.settings
        upload = ctx.options.get("csv_upload_id")
        path = None
        if source == "csv" and upload:
            if not UPLOAD_ID_RE.match(str(upload)):
                raise ProviderError("csv_upload_id is not a valid upload id")
            path = upload_path(settings.get("INSTANCE_PATH", "instance"), ctx.user_id,
                               str(upload))
        return provider_for(source, settings, upload_path=path)

    def company_data(self, ctx: ItemContext, on_wait: OnWait | None = None
                     ) -> CompanyDataProvider | None:
        """The company-data provider of the run's data source: an injected one, none when
        only the prices were injected (a test never reaches the network), else the source's."""
        source = ctx.options.get("data_source", DEFAULT_SOURCE)
        services = ctx.services or {}
        injected = services.get("company_data") or {}
        if source in injected:
            return injected[source]
        if source in (services.get("price_providers") or {}) or \
                source not in self.company_sources:
            return None
        return self.company_sources[source](on_wait)

    def process(self, item: PreparedItem, ctx: ItemContext) -> Article:
        ticker = str(item.input)
        data = {"ticker": ticker}

        def step(message: str, percent: int) -> None:
            ctx.checkpoint()
            ctx.progress("processing", f"{message}: {ticker}", percent=percent, data=data)

        def wait(seconds: float, reason: str) -> None:
            ctx.checkpoint()
            ctx.progress("processing", f"{wait_message(seconds, reason)}: {ticker}",
                         percent=10, data=data)

        step("Fetching prices", 10)
        prices = self.provider(ctx, on_wait=wait)
        history = prices.history(ticker, years=YEARS)
        if history.frame.empty:
            raise AutomationError(f"{ticker}: no prices")
        step("Fetching company data and the benchmark", 20)
        benchmark = STOCK.normalise(ctx.options.get("benchmark") or DEFAULT_BENCHMARK)
        depth = gather_depth(history, prices, self.company_data(ctx, on_wait=wait), benchmark,
                             YEARS)
        report = build_report(history, self.writer, step=step, charts=self.charts,
                              site_id=ctx.site_id, depth=depth,
                              calls=CallBudget.for_item(ctx.workdir, self.settings))
        ctx.checkpoint()
        workdir = Path(ctx.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        for image in report.images:
            (workdir / image.filename).write_bytes(image.data)
        (workdir / "report.json").write_text(json.dumps(report.report_json(), indent=1,
                                                        default=str))
        ctx.progress("processing", f"Article ready: {ticker}", percent=100, data=data)
        tags = [ticker, "stock analysis"] + (["demo data"] if history.is_demo else [])
        profile = report.facts["profile"] or {}
        about = {"ticker": ticker, **({"name": profile["name"]} if profile.get("name") else {})}
        return finish_article(item.key, report.text, site=ctx.site, about=about,
                              kind=self.kind, categories=[CATEGORY], tags=tags,
                              images=report.images, focus_keyword=f"{ticker} stock analysis",
                              faq=report.facts["faq"], seed=report.facts["seed"])


def create(settings: Mapping[str, Any]) -> StockAutomation:
    """Entry point the portal's automation registry calls."""
    return StockAutomation(settings)
