"""Fixtures for the stock automation tests: the real recorded prices, when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from automation_scripts.stock.market_data import RecordedProvider

PRICES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "prices"


@pytest.fixture(scope="session")
def recorded() -> RecordedProvider:
    """Yahoo answers recorded under ../shared/data/prices (GOOG, KVUE)."""
    if not (PRICES / "GOOG.csv").is_file():
        # ../shared/data is never part of a clone (its README): skip, also under CI.
        pytest.skip(f"real price data absent ({PRICES.resolve()}): a fresh clone has no "
                    f"../shared/data")
    return RecordedProvider(PRICES)
