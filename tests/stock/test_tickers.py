"""Ticker rules: the stock, earnings and run-form variants, each with its own spelling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from automation_scripts.tickers import EARNINGS, FORM, FORM_PATTERN, RULES, STOCK

ROOT = Path(__file__).resolve().parents[2]


# -- stock: Yahoo spelling (indices with ^, share classes with -) -------------------------------

@pytest.mark.parametrize("raw,expected", [("aapl", "AAPL"), (" msft ", "MSFT"),
                                          ("BRK.B", "BRK-B"), ("brk-b", "BRK-B"),
                                          ("^GSPC", "^GSPC"), ("7203", "7203")])
def test_tickers_are_normalised(raw, expected):
    assert STOCK.normalise(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "TOOLONGTICKER", "AA PL", "<script>", "A$", "-",
                                 "^", ".A", "A^B", 42, None])
def test_bad_tickers_are_refused_with_their_name(raw):
    with pytest.raises(ValueError) as info:
        STOCK.normalise(raw)
    if isinstance(raw, str) and raw.strip():
        assert raw.strip()[:10] in str(info.value)


def test_stock_rule_messages():
    with pytest.raises(ValueError, match=r"^an empty ticker was given$"):
        STOCK.normalise("  ")
    with pytest.raises(ValueError, match=r"expected text"):
        STOCK.normalise(7)
    with pytest.raises(ValueError, match=r"^'a\$' is not a valid ticker: use 1-10 letters"):
        STOCK.normalise("a$")
    with pytest.raises(ValueError, match=r"^'SPY\^' is not a valid ticker$"):
        STOCK.normalise("SPY^")


# -- earnings: calendar spelling (the dot stays, no indices) -----------------------------------

@pytest.mark.parametrize("raw,expected", [("aapl", "AAPL"), (" txrh ", "TXRH"),
                                          ("brk.b", "BRK.B"), ("BF-B", "BF-B"),
                                          ("RDS.A", "RDS.A")])
def test_earnings_tickers_keep_the_dot(raw, expected):
    assert EARNINGS.normalise(raw) == expected


@pytest.mark.parametrize("raw,message", [
    ("$$$", "'$$$' is not a valid ticker symbol"),
    ("^GSPC", "'^GSPC' is not a valid ticker symbol"),
    ("7203", "'7203' is not a valid ticker symbol"),
    ("ABCDEFG", "'ABCDEFG' is not a valid ticker symbol"),
    ("", "a ticker must be a non-empty string"),
    (None, "a ticker must be a non-empty string"),
    (7, "a ticker must be a non-empty string"),
])
def test_earnings_rule_refuses(raw, message):
    with pytest.raises(ValueError) as info:
        EARNINGS.normalise(raw)
    assert str(info.value) == message


# -- form: the browser's first look -------------------------------------------------------------

@pytest.mark.parametrize("raw,accepted", [("aapl", True), ("^gspc", True), ("BRK.B", True),
                                          ("7203", False), ("Ticker", True),
                                          ("Apple Inc", False), ("", False), (None, False),
                                          ("ABCDEFGHIJK", False), ("^ABCDEFGHIJ", True)])
def test_form_rule(raw, accepted):
    assert FORM.accepts(raw) is accepted
    if accepted:
        assert FORM.normalise(raw) == raw.upper()


def test_form_rule_is_the_run_forms_expression():
    script = (ROOT / "static" / "js" / "run_form.js").read_text()
    match = re.search(r"var TICKER_RE = /(.+)/;", script)
    assert match and match.group(1) == FORM_PATTERN.pattern


def test_the_variants_differ_where_they_should():
    assert (STOCK.normalise("brk.b"), EARNINGS.normalise("brk.b")) == ("BRK-B", "BRK.B")
    assert STOCK.accepts("^GSPC") and not EARNINGS.accepts("^GSPC")
    assert sorted(RULES) == ["earnings", "form", "stock"]
    assert all(RULES[name].name == name for name in RULES)
