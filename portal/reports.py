"""Stock reports in the portal: the report page of a finished item, its charts, price uploads.

The automation leaves ``report.json`` and its PNGs in the item's workdir (the runner records
that folder in ``item.result["workdir"]``); these views read them back for the item's owner
only. Anyone else, or a missing file, gets a 404, so run ids cannot be probed.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_login import login_required
from markupsafe import Markup

from automation_scripts.publishing.safety import sanitize_html
from automation_scripts.stock.automation import upload_path
from automation_scripts.stock.market_data import (
    ProviderError,
    clean_prices,
    find_columns,
    read_price_table,
)
from automation_scripts.tickers import STOCK
from portal.access import current_user_id, owned_item
from portal.errors import InvalidRequest, NotFound
from portal.quotas import read_upload
from portal.services import services
from storage.base import Item, Run
from storage.housekeeping import item_files_pruned

bp = Blueprint("reports", __name__)

_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.png$")
_PLACEHOLDER = re.compile(r"\{\{\s*image:([^}\s]+)\s*\}\}")


def _owned_item_dir(run_id: str, position: int) -> tuple[Run, Item, Path]:
    """(run, item, workdir) of the current user's item that has a report, or a 404."""
    run, item = owned_item(run_id, position)
    folder = services().runs.workdirs.locate(run_id, position, (item.result or {}).get("workdir"),
                                             holding="report.json")
    if folder is None and item_files_pruned(run, item):
        raise NotFound(f"this run's report files were removed on "
                       f"{run.files_pruned_at:%Y-%m-%d} (retention); its post is kept")
    if folder is None:
        raise NotFound("report not found")
    return run, item, folder


@bp.get("/runs/<run_id>/items/<int:position>/report")
@login_required
def report(run_id: str, position: int) -> str:
    run, item, folder = _owned_item_dir(run_id, position)
    try:
        data = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError) as exc:
        raise NotFound("report not found") from exc

    def file_url(filename: str) -> str:
        return url_for("reports.report_file", run_id=run.id, position=item.position,
                       filename=filename)

    html = _PLACEHOLDER.sub(lambda m: file_url(m.group(1)), data.get("html", ""))
    featured = [i for i in data.get("images", []) if i.get("role") == "featured"]
    return render_template("reports/report.html", run=run, item=item, report=data,
                           body=Markup(sanitize_html(html)),  # noqa: S704 - sanitised here
                           featured=featured, file_url=file_url)


@bp.get("/runs/<run_id>/items/<int:position>/files/<filename>")
@login_required
def report_file(run_id: str, position: int, filename: str) -> Response:
    if not _FILE_RE.match(filename):
        raise NotFound("file not found")
    _, _, folder = _owned_item_dir(run_id, position)
    if not (folder / filename).is_file():
        raise NotFound("file not found")
    response = send_from_directory(folder, filename, mimetype="image/png", max_age=3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/api/uploads/prices")
@login_required
def upload_prices() -> tuple[Response, int]:
    """A per-run CSV price upload -> {upload_id, tickers, rows, problems}.

    Form: ``file`` (CSV: Date + Close/Adj Close at least; a Ticker/Symbol column for several
    tickers) and optional ``ticker`` for single-ticker files (else the file name is used).
    """
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidRequest("attach a CSV file in the 'file' field")
    data = read_upload(upload)
    if not data.strip():
        raise InvalidRequest("the file is empty")
    try:
        table, notes = read_price_table(data)
        cols = find_columns(table.columns)
        if "Ticker" in cols:
            raw = sorted({str(t).strip() for t in table[cols["Ticker"]].dropna()
                          if str(t).strip()})
        elif request.form.get("ticker"):
            raw = [request.form["ticker"]]
        else:
            # Without a ticker column the rows serve every ticker of the run; the file name
            # only names them when it is a ticker ("my prices.csv" is not refused for it).
            stem = Path(upload.filename).stem
            raw = [stem] if STOCK.accepts(stem) else []
        tickers, bad = [], []
        for t in raw:
            try:
                tickers.append(STOCK.normalise(t))
            except ValueError as exc:
                bad.append(str(exc))
        if bad:
            raise InvalidRequest("; ".join(bad[:5]))
        frame, problems = clean_prices(table, "the uploaded file")
    except ProviderError as exc:
        raise InvalidRequest(str(exc)) from exc
    if frame.empty:
        raise InvalidRequest("the file has no usable price rows")
    upload_id = uuid.uuid4().hex
    path = upload_path(current_app.instance_path, current_user_id(), upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return jsonify({"upload_id": upload_id, "tickers": sorted(set(tickers)),
                    "rows": int(len(frame)), "problems": notes + problems}), 201
