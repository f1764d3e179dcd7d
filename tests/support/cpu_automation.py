"""Test-only automation kind ``test_cpu``: the ``test`` kind (tests/support/test_automations.py,
same options: steps, delay, gate, record ...) declared CPU-bound, so the runner makes its
articles in the generation pool's worker processes, rebuilt there by ``create(settings)``.

The live server loads it through ``TICKZEN_EXTRA_AUTOMATIONS``; in-process tests put
``CpuTestAutomation()`` into the registry and give the manager ``generation_processes``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from automation_scripts.base import Article, ItemContext, PreparedItem
from tests.support.test_automations import TestAutomation


class CpuTestAutomation(TestAutomation):
    """``kind = "test_cpu"``; each item's workdir says which process makes it
    (``made_by.txt``, written before the item's steps)."""

    __test__ = False
    kind = "test_cpu"
    cpu_bound = True

    def process(self, item: PreparedItem, ctx: ItemContext) -> Article:
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        (ctx.workdir / "made_by.txt").write_text(str(os.getpid()))
        return super().process(item, ctx)


def create(settings: Mapping[str, Any]) -> list[CpuTestAutomation]:
    """The hook ``TICKZEN_EXTRA_AUTOMATIONS`` (and a generation process) calls."""
    return [CpuTestAutomation()]
