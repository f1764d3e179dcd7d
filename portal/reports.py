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
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
)
from flask_login import current_user, login_required
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
from portal.errors import error_response
from portal.services import services

bp = Blueprint("reports", __name__)

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.png$")
_PLACEHOLDER = re.compile(r"\{\{\s*image:([^}\s]+)\s*\}\}")


def _owned_item_dir(run_id: str, position: int) -> tuple[Any, Any, Path]:
    """(run, item, workdir) of the current user's item, or a 404."""
    store = services().store
    run = store.get_run(run_id)
    if run is None or run.user_id != str(current_user.get_id()):
        abort(404)
    item = store.get_item(run_id, position)
    if item is None:
        abort(404)
    folder = services().runs.workdirs.locate(run_id, position, (item.result or {}).get("workdir"),
                                             holding="report.json")
    if folder is None:
        abort(404)
    return run, item, folder


@bp.get("/runs/<run_id>/items/<int:position>/report")
@login_required
def report(run_id: str, position: int) -> str:
    run, item, folder = _owned_item_dir(run_id, position)
    try:
        data = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        abort(404)
    base = f"/runs/{run_id}/items/{position}/files/"
    html = _PLACEHOLDER.sub(lambda m: base + m.group(1), data.get("html", ""))
    featured = [i for i in data.get("images", []) if i.get("role") == "featured"]
    return render_template("reports/report.html", run=run, item=item, report=data,
                           body=Markup(sanitize_html(html)),  # noqa: S704 - sanitised here
                           featured=featured, files_base=base)


@bp.get("/runs/<run_id>/items/<int:position>/files/<filename>")
@login_required
def report_file(run_id: str, position: int, filename: str) -> Response:
    if not _FILE_RE.match(filename):
        abort(404)
    _, _, folder = _owned_item_dir(run_id, position)
    if not (folder / filename).is_file():
        abort(404)
    response = send_from_directory(folder, filename, mimetype="image/png", max_age=3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/api/uploads/prices")
@login_required
def upload_prices() -> tuple[Response, int] | Response:
    """A per-run CSV price upload -> {upload_id, tickers, rows, problems}.

    Form: ``file`` (CSV: Date + Close/Adj Close at least; a Ticker/Symbol column for several
    tickers) and optional ``ticker`` for single-ticker files (else the file name is used).
    """
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return error_response(400, "attach a CSV file in the 'file' field")
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return error_response(413, f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
    if not data.strip():
        return error_response(400, "the file is empty")
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
            return error_response(400, "; ".join(bad[:5]))
        frame, problems = clean_prices(table, "the uploaded file")
    except ProviderError as exc:
        return error_response(400, str(exc))
    if frame.empty:
        return error_response(400, "the file has no usable price rows")
    upload_id = uuid.uuid4().hex
    path = upload_path(current_app.instance_path, str(current_user.get_id()), upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return jsonify({"upload_id": upload_id, "tickers": sorted(set(tickers)),
                    "rows": int(len(frame)), "problems": notes + problems}), 201
