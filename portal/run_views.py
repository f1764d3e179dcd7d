"""The one view of a run. ``RunView`` holds what a client may see of a run and its items; the
JSON API answer (``api``), the ``automation_snapshot`` entry (``snapshot``) and the run page's
starting state are all derived from it, so the three never drift apart.

Report links are built with ``url_for`` here, in the portal, where the routes are known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import g, has_app_context, url_for

from portal.services import services
from runner.views import remaining_count
from storage.base import ITEM_DONE, Item, Run
from storage.housekeeping import item_files_pruned, pruned_seq

ReportUrl = Callable[[Item], "str | None"]

# What an item of the socket snapshot carries (plus ``report_url`` where there is a report,
# and ``writer``/``writer_note`` once it is written).
SNAPSHOT_ITEM_KEYS = ("key", "label", "status", "post_id", "post_url", "error")


def has_report(item: Item) -> bool:
    """Whether a finished item left a report page: the runner records ``result["report"]``;
    an item that only lists ``report.json`` among its ``files`` has one too."""
    result = item.result or {}
    return item.status in ITEM_DONE and bool(
        result.get("report") or "report.json" in (result.get("files") or []))


def report_url(item: Item) -> str | None:
    """The portal's report page of ``item``, or None when it has no report."""
    if not has_report(item):
        return None
    return url_for("reports.report", run_id=item.run_id, position=item.position)


@dataclass(frozen=True)
class ItemView:
    """What a client may see of an item (never its raw input or workdir paths)."""

    position: int
    key: str
    label: str
    status: str
    post_id: Any
    post_url: str | None
    error: str | None
    attempts: int
    title: str | None
    report_url: str | None
    writer: str | None = None           # "template" | "llm:<model>", once published
    writer_note: str = ""               # why the template wrote it when the LLM was asked

    @classmethod
    def of(cls, item: Item, report: ReportUrl = report_url) -> ItemView:
        return cls(position=item.position, key=item.key, label=item.label or item.key,
                   status=item.status, post_id=item.post_id, post_url=item.post_url,
                   error=item.error, attempts=item.attempts,
                   title=(item.result or {}).get("title"), report_url=report(item),
                   writer=(item.result or {}).get("writer"),
                   writer_note=str((item.result or {}).get("writer_note") or ""))

    def api(self) -> dict[str, Any]:
        return {"position": self.position, "key": self.key, "label": self.label,
                "status": self.status, "post_id": self.post_id, "post_url": self.post_url,
                "error": self.error, "attempts": self.attempts, "title": self.title,
                "report_url": self.report_url, "writer": self.writer,
                "writer_note": self.writer_note}

    def snapshot(self) -> dict[str, Any]:
        entry = {key: getattr(self, key) for key in SNAPSHOT_ITEM_KEYS}
        if self.report_url:
            entry["report_url"] = self.report_url
        if self.writer:                 # who wrote a published item, for its run card
            entry["writer"], entry["writer_note"] = self.writer, self.writer_note
        return entry


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _unless_pruned(run: Run, report: ReportUrl) -> ReportUrl:
    """``report`` for the items a retry redid after retention removed the run's files; None
    for the others, whose files are gone."""
    def url(item: Item) -> str | None:
        return None if item_files_pruned(run, item) else report(item)

    return url


def campaign_name(run: Run) -> str | None:
    """The name of the campaign whose fire started ``run``: None for other runs and when the
    campaign was deleted. Looked up once per campaign per request (or socket event)."""
    if not run.campaign_id or not has_app_context():
        return None
    names = g.setdefault("campaign_names", {})
    if run.campaign_id not in names:
        campaign = services().store.get_campaign(run.user_id, run.campaign_id)
        names[run.campaign_id] = campaign.name if campaign is not None else None
    return names[run.campaign_id]


@dataclass(frozen=True)
class RunView:
    """A run as its owner sees it, with its items when they were read."""

    run: Run
    items: tuple[ItemView, ...] | None = None
    campaign_name: str | None = None    # shown on the run's card (text only)

    @classmethod
    def of(cls, run: Run, items: Iterable[Item] | None = None,
           report: ReportUrl = report_url) -> RunView:
        if run.files_pruned_at is not None:        # retention removed the report files
            report = _unless_pruned(run, report)
        return cls(run, None if items is None else tuple(ItemView.of(i, report) for i in items),
                   campaign_name(run))

    def api(self) -> dict[str, Any]:
        """The run as the API answers it (``run_id`` and ``id`` are the same value); also the
        run page's starting state."""
        run = self.run
        view: dict[str, Any] = {
            "run_id": run.id, "id": run.id, "kind": run.kind, "site_id": run.site_id,
            "status": run.status, "options": run.options, "total": run.total,
            "counts": dict(run.counts), "percent": run.percent, "last_seq": run.last_seq,
            "error": run.error, "remaining_count": remaining_count(run),
            "campaign_id": run.campaign_id, "campaign_name": self.campaign_name,
            "created_at": _iso(run.created_at), "updated_at": _iso(run.updated_at),
            "events_pruned_at": _iso(run.events_pruned_at),
            "files_pruned_at": _iso(run.files_pruned_at),
            "events_pruned_seq": pruned_seq(run),
        }
        if self.items is not None:
            view["items"] = [i.api() for i in self.items]
        return view

    def snapshot(self) -> dict[str, Any]:
        """One entry of ``automation_snapshot.runs`` (DESIGN.md's socket contract)."""
        run = self.run
        entry = {"run_id": run.id, "kind": run.kind, "status": run.status,
                 "percent": run.percent, "counts": dict(run.counts), "total": run.total,
                 "error": run.error, "items": [i.snapshot() for i in self.items or ()],
                 "last_seq": run.last_seq}
        if run.campaign_id:
            entry["campaign_id"], entry["campaign_name"] = run.campaign_id, self.campaign_name
        if run.events_pruned_at is not None:
            entry["events_pruned_at"] = _iso(run.events_pruned_at)
        if pruned_seq(run):                  # no replay up to this seq: it is gone
            entry["events_pruned_seq"] = pruned_seq(run)
        return entry


def run_view(run: Run, items: Iterable[Item] | None = None) -> dict[str, Any]:
    """The API answer for ``run`` (with ``items`` when given)."""
    return RunView.of(run, items).api()


def snapshot_entries(runs: Iterable[tuple[Run, list[Item]]]) -> list[dict[str, Any]]:
    """``automation_snapshot.runs`` from the runner's (run, items) pairs."""
    return [RunView.of(run, items).snapshot() for run, items in runs]
