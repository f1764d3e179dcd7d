"""The yahoo data source at campaign scale: cached per trading day, then throttled.

One ``YahooPrices`` belongs to one stock automation (every item of every run that automation
makes shares its request window and its cache): a cache hit downloads nothing and takes no
request slot; a miss waits for a slot in the window, then downloads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automation_scripts.stock.market_data import PriceProvider, YahooProvider
from automation_scripts.stock.price_cache import CachedProvider, PriceCache
from automation_scripts.stock.rate_limit import OnWait, RequestWindow, ThrottledProvider

DEFAULT_PER_MINUTE = 30
LEDGER = Path("cache") / "yahoo-requests.json"      # under the instance folder


def wait_message(seconds: float, reason: str) -> str:
    """What the run page says while an item waits for Yahoo."""
    shown = max(1, math.ceil(seconds))
    if reason == "backoff":
        return f"Yahoo Finance is rate limiting: waiting {shown} s before asking again"
    return f"Waiting {shown} s for Yahoo's rate limit"


@dataclass
class YahooPrices:
    """The request window and the cache (None: no cache) of one automation's yahoo prices;
    ``make_yahoo`` builds the provider that really downloads (tests inject one)."""

    window: RequestWindow
    cache: PriceCache | None = None
    make_yahoo: Callable[[], PriceProvider] = field(default=YahooProvider)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> YahooPrices:
        """``TICKZEN_YAHOO_PER_MINUTE`` (30), ``TICKZEN_PRICE_CACHE_DIR`` (none: no cache);
        the window's ledger under ``INSTANCE_PATH`` so the generation processes share it."""
        per_minute = int(settings.get("TICKZEN_YAHOO_PER_MINUTE") or DEFAULT_PER_MINUTE)
        instance = settings.get("INSTANCE_PATH")
        window = RequestWindow(per_minute, ledger=Path(instance) / LEDGER if instance else None)
        cache_dir = settings.get("TICKZEN_PRICE_CACHE_DIR")
        return cls(window, PriceCache(cache_dir) if cache_dir else None)

    def provider(self, on_wait: OnWait | None = None) -> PriceProvider:
        """A provider for one item: ``on_wait(seconds, reason)`` hears of every wait."""
        throttled = ThrottledProvider(self.make_yahoo(), self.window, on_wait=on_wait)
        return CachedProvider(throttled, self.cache) if self.cache is not None else throttled
