"""Runs: submit, list, read, steer (portal/automation.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from portal.api_models.common import ID, LIMIT, OFFSET, Model, Operation, Param, ops

PostId = str | int | None


class RunRequest(Model):
    kind: str = Field(description="stock, earnings, sports (or a configured extra kind).",
                      min_length=1, max_length=50)
    site_id: str = Field(min_length=1, max_length=200)
    items: list[Any] = Field(description="Tickers, or story objects for sports; at most "
                                         "TICKZEN_MAX_ITEMS.", max_length=500)
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="data_source, status (draft|publish|future), "
                                                "mode, benchmark (stock: a ticker or index, "
                                                "default SPY) ... as the kind takes them.")


class RunAccepted(Model):
    run_id: str
    status: str
    notes: list[Any] = Field(default_factory=list,
                             description="What was changed, e.g. duplicates removed.")


class RunItem(Model):
    position: int
    key: str
    label: str
    status: Literal["pending", "processing", "publishing", "published", "skipped", "failed"]
    post_id: PostId = None
    post_url: str | None = None
    error: str | None = None
    attempts: int
    title: str | None = None
    report_url: str | None = None
    writer: str | None = Field(None, description='Who wrote it: "template" or "llm:<model>".')
    writer_note: str = Field("", description="Why the template wrote it when an LLM was asked.")


class Run(Model):
    run_id: str
    id: str
    kind: str
    site_id: str
    status: Literal["queued", "running", "pausing", "paused", "completed", "cancelled",
                    "failed", "interrupted"]
    options: dict[str, Any]
    total: int
    counts: dict[str, int]
    percent: int = Field(ge=0, le=100)
    last_seq: int
    error: str | None = None
    remaining_count: int
    campaign_id: str | None = None
    campaign_name: str | None = Field(None, description="The name of the campaign that "
                                      "started it (null when none, or it was deleted).")
    created_at: str | None = None
    updated_at: str | None = None
    events_pruned_at: str | None = Field(None, description="When retention removed the run's "
                                         "event log (replay then answers with the snapshot).")
    files_pruned_at: str | None = Field(None, description="When retention removed its report "
                                        "files (charts); the items and posts stay.")
    events_pruned_seq: int = Field(0, description="Retention removed the run's events up to "
                                   "this seq (0: none); a retry's events follow it.")
    items: list[RunItem] | None = None


class RunList(Model):
    runs: list[Run]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on "
                                                "the last one.")


RUN_LIST_QUERY = (
    LIMIT, OFFSET,
    Param("cursor", {"type": "string", "maxLength": 2000},
          "The `next_cursor` of the previous page (keyset paging: as fast at any depth); a "
          "cursor this API did not return is a 400."),
    Param("kind", {"type": "string", "maxLength": 50}),
    Param("status", {"type": "string", "enum": ["queued", "running", "pausing", "paused",
                                                "completed", "cancelled", "failed",
                                                "interrupted"]}),
    Param("site_id", {"type": "string", "maxLength": 100}),
    Param("campaign_id", {"type": "string", "maxLength": 100}),
    Param("from", {"type": "string", "format": "date"}, "First UTC day (YYYY-MM-DD)."),
    Param("to", {"type": "string", "format": "date"}, "Last UTC day, included."),
)


STEER = {"type": "string", "enum": ["pause", "resume", "cancel", "retry"]}

OPERATIONS = ops(
    ("automation.create_run", "POST", Operation(
        "Start a run", "runs", {202: RunAccepted}, body=RunRequest, errors=(400, 401, 404, 409,
                                                                             429),
        description="Everything is validated before anything is stored; a bad item is 400 "
                    "with one detail per bad item.")),
    ("automation.list_runs", "GET", Operation(
        "List your runs, newest first", "runs", {200: RunList}, query=RUN_LIST_QUERY)),
    ("automation.get_run", "GET", Operation(
        "A run with its items", "runs", {200: Run}, path={"run_id": ID})),
    ("automation.steer_run", "POST", Operation(
        "Pause, resume, cancel or retry a run", "runs", {200: Run},
        path={"run_id": ID, "action": STEER}, errors=(400, 401, 404, 409, 429),
        description="409 when the run's state does not allow it; a pause answers `pausing` "
                    "until the worker has stopped.")),
)
