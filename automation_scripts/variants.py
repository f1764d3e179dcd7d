"""Seeded wording choices: one article's phrasing, title and section order.

Every choice is a stable hash of the article's seed and the choice's name, so the same seed
always reads the same (a retry writes the same words) while different seeds read differently.
The automations seed with the item *and the site* (``variant_seed``): one ticker published to
two sites gets two texts, which search engines would otherwise treat as duplicate content.

Templates compose sentences from several independent choices (an opener, a verb, a closing
clause), so two articles share a whole sentence only when every part of it matches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def variant_seed(item: str, site_id: str = "") -> str:
    """The seed of one item's article on one site (the item alone when no site is known)."""
    return f"{item}|{site_id}" if site_id else item


def variant_index(seed: str, section: str, count: int) -> int:
    """Which of ``count`` phrasings ``seed`` uses in ``section`` (stable across processes)."""
    digest = hashlib.sha256(f"{seed}|{section}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % max(1, count)


class Variants:
    """The choices of one article. Templates call it as ``v``:

    - ``v.pick("name", [a, b, c])``: one option;
    - ``v(name, n)``: an index below ``n`` (the older ``variant(name, n)`` form);
    - ``v.order("name", [...])``: the items in a seeded order;
    - ``v.chance("name", 0.5)``: a seeded yes/no.
    """

    def __init__(self, seed: str) -> None:
        self.seed = seed

    def __call__(self, section: str, count: int) -> int:
        return variant_index(self.seed, section, count)

    def pick(self, section: str, options: Sequence[T]) -> T:
        if not options:
            raise ValueError(f"no options for {section!r}")
        return options[variant_index(self.seed, section, len(options))]

    def order(self, section: str, items: Sequence[T]) -> list[T]:
        """A seeded permutation of ``items`` (sorted by a per-item hash)."""
        return sorted(items, key=lambda item: hashlib.sha256(
            f"{self.seed}|{section}|{item!r}".encode()).digest())

    def chance(self, section: str, probability: float = 0.5) -> bool:
        return variant_index(self.seed, section, 10_000) < probability * 10_000

    def sub(self, name: str) -> Variants:
        """Independent choices for a repeated part (a list row, a question)."""
        return Variants(f"{self.seed}/{name}")

    def __repr__(self) -> str:
        return f"Variants({self.seed!r})"


def choices_of(facts: dict[str, Any], kind: str) -> Variants:
    """The Variants of an article from its facts' ``seed`` (else ticker, title, kind)."""
    seed = str(facts.get("seed") or facts.get("ticker") or facts.get("title") or kind)
    return Variants(seed)
