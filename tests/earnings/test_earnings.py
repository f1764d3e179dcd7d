"""Earnings providers and the earnings automation, on the real calendar in ../shared/data and on
bad input (empty calendar, unknown ticker, provider errors)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from automation_scripts.base import (
    AutomationError,
    InvalidItems,
    ItemContext,
    StopRequested,
)
from automation_scripts.earnings.automation import create
from automation_scripts.earnings.providers import (
    DemoProvider,
    EarningsDataError,
    FileProvider,
    FinnhubProvider,
    ProviderConfig,
    get_provider,
    week_by_day,
)
from tests.support import procs

WEEK = date(2026, 2, 19)            # first day of the recorded calendar


def ctx(tmp_path: Path, today: date | None = None, stop_after: int | None = None
        ) -> tuple[ItemContext, list[tuple]]:
    events: list[tuple] = []
    calls = {"n": 0}

    def checkpoint() -> None:
        calls["n"] += 1
        if stop_after is not None and calls["n"] > stop_after:
            raise StopRequested("pause")

    services = {"clock": (lambda: datetime(today.year, today.month, today.day, 12))} \
        if today else {}
    return ItemContext(run_id="r1", user_id="u1", index=0, total=1, options={},
                       workdir=tmp_path, progress=lambda *a, **k: events.append((a, k)),
                       checkpoint=checkpoint, services=services), events


@pytest.fixture
def calendar_file(shared_data: Path) -> Path:
    return shared_data / "earnings_calendar.json"


@pytest.fixture
def fundamentals_file(tmp_path: Path) -> Path:
    """A fundamentals file in the documented shape (numbers made up for the test)."""
    quarters = [
        {"period": f"{y}-Q{q}", "report_date": d, "eps_actual": a, "eps_estimate": e,
         "revenue": r, "revenue_estimate": r * 0.99}
        for (y, q, d, a, e, r) in [
            (2024, 4, "2025-02-20", 1.73, 1.77, 1.20e9),
            (2025, 1, "2025-05-01", 1.70, 1.62, 1.27e9),
            (2025, 2, "2025-07-31", 1.86, 1.90, 1.32e9),
            (2025, 3, "2025-10-23", 1.58, 1.56, 1.44e9),
            (2025, 4, "2026-02-19", 1.80, 1.70, 1.35e9)]]
    path = tmp_path / "fundamentals.json"
    path.write_text(json.dumps({
        "TXRH": {"name": "Texas Roadhouse <script>alert(1)</script>", "quarters": quarters,
                 "next_report_date": "2026-04-30", "next_eps_estimate": 1.9,
                 "gross_margin": 16.5, "operating_margin": 8.9, "net_margin": 7.6}}))
    return path


# -- providers ---------------------------------------------------------------------------------


def test_file_calendar_week_by_day(calendar_file):
    days = week_by_day(FileProvider(calendar_file), WEEK)
    assert [d["date"] for d in days] == [f"2026-02-{n}" for n in range(19, 26)]
    assert [len(d["entries"]) for d in days] == [159, 22, 0, 0, 86, 148, 236]
    assert days[0]["weekday"] == "Thursday"
    assert {"ticker": "TXRH", "date": "2026-02-19", "name": None, "hour": None} \
        in days[0]["entries"]
    tickers = [e["ticker"] for e in days[0]["entries"]]
    assert tickers == sorted(tickers)


def test_empty_calendar_gives_seven_empty_days_and_unknown_tickers(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"calendar": {}}))
    days = week_by_day(FileProvider(path), WEEK)
    assert len(days) == 7 and all(d["entries"] == [] for d in days)
    automation = create({"TICKZEN_EARNINGS_CALENDAR_FILE": str(path)})
    with pytest.raises(InvalidItems) as err:
        automation.prepare(["AAPL"], {"data_source": "file"}, WEEK)
    assert err.value.errors == ["item 1 (AAPL): AAPL is not in the earnings calendar file"]


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    (json.dumps({"events": []}), "has no 'calendar' object"),
    (json.dumps({"calendar": {"2026-02-19": "TXRH"}}), "is not a list"),
])
def test_broken_calendar_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "cal.json"
    path.write_text(content)
    with pytest.raises(EarningsDataError) as err:
        FileProvider(path).calendar(WEEK, WEEK)
    assert message in str(err.value)


def test_missing_calendar_file_and_unconfigured_file_provider(tmp_path):
    with pytest.raises(EarningsDataError, match="does not exist"):
        FileProvider(tmp_path / "nope.json").calendar(WEEK, WEEK)
    with pytest.raises(EarningsDataError, match="TICKZEN_EARNINGS_CALENDAR_FILE"):
        FileProvider(None)


def test_demo_provider_is_deterministic_and_labelled():
    a, b = DemoProvider(), DemoProvider()
    today = date(2026, 11, 25)
    assert week_by_day(a, today) == week_by_day(b, today)
    assert sum(len(d["entries"]) for d in week_by_day(a, today)) > 0
    f = a.fundamentals("AAPL", today)
    assert f.to_dict() == b.fundamentals("AAPL", today).to_dict()
    assert f.demo and "Demo" in f.source
    assert len(f.quarters) == 8
    assert all(q.report_date < today.isoformat() for q in f.quarters)
    assert f.next_report_date >= today.isoformat()
    q = f.quarters[-1]
    assert q.surprise_pct == round((q.eps_actual - q.eps_estimate) / abs(q.eps_estimate) * 100, 2)
    assert f.revenue_growth_yoy() is not None


def test_finnhub_without_key_is_a_clear_error():
    with pytest.raises(EarningsDataError, match="needs an API key"):
        get_provider("finnhub", ProviderConfig())
    with pytest.raises(InvalidItems, match="needs an API key"):
        create({}).prepare(["AAPL"], {"data_source": "finnhub"}, WEEK)


def test_finnhub_unreachable_is_a_clear_error():
    provider = FinnhubProvider("key", base_url=f"http://127.0.0.1:{procs.free_port()}",
                               timeout=2)
    with pytest.raises(EarningsDataError, match="finnhub is unreachable"):
        provider.calendar(WEEK, WEEK)
    with pytest.raises(InvalidItems, match="finnhub is unreachable"):
        automation = create({"FINNHUB_API_KEY": "key",
                             "FINNHUB_API_URL": provider.base_url, "TICKZEN_PROVIDER_TIMEOUT": 2})
        automation.prepare(["AAPL"], {"data_source": "finnhub"}, WEEK)


def test_finnhub_http_errors_are_readable(feed_server):
    # The local feed server answers 404 for every Finnhub route: a wrong API URL.
    provider = FinnhubProvider("key", base_url=feed_server.url("nothing-here"), timeout=5)
    with pytest.raises(EarningsDataError, match="finnhub answered HTTP 404"):
        provider.fundamentals("AAPL", WEEK)


def test_yahoo_needs_yfinance():
    try:
        import yfinance  # noqa: F401
    except ImportError:
        with pytest.raises(EarningsDataError, match="needs the yfinance package"):
            get_provider("yahoo", ProviderConfig())
    else:
        assert get_provider("yahoo", ProviderConfig()).name == "yahoo"


def test_unknown_provider():
    with pytest.raises(ValueError, match="unknown earnings provider"):
        get_provider("bloomberg", ProviderConfig())
    with pytest.raises(InvalidItems, match="unknown earnings data source"):
        create({}).prepare(["AAPL"], {"data_source": "bloomberg"}, WEEK)


# -- prepare -----------------------------------------------------------------------------------


def test_prepare_resolves_dates_and_keys_from_the_real_calendar(calendar_file):
    automation = create({"TICKZEN_EARNINGS_CALENDAR_FILE": str(calendar_file)})
    items, notes = automation.prepare(
        [" txrh ", {"ticker": "LYV", "report_date": "2026-02-19"}, "TXRH", "CPRT"],
        {"data_source": "file"}, date(2026, 2, 20))
    assert [i.key for i in items] == ["txrh-earnings-recap-2026-02-19",
                                      "lyv-earnings-recap-2026-02-19",
                                      "cprt-earnings-recap-2026-02-19"]
    assert notes == ["TXRH recap for 2026-02-19 was listed twice; kept once"]
    ahead, _ = automation.prepare(["TXRH"], {"data_source": "file"}, date(2026, 2, 1))
    assert ahead[0].key == "txrh-earnings-preview-2026-02-19"
    assert ahead[0].input == {"ticker": "TXRH", "report_date": "2026-02-19",
                              "article_type": "preview", "provider": "file", "hour": None}


def test_prepare_reports_every_bad_item(calendar_file):
    automation = create({"TICKZEN_EARNINGS_CALENDAR_FILE": str(calendar_file)})
    with pytest.raises(InvalidItems) as err:
        automation.prepare(["TXRH", "$$$", "", {"ticker": "ZZZZQ"}, 7,
                            {"ticker": "LYV", "report_date": "19/02/2026"}],
                           {"data_source": "file"}, WEEK)
    assert err.value.errors == [
        "item 2: '$$$' is not a valid ticker symbol",
        "item 3: a ticker must be a non-empty string",
        "item 4 (ZZZZQ): ZZZZQ is not in the earnings calendar file",
        "item 5: a ticker must be a non-empty string",
        "item 6 (LYV): report date '19/02/2026' is not YYYY-MM-DD",
    ]
    with pytest.raises(InvalidItems, match="at least one ticker"):
        automation.prepare([], {"data_source": "file"}, WEEK)
    with pytest.raises(InvalidItems, match="at most 500"):
        automation.prepare(["AAPL"] * 501, {"data_source": "demo"}, WEEK)


# -- process -----------------------------------------------------------------------------------


def test_demo_preview_article(tmp_path):
    automation = create({})
    today = date(2026, 11, 25)
    items, _ = automation.prepare(["NFLX"], {"data_source": "demo"}, today)
    context, events = ctx(tmp_path, today)
    article = automation.process(items[0], context)
    assert article.slug == items[0].key and "-earnings-preview-" in article.slug
    assert "preview" in article.title and "(demo data)" in article.title
    assert "Demo data:" in article.html and "synthetic" in article.html
    assert article.html.count("<tr>") == 9                     # header + 8 quarters
    [image] = article.images
    assert image.role == "featured" and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "demo" in image.alt
    assert article.categories == ["Earnings"] and "NFLX" in article.tags
    assert [k["percent"] for _, k in events] == [10, 45, 75]


def test_recap_from_file_data_is_escaped_and_uses_the_reported_numbers(
        tmp_path, calendar_file, fundamentals_file):
    automation = create({"TICKZEN_EARNINGS_CALENDAR_FILE": str(calendar_file),
                         "TICKZEN_EARNINGS_FUNDAMENTALS_FILE": str(fundamentals_file)})
    today = date(2026, 2, 23)
    items, _ = automation.prepare(["TXRH"], {"data_source": "file"}, today)
    assert items[0].key == "txrh-earnings-recap-2026-02-19"
    article = automation.process(items[0], ctx(tmp_path, today)[0])
    assert "TXRH" in article.title and "$1.80" in article.title         # words vary per site
    assert "$1.70" in article.title or "+5.9%" in article.title
    assert "a beat" in article.html and "+5.9% surprise" in article.html
    assert "<script>" not in article.html and "&lt;script&gt;" in article.html
    assert "Demo data" not in article.html
    assert "Next report expected 2026-04-30" in article.html
    assert "+12.5% year over year" in article.html            # 1.35e9 vs 1.20e9


def test_recap_before_results_exist_fails_readably(tmp_path, calendar_file, fundamentals_file):
    automation = create({"TICKZEN_EARNINGS_CALENDAR_FILE": str(calendar_file),
                         "TICKZEN_EARNINGS_FUNDAMENTALS_FILE": str(fundamentals_file)})
    items, _ = automation.prepare([{"ticker": "TXRH", "report_date": "2026-02-19"}],
                                  {"data_source": "file"}, date(2026, 2, 23))
    with pytest.raises(AutomationError, match="not available yet"):
        automation.process(items[0], ctx(tmp_path, date(2026, 2, 19))[0])


def test_unknown_ticker_in_fundamentals_file(tmp_path, calendar_file, fundamentals_file):
    automation = create({"TICKZEN_EARNINGS_CALENDAR_FILE": str(calendar_file),
                         "TICKZEN_EARNINGS_FUNDAMENTALS_FILE": str(fundamentals_file)})
    items, _ = automation.prepare(["LYV"], {"data_source": "file"}, date(2026, 2, 23))
    with pytest.raises(AutomationError, match="no fundamentals for LYV"):
        automation.process(items[0], ctx(tmp_path, date(2026, 2, 23))[0])


def test_pause_between_steps_stops_the_item(tmp_path):
    automation = create({})
    items, _ = automation.prepare(["AAPL"], {"data_source": "demo"}, date(2026, 11, 25))
    context, events = ctx(tmp_path, date(2026, 11, 25), stop_after=0)
    with pytest.raises(StopRequested):
        automation.process(items[0], context)
    assert len(events) == 1                                    # stopped before the chart


# -- the optional LLM writer ---------------------------------------------------------------------


def test_llm_writer_writes_the_prose_and_the_template_keeps_the_figures(tmp_path, feed_server):
    automation = create({"TICKZEN_LLM_BASE_URL": feed_server.url("llm"),
                         "TICKZEN_LLM_MODEL": "stand-in", "TICKZEN_LLM_TIMEOUT": 5})
    today = date(2026, 11, 25)
    items, _ = automation.prepare(["AAPL"], {"data_source": "demo"}, today)
    article = automation.process(items[0], ctx(tmp_path, today)[0])
    assert article.title == "LLM headline" and article.excerpt == "LLM summary sentence."
    assert "LLM analysis" in article.html and "<script" not in article.html
    assert "Demo data:" in article.html                        # the frame keeps the banner,
    assert article.html.count("<tr>") == 9                     # the figures table
    assert "not investment advice" in article.html             # and the disclaimer


def test_llm_unreachable_falls_back_to_the_template(tmp_path):
    settings = {"TICKZEN_LLM_BASE_URL": f"http://127.0.0.1:{procs.free_port()}",
                "TICKZEN_LLM_MODEL": "absent", "TICKZEN_LLM_TIMEOUT": 2}
    today = date(2026, 11, 25)
    with_llm, plain = create(settings), create({})
    items, _ = plain.prepare(["AAPL"], {"data_source": "demo"}, today)
    fallback = with_llm.process(items[0], ctx(tmp_path, today)[0])
    template = plain.process(items[0], ctx(tmp_path, today)[0])
    assert fallback.title == template.title and fallback.html == template.html
    assert "earnings preview" in fallback.title
