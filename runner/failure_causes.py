"""Why items failed, in a few causes a user can act on: the site refused the login, the daily
limit was used up, the network or a service was down or slow, the data or its provider had
nothing usable, or something else.

Items keep their error as the text the user read (``runner.worker.readable``), not its type,
so the cause is read from that text. The phrases are the ones the publishers, providers and
the runner write (automation_scripts/publishing, the market data, earnings and feed
providers); the first cause whose phrase occurs wins, in ``CAUSES`` order, so "Yahoo Finance
is unreachable" is a network failure although Yahoo is a data provider.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    key: str
    title: str
    hint: str                           # what the user can do about it


CAUSES = (
    Cause("daily_limit", "Daily limit", "Raise the site's daily limit or publish tomorrow."),
    Cause("auth", "Sign-in refused",
          "Check the site's username and application password (or the provider's API key)."),
    Cause("network", "Network or timeout",
          "The site or a service was down, slow or busy; retrying usually works."),
    Cause("data", "Data or provider",
          "The data source had nothing usable for the item; check the ticker or the source."),
    Cause("other", "Other", "See the item's error on its run page."),
)
CAUSE_KEYS = tuple(c.key for c in CAUSES)

_PHRASES: dict[str, tuple[str, ...]] = {
    "daily_limit": (r"daily limit", r"daily_limit", r"limit of \d+ posts"),
    "auth": (r"username", r"application password", r"did not accept the login",
             r"requires a login", r"not authenticated", r"credentials", r"api key",
             r"unauthori[sz]ed", r"\b401\b", r"\b403\b", r"forbidden", r"may not do that",
             r"stored secret", r"TICKZEN_SECRETS_KEY"),
    "network": (r"time(d)?[ -]?out", r"did not answer", r"unreachable", r"connection",
                r"cannot be resolved", r"\bdns\b", r"\btls\b", r"\bssl\b", r"certificate",
                r"handshake", r"unavailable right now", r"\b429\b", r"\bHTTP 5\d\d\b",
                r"\(5\d\d\b", r"rate limit", r"too many requests", r"network",
                r"took too long", r"broke off", r"dropped", r"reset by peer",
                r"temporarily", r"^(TimeoutError|ConnectionError|OSError)\b"),
    "data": (r"\bno (usable )?pric", r"price (data|file)", r"prices\b", r"trading days",
             r"quarter", r"calendar", r"fundamentals", r"provider", r"data source",
             r"yahoo", r"finnhub", r"\bcsv\b", r"forecast", r"not available",
             r"no usable", r"\bfeed\b", r"rss|atom", r"not valid json", r"earnings",
             r"upload"),
}
_PATTERNS = {key: re.compile("|".join(phrases), re.IGNORECASE)
             for key, phrases in _PHRASES.items()}


def cause_of(error: str | None) -> str:
    """The key of the first cause (in ``CAUSES`` order) whose phrases the error text holds;
    ``other`` when none does (or there is no text)."""
    text = (error or "").strip()
    for key in CAUSE_KEYS[:-1]:
        if text and _PATTERNS[key].search(text):
            return key
    return "other"


def count_causes(errors: Iterable[tuple[str | None, int]]) -> dict[str, int]:
    """(error text, how many) -> how many per cause, every cause present, in ``CAUSES``
    order."""
    counts = dict.fromkeys(CAUSE_KEYS, 0)
    for error, n in errors:
        counts[cause_of(error)] += n
    return counts
