"""Stock depth in the articles: real recorded prices (../shared/data/prices) with the hand-made
Ticker.info fixtures behind the yahoo interface, the csv source with a benchmark file, demo
data; a section without data is left out (no placeholder), every figure the LLM may quote is in
the facts, and a bad benchmark is refused with a 400."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automation_scripts.base import ItemContext
from automation_scripts.fact_check import unsupported_figures
from automation_scripts.stock.automation import build_facts, create
from automation_scripts.stock.company_data import RecordedCompanyData, gather_depth
from automation_scripts.stock.forecast import forecast
from automation_scripts.stock.indicators import analyse
from automation_scripts.stock.market_data import RecordedProvider
from automation_scripts.writing import plain_text
from tests.articles.conftest import IMAGES
from tests.stock.conftest import PRICES
from tests.stock.test_fundamentals import FIXTURES

TODAY = date(2026, 2, 20)
DEPTH_HEADINGS = ("Company and valuation", "The business and its price tag",
                  "Company profile and valuation", "Who the company is and how it is valued",
                  "Dividends", "Dividend record", "What the stock pays out",
                  "Income from the shares", "Analyst price targets", "What analysts expect",
                  "The analysts' view", "Price targets on the Street", "Relative performance",
                  "Against the benchmark")


def run_item(tmp_path: Path, ticker: str, options: dict, services: dict | None = None,
             settings: dict | None = None):
    stock = create({"INSTANCE_PATH": str(tmp_path / "instance"), **(settings or {})})
    [item], _ = stock.prepare([ticker], options, TODAY)
    ctx = ItemContext(run_id="r1", user_id="u1", index=0, total=1, options=options,
                      workdir=tmp_path / "run" / ticker, progress=lambda *a, **k: None,
                      checkpoint=lambda: None, services=services or {})
    article = stock.process(item, ctx)
    report = json.loads((ctx.workdir / "report.json").read_text())
    return article, report


def headings(html: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", html)


@pytest.fixture
def recorded_yahoo(recorded) -> dict:
    return {"price_providers": {"yahoo": recorded},
            "company_data": {"yahoo": RecordedCompanyData(FIXTURES)}}


def test_recorded_yahoo_goog_has_every_section_from_its_answers(tmp_path, recorded_yahoo):
    article, report = run_item(tmp_path, "GOOG", {"data_source": "yahoo", "benchmark": "KVUE"},
                               recorded_yahoo)
    text = plain_text(article.html)
    assert "Alphabet Inc. (GOOG)" in text and "Communication Services" in text
    assert "$3.66 trillion" in text and "28.4" in text and "24.1" in text and "9.3" in text
    assert "0.28%" in text and "$335.50" in text and "19 analysts" in text
    assert "Yahoo Finance (recorded company profile" in text
    assert "n/a" not in text and "Demo" not in text
    assert article.about == {"ticker": "GOOG", "name": "Alphabet Inc."}
    bench = report["depth"]["benchmark"]
    assert bench["symbol"] == "KVUE" and bench["days"] == 504 and bench["source"] == \
        "yahoo (recorded)"
    assert f"{bench['beta']:.2f}" in text and f"{bench['correlation']:.2f}" in text
    assert report["depth"]["company_source"] == "yahoo (recorded)"
    assert report["depth_notes"] == []


def test_a_benchmark_the_source_lacks_is_left_out_with_a_note(tmp_path, recorded_yahoo):
    article, report = run_item(tmp_path, "GOOG", {"data_source": "yahoo"}, recorded_yahoo)
    assert report["depth"]["benchmark"] is None
    assert report["depth_notes"] == ["benchmark comparison left out: no SPY prices in the "
                                     "yahoo (recorded) data"]
    assert "SPY" not in article.html and "Beta" not in article.html
    assert report["depth"]["valuation"]["trailing_pe"] == 28.4       # the rest is there


def test_sections_without_data_are_left_out_never_filled(tmp_path, recorded, recorded_yahoo):
    only_prices = {"price_providers": {"yahoo": recorded}}
    article, report = run_item(tmp_path, "KVUE", {"data_source": "yahoo"}, only_prices)
    assert not set(headings(article.html)) & set(DEPTH_HEADINGS)
    assert "n/a" not in plain_text(article.html) and report["depth"]["profile"] is None
    # An unknown symbol's almost empty answer: the same.
    unknown = {**recorded_yahoo, "company_data": {"yahoo": RecordedCompanyData(FIXTURES)}}
    shutil.copy(PRICES / "KVUE.csv", tmp_path / "ZZZZ.csv")
    unknown["price_providers"] = {"yahoo": RecordedProvider(tmp_path)}
    article, report = run_item(tmp_path, "ZZZZ", {"data_source": "yahoo"}, unknown)
    assert not set(headings(article.html)) & set(DEPTH_HEADINGS)
    assert all(report["depth"][k] is None for k in ("profile", "valuation", "dividends",
                                                    "analysts"))


def test_every_depth_figure_the_llm_may_quote_is_in_the_facts(tmp_path, recorded_yahoo):
    history = recorded_yahoo["price_providers"]["yahoo"].history("GOOG")
    depth = gather_depth(history, recorded_yahoo["price_providers"]["yahoo"],
                         RecordedCompanyData(FIXTURES), "KVUE", 10)
    facts = build_facts(history, analyse(history), forecast(history.frame["Close"]), IMAGES,
                        depth=depth)
    b = facts["benchmark"]
    honest = (f"Alphabet is worth $3.66 trillion and trades at 28.4 times earnings (24.1 "
              f"forward, price/sales 9.3). It yields 0.28% with a 7.7% payout, paid $0.83 a "
              f"share in 2025 and $0.21 on 2025-12-08. Analysts' mean target is $335.50 "
              f"(from $255.00 to $400.00), {abs(facts['analysts']['upside']) * 100:.1f}% "
              f"from the close. Since {b['start']} it returned "
              f"{abs(b['stock_return']) * 100:.1f}% against "
              f"{abs(b['benchmark_return']) * 100:.1f}% for KVUE, "
              f"{abs(b['relative_points']):.1f} percentage points apart, beta "
              f"{b['beta']:.2f}, correlation {b['correlation']:.2f}; 187,103 employees.")
    assert unsupported_figures(honest, facts) == []
    invented = "Alphabet trades at 31.2 times earnings and yields 1.4%, target $350.00."
    assert unsupported_figures(invented, facts) == ["31.2", "1.4%", "$350.00"]


def _write_csv(path: Path, closes: np.ndarray, dates: pd.DatetimeIndex) -> None:
    rows = [f"{d.date()},{c:.4f}" for d, c in zip(dates, closes, strict=True)]
    path.write_text("\n".join(["Date,Close", *rows]))


def test_csv_folder_with_a_benchmark_file_compares(tmp_path, recorded):
    """No benchmark is among the real files, so SPY.csv here is synthetic, written on GOOG's
    real dates; GOOG itself is the real recorded file."""
    folder = tmp_path / "prices"
    folder.mkdir()
    shutil.copy(PRICES / "GOOG.csv", folder / "GOOG.csv")
    dates = recorded.history("GOOG").frame.index
    rng = np.random.default_rng(11)
    _write_csv(folder / "SPY.csv", 400 * np.cumprod(1 + rng.normal(0.0003, 0.009, len(dates))),
               dates)
    options = {"data_source": "csv"}
    article, report = run_item(tmp_path, "GOOG", options,
                               settings={"TICKZEN_CSV_DIR": str(folder)})
    bench = report["depth"]["benchmark"]
    assert bench["symbol"] == "SPY" and bench["source"] == "csv" and bench["days"] == 504
    assert report["depth"]["profile"] is None                 # price files carry no profile
    text = plain_text(article.html)
    assert "SPY" in text and f"{bench['beta']:.2f}" in text
    assert not {"Company and valuation", "Dividends", "Analyst price targets"} & set(
        headings(article.html))
    (folder / "SPY.csv").unlink()
    _, report = run_item(tmp_path / "again", "GOOG", options,
                         settings={"TICKZEN_CSV_DIR": str(folder)})
    assert report["depth"]["benchmark"] is None
    assert "no SPY prices in the csv data" in report["depth_notes"][0]


def test_demo_data_synthesises_every_section_labelled(tmp_path):
    article, report = run_item(tmp_path, "MSFT", {"data_source": "demo", "benchmark": "^GSPC"})
    text = plain_text(article.html)
    depth = report["depth"]
    assert depth["company_source"] == "demo" and depth["benchmark"]["source"] == "demo"
    assert depth["benchmark"]["symbol"] == "^GSPC" and "^GSPC" in text
    assert re.search(r"(Company data:|Profile, valuation and targets:|Company figures come "
                     r"from) demo data \(synthetic\)\.", text)
    assert "These company figures are synthetic demo data." in text or \
        "Like the prices, these figures are demo data." in text or \
        "All of it is made-up demo data." in text
    assert "synthetic" in text and "n/a" not in text


@pytest.mark.parametrize("benchmark", ["bad ticker!", "", "^", 5, "WAYTOOLONGINDEX"])
def test_a_bad_benchmark_is_refused_with_400(client, auth, benchmark):
    auth.signed_in()
    site = client.post("/api/sites", json={"name": "A", "kind": "local"},
                       headers=auth.headers()).get_json()["id"]
    response = client.post("/api/runs", headers=auth.headers(), json={
        "kind": "stock", "site_id": site, "items": ["AAPL"],
        "options": {"data_source": "demo", "benchmark": benchmark}})
    assert response.status_code == 400
    assert "benchmark" in json.dumps(response.get_json())


def test_a_good_benchmark_is_taken_as_the_ticker_rule_writes_it(client, auth):
    auth.signed_in()
    site = client.post("/api/sites", json={"name": "A", "kind": "local"},
                       headers=auth.headers()).get_json()["id"]
    response = client.post("/api/runs", headers=auth.headers(), json={
        "kind": "stock", "site_id": site, "items": ["AAPL"],
        "options": {"data_source": "demo", "benchmark": "^GSPC"}})
    assert response.status_code == 202, response.get_json()
