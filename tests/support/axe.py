"""axe-core in a Playwright page: the WCAG 2.0/2.1 A and AA rules, reported as a readable list.

axe is vendored under tests/support/vendor/axe-core (see its VERSION) and never served by the
portal. It goes into the page through ``page.evaluate``: the DevTools protocol runs it outside
the page's Content-Security-Policy, so the page is audited exactly as users get it, under the
policy (which decides, among other things, which styles apply and so which colours axe
measures). ``bypass_csp`` is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

_RUN = """tags => axe.run(document, {
    runOnly: {type: 'tag', values: tags},
    resultTypes: ['violations'],
}).then(r => r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html,
                              summary: n.failureSummary || ''})),
})))"""


@dataclass(frozen=True)
class Violation:
    """One failing axe rule on one page, with the elements that fail it."""

    page: str
    rule: str
    impact: str
    help: str
    nodes: tuple[tuple[str, str, str], ...]        # (selector, html, why)

    def describe(self) -> str:
        lines = [f"{self.page}: {self.rule} ({self.impact}): {self.help}"]
        for target, html, summary in self.nodes[:8]:
            why = " ".join(summary.split())[:300]
            lines.append(f"    {target}  {html[:160]}\n      {why}")
        if len(self.nodes) > 8:
            lines.append(f"    ... and {len(self.nodes) - 8} more")
        return "\n".join(lines)


@cache
def _axe_source() -> str:
    """axe's source, read once per test process."""
    return AXE_JS.read_text(encoding="utf-8")


def audit(page: Any, label: str | None = None) -> list[Violation]:
    """Run axe's WCAG 2 A/AA rules on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    found = page.evaluate(_RUN, list(WCAG_TAGS))
    name = label or page.url
    return [Violation(page=name, rule=v["id"], impact=v["impact"] or "", help=v["help"],
                      nodes=tuple((n["target"], n["html"], n["summary"]) for n in v["nodes"]))
            for v in found]


def report(violations: list[Violation]) -> str:
    """Every violation, one block per page and rule (what an assertion message shows)."""
    return "\n".join(v.describe() for v in violations)
