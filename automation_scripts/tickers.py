"""Ticker rules: what counts as a ticker and how it is written, one named rule per use.

The uses differ on purpose, so each rule has a name instead of one rule with flags:

- ``STOCK``: prices come from Yahoo Finance, which writes share classes with a dash and
  indices with a caret: ``brk.b`` -> ``BRK-B``; ``^GSPC`` stays; digits may lead (``7203``).
- ``EARNINGS``: earnings calendars (Finnhub, calendar files) keep the dot: ``brk.b`` ->
  ``BRK.B``; no indices (they report no earnings).
- ``FORM``: the run form's first look at typed or uploaded values (upper-cased, nothing
  else), the same expression as ``static/js/run_form.js``, so the browser and the upload
  preview find the same column; the automation's rule then decides.

``rule.normalise(raw)`` returns the ticker as the automation keys it, or raises ValueError
with a message naming the bad value; ``rule.accepts(raw)`` says whether it would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STOCK_PATTERN = re.compile(r"^[A-Z0-9.\-^]{1,10}$")
EARNINGS_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,5}([.\-][A-Z0-9]{1,3})?$")
FORM_PATTERN = re.compile(r"^\^?[A-Z][A-Z0-9.\-]{0,9}$")     # = TICKER_RE in run_form.js


@dataclass(frozen=True)
class TickerRule:
    """One named way of reading tickers."""

    name: str
    normalise: Callable[[Any], str]

    def accepts(self, raw: Any) -> bool:
        try:
            self.normalise(raw)
        except ValueError:
            return False
        return True


def _stock(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"{raw!r} is not a ticker (expected text)")
    text = raw.strip().upper()
    shown = raw.strip()[:20] or "''"
    if not text:
        raise ValueError("an empty ticker was given")
    if not STOCK_PATTERN.match(text) or not re.search(r"[A-Z0-9]", text):
        raise ValueError(f"'{shown}' is not a valid ticker: use 1-10 letters, digits, "
                         f"'.', '-' or '^'")
    if text[0] in ".-" or text[-1] in ".-^" or "^" in text[1:]:
        raise ValueError(f"'{shown}' is not a valid ticker")
    return text.replace(".", "-")


def _earnings(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("a ticker must be a non-empty string")
    ticker = raw.strip().upper()
    if not EARNINGS_PATTERN.match(ticker):
        raise ValueError(f"{raw.strip()[:20]!r} is not a valid ticker symbol")
    return ticker


def _form(raw: Any) -> str:
    text = raw.upper() if isinstance(raw, str) else ""
    if not text or not FORM_PATTERN.match(text):
        raise ValueError(f"{str(raw)[:20]!r} does not look like a ticker")
    return text


STOCK = TickerRule("stock", _stock)
EARNINGS = TickerRule("earnings", _earnings)
FORM = TickerRule("form", _form)
RULES: dict[str, TickerRule] = {rule.name: rule for rule in (STOCK, EARNINGS, FORM)}
