"""Plain-dict views of runs: one shape for the JSON API, the socket snapshot and the pages."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from storage.base import ITEM_TODO, Item, Run


def item_view(item: Item) -> dict[str, Any]:
    """What a client may see of an item (never its raw input or workdir paths)."""
    return {"position": item.position, "key": item.key, "label": item.label or item.key,
            "status": item.status, "post_id": item.post_id, "post_url": item.post_url,
            "error": item.error, "attempts": item.attempts,
            "title": (item.result or {}).get("title"), "report_url": report_url(item)}


def report_url(item: Item) -> str | None:
    """The portal's report page of a finished item whose automation left a ``report.json``
    (stock items do), so the run view and the history can link to it."""
    files = (item.result or {}).get("files") or []
    if item.status in ("published", "skipped") and "report.json" in files:
        return f"/runs/{item.run_id}/items/{item.position}/report"
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_view(run: Run, items: Iterable[Item] | None = None) -> dict[str, Any]:
    """The run as the API answers it (``run_id`` and ``id`` are the same value)."""
    view: dict[str, Any] = {
        "run_id": run.id, "id": run.id, "kind": run.kind, "site_id": run.site_id,
        "status": run.status, "options": run.options, "total": run.total,
        "counts": dict(run.counts), "percent": run.percent, "last_seq": run.last_seq,
        "error": run.error, "remaining_count": remaining_count(run),
        "created_at": _iso(run.created_at), "updated_at": _iso(run.updated_at),
    }
    if items is not None:
        view["items"] = [item_view(i) for i in items]
    return view


def snapshot_view(run: Run, items: Iterable[Item]) -> dict[str, Any]:
    """One entry of ``automation_snapshot.runs`` (DESIGN.md's socket contract)."""
    return {"run_id": run.id, "kind": run.kind, "status": run.status, "percent": run.percent,
            "counts": dict(run.counts), "total": run.total, "error": run.error,
            "items": [{k: v for k, v in item_view(i).items()
                       if k in ("key", "label", "status", "post_id", "post_url", "error")
                       or (k == "report_url" and v)}       # only where there is a report
                      for i in items],
            "last_seq": run.last_seq}


def remaining_count(run: Run) -> int:
    """Items a resume would still work on: pending, processing, publishing (failed items wait
    for a retry)."""
    counts = run.counts or {}
    return max(0, sum(int(counts.get(state, 0)) for state in ITEM_TODO))
