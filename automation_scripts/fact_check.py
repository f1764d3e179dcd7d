"""Checks an LLM's prose against the facts it was given: every number must be a figure there.

A number in the prose (money, a percentage, a plain number, a date) passes when some value in
the facts equals it at the precision the prose shows it: "$191.70" needs a fact within half a
cent of 191.70, "5%" one that rounds to 5 (as a ratio, 0.05, or already in percent), "$1.2
billion" one that rounds to 1.2e9 at a tenth of a billion. Signs are not compared ("fell 5%"
quotes -0.05), nor are number words. Dates pass when they are a date in the facts; a year
alone when some date in the facts has it. Figures that are pre-formatted strings in the facts
("$1.23", "+5.2%") count as the values they show.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9,
           "bn": 1e9, "b": 1e9, "trillion": 1e12, "tn": 1e12, "t": 1e12}
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_LONG_DATE = re.compile(r"\b(" + "|".join(m[:3] for m in _MONTHS) + r")[a-z]*\.?\s+(\d{1,2})"
                        r"(?:st|nd|rd|th)?,?\s+(\d{4})\b", re.I)
_NUMBER = re.compile(
    r"(?<![\w.])(?P<neg>[-−+])?(?P<cur>\$)?\s?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<pct>\s?(?:%|percent\b|per cent\b))?"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|mn|bn|tn|[kmbt])\b)?", re.I)


@dataclass(frozen=True)
class Figure:
    """A number as the prose shows it."""

    text: str
    value: float
    decimals: int
    percent: bool = False
    money: bool = False
    scale: float = 1.0


def figures_in(text: str) -> tuple[list[Figure], list[str]]:
    """The numbers of ``text`` and the dates (as ISO strings) found in it."""
    dates: list[str] = []

    def take_date(match: re.Match[str], iso: str) -> str:
        dates.append(iso)
        return " " * len(match.group(0))

    def long_date(m: re.Match[str]) -> str:
        month = _MONTHS.index(next(x for x in _MONTHS if x.startswith(m.group(1).lower()))) + 1
        try:
            iso = date(int(m.group(3)), month, int(m.group(2))).isoformat()
        except ValueError:
            iso = f"{m.group(3)}-{month:02d}-{int(m.group(2)):02d}"
        return take_date(m, iso)

    text = _ISO_DATE.sub(lambda m: take_date(m, m.group(0)), text)
    text = _LONG_DATE.sub(long_date, text)
    found = []
    for m in _NUMBER.finditer(text):
        raw = m.group("num").replace(",", "")
        decimals = len(raw.split(".")[1]) if "." in raw else 0
        scale = _SCALES.get((m.group("scale") or "").lower(), 1.0)
        found.append(Figure(m.group(0).strip(), float(raw), decimals,
                            percent=bool(m.group("pct")), money=bool(m.group("cur")),
                            scale=scale))
    return found, dates


def _values(facts: Any) -> Iterable[Any]:
    if isinstance(facts, Mapping):
        for value in facts.values():
            yield from _values(value)
    elif isinstance(facts, (list, tuple, set)):
        for value in facts:
            yield from _values(value)
    else:
        yield facts


@dataclass
class FactIndex:
    """The figures of one article's facts, ready for look-ups."""

    numbers: list[float]
    dates: set[str]
    years: set[int]

    @classmethod
    def of(cls, facts: Mapping[str, Any]) -> FactIndex:
        numbers: list[float] = []
        dates: set[str] = set()
        for value in _values(facts):
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, (int, float)):
                if math.isfinite(float(value)):
                    numbers.append(float(value))
            elif isinstance(value, (date, datetime)):
                dates.add(value.isoformat()[:10])
            elif isinstance(value, str):
                shown, in_text = figures_in(value)
                dates.update(in_text)
                numbers.extend(f.value * f.scale for f in shown)
        years = {int(d[:4]) for d in dates if d[:4].isdigit()}
        return cls(numbers, dates, years)

    def matches(self, figure: Figure) -> bool:
        tolerance = 0.5 * 10 ** -figure.decimals + 1e-9
        target = figure.value
        for value in self.numbers:
            candidates = [value / figure.scale]
            if figure.percent:
                candidates.append(value * 100)       # a ratio (0.052) shown as 5.2%
            for candidate in candidates:
                if abs(abs(candidate) - target) <= tolerance:
                    return True
        year_alone = figure.decimals == 0 and figure.scale == 1.0 and not figure.percent \
            and not figure.money
        return year_alone and int(target) in self.years


def unsupported_figures(text: str, facts: Mapping[str, Any],
                        index: FactIndex | None = None) -> list[str]:
    """The numbers and dates of ``text`` that no figure in ``facts`` supports (each once, in
    the order they appear)."""
    index = index or FactIndex.of(facts)
    shown, dates = figures_in(text)
    wrong = [d for d in dates if d not in index.dates]
    wrong += [f.text for f in shown if not index.matches(f)]
    return list(dict.fromkeys(wrong))
