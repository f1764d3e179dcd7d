"""Different words per site, and fifty tickers on one site that do not read alike.

The measures are those of tests/articles/similarity.py: the Jaccard similarity of 5-word
shingles with the numbers masked, and the share of sentences two articles have in common.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest

from automation_scripts.stock.market_data import CsvProvider
from automation_scripts.writing import TemplateWriter
from tests.articles.conftest import stock_facts
from tests.articles.similarity import article_text, mask, sentence_overlap, shingle_jaccard

SITES = [uuid.UUID(int=0xA1).hex, uuid.UUID(int=0xB2).hex]
TICKERS_50 = ["AAPL", "MSFT", "GOOG", "AMZN", "META", "NVDA", "TSLA", "JPM", "V", "MA", "KO",
              "PEP", "XOM", "CVX", "WMT", "HD", "DIS", "NFLX", "INTC", "AMD", "CSCO", "ORCL",
              "IBM", "BA", "CAT", "GE", "MMM", "NKE", "MCD", "SBUX", "T", "VZ", "PFE", "MRK",
              "JNJ", "ABBV", "LLY", "UNH", "CVS", "BAC", "C", "WFC", "GS", "MS", "AXP", "PYPL",
              "ADBE", "CRM", "QCOM", "TXN"]
PRICES = Path(__file__).resolve().parents[3] / "shared" / "data" / "prices"


@pytest.fixture(scope="module")
def writer() -> TemplateWriter:
    return TemplateWriter()


def text_of(writer: TemplateWriter, facts: dict) -> str:
    written = writer.write("stock", facts)
    return written.title + "\n" + article_text(written.html)


def test_one_ticker_on_two_sites_reads_differently(writer):
    """20 tickers into 2 sites: every pair below 0.7 (one seed per ticker alone: 1.0)."""
    scores = {}
    for ticker in TICKERS_50[:20]:
        a, b = (mask(text_of(writer, stock_facts(ticker, site))) for site in SITES)
        scores[ticker] = shingle_jaccard(a, b)
    assert max(scores.values()) < 0.7, scores
    same = mask(text_of(writer, stock_facts("AAPL", SITES[0])))
    assert shingle_jaccard(same, mask(text_of(writer, stock_facts("AAPL", SITES[0])))) == 1.0


def test_titles_and_section_order_differ_per_site(writer):
    titles = {writer.write("stock", stock_facts("AAPL", f"site-{n}")).title for n in range(12)}
    assert len(titles) >= 6
    orders = set()
    for n in range(12):
        html = writer.write("stock", stock_facts("AAPL", f"site-{n}")).html
        marks = {name: html.find(text) for name, text in (
            ("forecast", "95% "), ("levels", "52"), ("faq", "<h3>"))}
        orders.add(tuple(sorted(marks, key=marks.get)))
    assert len(orders) >= 2


def test_fifty_tickers_on_one_site_share_few_sentences(writer):
    """Numbers and the ticker masked: below 30 % shared sentences for every pair."""
    texts = [mask(text_of(writer, stock_facts(t, SITES[0])), t) for t in TICKERS_50]
    overlaps = [sentence_overlap(a, b) for a, b in itertools.combinations(texts, 2)]
    assert len(set(texts)) == 50
    assert max(overlaps) < 0.30, max(overlaps)
    assert sum(overlaps) / len(overlaps) < 0.15


@pytest.mark.parametrize("ticker", ["GOOG", "KVUE"])
def test_real_prices_on_two_sites_read_differently(writer, ticker):
    history = CsvProvider(PRICES).history(ticker, years=10)
    a, b = (mask(text_of(writer, stock_facts(ticker, site, history))) for site in SITES)
    assert shingle_jaccard(a, b) < 0.7
