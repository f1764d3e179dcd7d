"""What the runner says of a run beyond its record. The views clients see (API answers, the
socket snapshot, pages) are built in the portal, portal/run_views.py."""

from __future__ import annotations

from storage.base import ITEM_TODO, Run


def remaining_count(run: Run) -> int:
    """Items a resume would still work on: pending, processing, publishing (failed items wait
    for a retry)."""
    counts = run.counts or {}
    return max(0, sum(int(counts.get(state, 0)) for state in ITEM_TODO))
