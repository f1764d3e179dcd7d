"""Run-automation pages: the run page per kind, one run's live view, history, ticker uploads.

The pages only render the starting state; everything live (progress, cards, log, controls)
is driven in the browser by static/js/run_view.js from the Socket.IO contract of DESIGN.md.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from flask_login import login_required

from automation_scripts.tickers import FORM
from portal.access import current_user_id, owned_run
from portal.errors import InvalidRequest, NotFound
from portal.local_time import viewer_zone
from portal.quotas import read_upload
from portal.run_lists import (
    RunFilters,
    keyset_page,
    old_page_number,
    parse_cursor,
    parse_filters,
)
from portal.run_views import RunView, report_url
from portal.services import services
from storage.base import RUN_STATES
from storage.housekeeping import item_files_pruned, run_files_pruned
from storage.paging import Cursor

bp = Blueprint("run_pages", __name__)

KINDS: dict[str, dict[str, str]] = {
    "stock": {"title": "Stock analysis", "items_label": "Tickers",
              "placeholder": "AAPL, MSFT, GOOG (comma, space or one per line)"},
    "earnings": {"title": "Earnings reports", "items_label": "Tickers",
                 "placeholder": "Pick from the calendar or type tickers"},
    "sports": {"title": "Sports articles", "items_label": "Stories",
               "placeholder": "Pick stories from the list below"},
}
HISTORY_PAGE_SIZE = 20
UPLOAD_MAX_ROWS = 5000
PREVIEW_ROWS = 5
TICKER_HEADERS = ("ticker", "tickers", "symbol", "symbols", "stock", "code")


# ---------------------------------------------------------------------------------------------
# Pages


@bp.get("/automation/<kind>")
@login_required
def run_page(kind: str) -> str:
    """The run-automation page of one kind; unknown kinds are a 404 page, not a 500."""
    if kind not in KINDS:
        raise NotFound(f"there is no {kind[:30]!r} automation")
    sites = services().store.list_sites(current_user_id())
    return render_template("automation/run.html", kind=kind, meta=KINDS[kind], sites=sites,
                           kinds=KINDS)


@bp.get("/runs/<run_id>")
@login_required
def run_detail(run_id: str) -> str:
    """One run's live view; only its owner sees it. The page starts from the run's API answer."""
    run = owned_run(run_id)
    store = services().store
    site = store.get_site(current_user_id(), run.site_id)
    return render_template("runs/detail.html", run=run, site=site,
                           meta=KINDS.get(run.kind, {"title": run.kind}),
                           initial=RunView.of(run, store.list_items(run.id)).api(),
                           retention_days=services().retention.days)


@dataclass(frozen=True)
class HistoryPaging:
    """Where each table of /history is: its keyset position from the query string."""

    runs_after: Cursor | None = None
    runs_before: Cursor | None = None
    runs_oldest: bool = False
    runs_offset: int = 0
    posts_after: Cursor | None = None
    posts_before: Cursor | None = None
    posts_oldest: bool = False
    posts_offset: int = 0

    @classmethod
    def read(cls, args: Any) -> HistoryPaging:
        """``cursor``/``before``/``page=last`` for runs, the same with ``posts_`` for posts;
        ``page=N`` (an offset) from older links still works. Bad values are ignored."""

        def position(prefix: str, key_length: int) -> dict[str, Any]:
            page = args.get(f"{prefix}page", "")
            return {"after": parse_cursor(args.get(f"{prefix}cursor"), key_length,
                                          strict=False),
                    "before": parse_cursor(args.get(f"{prefix}before"), key_length,
                                           strict=False),
                    "oldest": page == "last",
                    "offset": (old_page_number(page) - 1) * HISTORY_PAGE_SIZE}

        runs, posts = position("", 1), position("posts_", 2)
        return cls(runs_after=runs["after"], runs_before=runs["before"],
                   runs_oldest=runs["oldest"], runs_offset=runs["offset"],
                   posts_after=posts["after"], posts_before=posts["before"],
                   posts_oldest=posts["oldest"], posts_offset=posts["offset"])


def _history_filters(sites: list[Any], campaigns: list[Any]) -> RunFilters:
    """The page's filters; unknown values (another user's site, a junk status) are dropped
    rather than failing the page."""
    f = parse_filters(request.args, KINDS, strict=False)
    if f.site and f.site not in {s.id for s in sites}:
        f = replace(f, site="")
    if f.campaign and f.campaign not in {c.id for c in campaigns}:
        f = replace(f, campaign="")
    return f


@bp.get("/history")
@login_required
def history() -> str:
    """Runs and published posts, filtered in the store (kind, status, site, campaign, days in
    the viewer's zone) and paged by keyset: newer/older links, the newest and a jump to the
    oldest page."""
    store = services().store
    user_id = current_user_id()
    sites = store.list_sites(user_id)
    campaigns = services().campaigns.list(user_id)
    f = _history_filters(sites, campaigns)
    at = HistoryPaging.read(request.args)
    zone = viewer_zone()
    query = f.store_query(zone)
    runs = keyset_page(lambda **kw: store.list_runs(user_id, **query, **kw),
                       HISTORY_PAGE_SIZE, Cursor.of_run, after=at.runs_after,
                       before=at.runs_before, oldest=at.runs_oldest, offset=at.runs_offset)
    posts = keyset_page(lambda **kw: store.list_posts(user_id, site_id=f.site or None,
                                                      kind=f.kind or None, **kw),
                        HISTORY_PAGE_SIZE, Cursor.of_post, after=at.posts_after,
                        before=at.posts_before, oldest=at.posts_oldest,
                        offset=at.posts_offset)
    filter_params = {"kind": f.kind, "status": f.status, "site": f.site,
                     "campaign": f.campaign,
                     "from": f.date_from.isoformat() if f.date_from else "",
                     "to": f.date_to.isoformat() if f.date_to else ""}
    here = {"runs": _position_params("", at.runs_after, at.runs_before, at.runs_oldest,
                                     at.runs_offset),
            "posts": _position_params("posts_", at.posts_after, at.posts_before,
                                      at.posts_oldest, at.posts_offset)}

    def link(table: str, **position: str) -> str:
        """This page with ``table`` (runs or posts) moved to ``position``; the other table
        and the filters stay."""
        other = "posts" if table == "runs" else "runs"
        prefix = "" if table == "runs" else "posts_"
        params = {**filter_params, **here[other],
                  **{f"{prefix}{key}": value for key, value in position.items()}}
        return url_for("run_pages.history", **{k: v for k, v in params.items() if v})

    return render_template("history.html", runs=runs, posts=posts, sites=sites,
                           site_names={s.id: s.name for s in sites}, f=f, kinds=KINDS,
                           statuses=RUN_STATES, link=link, reports=_post_reports(posts.rows),
                           campaigns=campaigns, zone_label=zone.key,
                           campaign_names={c.id: c.name for c in campaigns})


def _position_params(prefix: str, after: Cursor | None, before: Cursor | None, oldest: bool,
                     offset: int) -> dict[str, str]:
    """The query parameters that keep one table where it is."""
    if oldest:
        return {f"{prefix}page": "last"}
    if before is not None:
        return {f"{prefix}before": before.encode()}
    if after is not None:
        return {f"{prefix}cursor": after.encode()}
    if offset:
        return {f"{prefix}page": str(offset // HISTORY_PAGE_SIZE + 1)}
    return {}


def _post_reports(posts: list[Any]) -> dict[tuple[str, str], str]:
    """(run_id, item key) -> the report page of the item that made the post, where there is one
    (one item listing per run on the page, at most a page of posts)."""
    store = services().store
    found: dict[tuple[str, str], str] = {}
    for run_id in {p.run_id for p in posts if p.run_id}:
        run = store.get_run(run_id)
        if run is None or run_files_pruned(run):       # retention removed the reports
            continue
        for item in store.list_items(run_id):
            url = None if item_files_pruned(run, item) else report_url(item)
            if url:
                found[(run_id, item.key)] = url
    return found


_FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
            b'<rect width="32" height="32" rx="6" fill="#1d4ed8"/>'
            b'<path d="M6 22l7-7 5 4 8-9" stroke="#fff" stroke-width="3" fill="none"/></svg>')


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every site; without it each page logs a 404 console error."""
    response = Response(_FAVICON, mimetype="image/svg+xml")
    response.cache_control.max_age = 86400
    response.cache_control.public = True
    return response


# ---------------------------------------------------------------------------------------------
# Ticker uploads (CSV is parsed in the browser too; XLSX needs the server)


@dataclass
class TickerColumn:
    column: str | None
    tickers: list[str]
    preview: list[list[str]]
    invalid: list[str]


class UploadError(InvalidRequest):
    """The uploaded file cannot be read as a table of tickers (400)."""


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


def detect_ticker_column(rows: list[list[str]]) -> TickerColumn:
    """Find the ticker column: a header named like ticker/symbol, else the column whose
    values most look like tickers (``tickers.FORM``). Same rule as static/js/run_form.js."""
    rows = [r for r in rows if any(c for c in r)]
    if not rows:
        raise UploadError("the file has no rows")
    header = [c.lower() for c in rows[0]]
    col: int | None = None
    has_header = False
    for name in TICKER_HEADERS:
        if name in header:
            col, has_header = header.index(name), True
            break
    if col is None:
        width = max(len(r) for r in rows)
        best, best_score = None, 0.0
        for i in range(width):
            values = [r[i] for r in rows if i < len(r) and r[i]]
            if not values:
                continue
            score = sum(FORM.accepts(v) for v in values) / len(values)
            if score > best_score:
                best, best_score = i, score
        if best is None or best_score < 0.5:
            raise UploadError("no column of tickers found (name it 'ticker' or 'symbol')")
        col = best
        has_header = not FORM.accepts(rows[0][col] if col < len(rows[0]) else "")
    body = rows[1:] if has_header else rows
    seen: dict[str, None] = {}
    invalid: list[str] = []
    for r in body:
        value = r[col].upper() if col < len(r) else ""
        if value and FORM.accepts(value):
            seen.setdefault(value, None)
        elif value:
            invalid.append(r[col])
    name = rows[0][col] if has_header else None
    return TickerColumn(column=name, tickers=list(seen), preview=rows[:PREVIEW_ROWS + 1],
                        invalid=invalid[:20])


def _read_rows(filename: str, data: bytes) -> list[list[str]]:
    lower = filename.lower()
    if lower.endswith((".xlsx", ".xlsm")):
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a corrupt file
            raise UploadError("the file is not a readable .xlsx workbook") from exc
        try:
            ws = wb.worksheets[0]
            rows = []
            for row in ws.iter_rows(values_only=True):
                rows.append([_cell(v) for v in row])
                if len(rows) > UPLOAD_MAX_ROWS:
                    raise UploadError(f"too many rows (at most {UPLOAD_MAX_ROWS})")
            return rows
        finally:
            wb.close()
    if lower.endswith((".csv", ".txt")):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        rows = [[_cell(c) for c in r] for r in csv.reader(io.StringIO(text))]
        if len(rows) > UPLOAD_MAX_ROWS:
            raise UploadError(f"too many rows (at most {UPLOAD_MAX_ROWS})")
        return rows
    raise UploadError("upload a .csv or .xlsx file")


@bp.post("/api/uploads/tickers")
@login_required
def upload_tickers() -> tuple[Any, int]:
    """Parse an uploaded CSV/XLSX into tickers: ``{column, tickers, preview}``; stores nothing."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise UploadError("attach a file in the 'file' field")
    found = detect_ticker_column(_read_rows(upload.filename, read_upload(upload)))
    if not found.tickers:
        raise UploadError("the ticker column holds no valid tickers")
    return jsonify(column=found.column, tickers=found.tickers, preview=found.preview,
                   invalid=found.invalid), 200
