"""Where run pages get their choices, and the uploads (portal/sources.py, reports.py,
run_pages.py)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from portal.api_models.common import LIMIT, Model, Operation, Param, ops


class CalendarDay(Model):
    entries: list[Any]


class EarningsCalendar(Model):
    provider: str
    demo: bool
    start: str
    days: list[CalendarDay]
    total: int


class Feed(Model):
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=500)


class FeedsRequest(Model):
    feeds: list[Feed] = Field(max_length=50)


class Feeds(Model):
    feeds: list[Feed]
    custom: bool


class Stories(Model):
    stories: list[dict[str, Any]]
    fetched_at: str
    sources: list[dict[str, Any]]
    demo: bool = Field(description="The stories are synthetic demo stories (none of the feeds "
                                   "answered, or source=demo).")
    demo_reason: str | None = None
    label: str | None = Field(None, description='"demo stories" when they are.')


class PriceUpload(Model):
    upload_id: str
    tickers: list[str]
    rows: int
    problems: list[Any]


class TickerUpload(Model):
    column: Any = None
    tickers: list[str]
    preview: Any = None
    invalid: Any = None


FILE = {"type": "string", "contentMediaType": "application/octet-stream"}

OPERATIONS = ops(
    ("sources.earnings_calendar", "GET", Operation(
        "Coming report dates by day", "sources", {200: EarningsCalendar}, query=(
            Param("provider", {"type": "string", "enum": ["demo", "file", "yahoo", "finnhub"],
                               "default": "demo"}),
            Param("start", {"type": "string", "format": "date"}, "YYYY-MM-DD; default today."),
            Param("days", {"type": "integer", "minimum": 1, "maximum": 14, "default": 7})),
        errors=(400, 401, 429, 502))),
    ("sources.get_feeds", "GET", Operation("Your sports feeds", "sources", {200: Feeds})),
    ("sources.put_feeds", "PUT", Operation("Replace your sports feeds", "sources",
                                           {200: Feeds}, body=FeedsRequest)),
    ("sources.reset_feeds", "DELETE", Operation("Back to the default feeds", "sources",
                                                {200: Feeds})),
    ("sources.sports_stories", "GET", Operation(
        "Clustered, ranked stories from your feeds", "sources", {200: Stories},
        query=(LIMIT, Param("site_id", {"type": "string", "maxLength": 200},
                            "Mark the stories already published on this site."),
               Param("source", {"type": "string", "enum": ["auto", "feeds", "demo"],
                                "default": "auto"},
                     "auto: your feeds, demo stories when none answers; feeds: never demo; "
                     "demo: the demo stories.")),
        errors=(400, 401, 404, 429, 502))),
    ("reports.upload_prices", "POST", Operation(
        "Upload a CSV price file for the csv data source", "uploads", {201: PriceUpload},
        multipart={"file": FILE, "ticker": {"type": "string", "maxLength": 20}},
        errors=(400, 401, 413, 429))),
    ("run_pages.upload_tickers", "POST", Operation(
        "Read a ticker list from a CSV or XLSX file", "uploads", {200: TickerUpload},
        multipart={"file": FILE}, errors=(400, 401, 413, 429))),
)
