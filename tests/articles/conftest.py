"""Fixtures of the article tests: stock facts from the demo data source (offline, with its
synthetic company data and benchmark, so the measures cover the depth sections too) and the
real recorded prices in ../shared/data/prices."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from automation_scripts.stock.automation import build_facts
from automation_scripts.stock.company_data import DemoCompanyData, Depth, gather_depth
from automation_scripts.stock.forecast import forecast
from automation_scripts.stock.indicators import analyse
from automation_scripts.stock.market_data import DemoProvider, PriceHistory
from automation_scripts.variants import variant_seed

IMAGES = [{"filename": "x-momentum.png", "alt": "momentum", "role": "inline",
           "caption": "Momentum", "section": "momentum"},
          {"filename": "x-volume.png", "alt": "volume", "role": "inline", "caption": "Volume",
           "section": "volume"}]


@lru_cache(maxsize=128)
def demo_pipeline(ticker: str) -> tuple[PriceHistory, Any, Any]:
    history = DemoProvider().history(ticker, years=10)
    return history, analyse(history), forecast(history.frame["Close"])


def stock_facts(ticker: str, site_id: str = "", history: PriceHistory | None = None
                ) -> dict[str, Any]:
    """The stock facts of ``ticker`` as written for ``site_id``."""
    if history is None:
        history, a, fc = demo_pipeline(ticker)
        depth = gather_depth(history, DemoProvider(), DemoCompanyData(), "SPY", 10)
    else:
        a, fc, depth = analyse(history), forecast(history.frame["Close"]), Depth()
    return build_facts(history, a, fc, IMAGES, seed=variant_seed(ticker, site_id),
                       depth=depth)
