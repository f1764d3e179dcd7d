"""The run pages over the Flask test client: rendering, ownership, filters, ticker uploads.

The live behaviour is tested in a real Chromium (test_live_run.py); these pin the server half.
"""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from portal.run_pages import UploadError, detect_ticker_column
from storage.base import NewItem, Run, Site


def _store(app):
    return app.extensions["tickzen"].store


def _site(app, user_id: str, name: str = "Archive") -> Site:
    return _store(app).create_site(user_id, Site(id="", user_id=user_id, name=name, kind="local"))


def _run(app, user_id: str, site_id: str, kind: str = "stock", tickers=("AAPL", "MSFT")) -> Run:
    items = [NewItem(key=f"{t.lower()}-stock-analysis", input=t, label=t) for t in tickers]
    return _store(app).create_run(Run(id="", user_id=user_id, kind=kind, site_id=site_id), items)


@pytest.mark.parametrize("kind", ["stock", "earnings", "sports"])
def test_run_page_renders_each_kind(app, client, auth, kind):
    uid = auth.signed_in()
    _site(app, uid, "My archive")
    page = client.get(f"/automation/{kind}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="tz-run-form"' in html and "My archive" in html
    assert 'role="progressbar"' in html                 # the live view template
    assert "vendor/socket.io/socket.io.min.js" in html and "cdn" not in html.lower()
    assert ('id="data-source"' in html) == (kind == "stock")
    assert ('id="calendar-provider"' in html) == (kind == "earnings")
    assert ('id="stories-load"' in html) == (kind == "sports")


def test_unknown_kind_is_a_404_page(client, auth):
    auth.signed_in()
    page = client.get("/automation/crypto")
    assert page.status_code == 404
    assert "text/html" in page.content_type


def test_pages_need_sign_in(client):
    for path in ("/automation/stock", "/history", "/runs/whatever"):
        response = client.get(path)
        assert response.status_code in (302, 401), path
        assert "/login" in response.headers.get("Location", "/login")


def test_run_page_only_for_its_owner(app, client, auth):
    owner = auth.signed_in("owner@example.com")
    site = _site(app, owner)
    run = _run(app, owner, site.id, tickers=("AAPL", "KO"))
    page = client.get(f"/runs/{run.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'"run_id": "{run.id}"' in html and '"label": "KO"' in html
    auth.logout()
    auth.signed_in("other@example.com")
    assert client.get(f"/runs/{run.id}").status_code == 404
    assert client.get("/runs/no-such-run").status_code == 404


def test_item_labels_are_escaped_in_the_page_config(app, client, auth):
    uid = auth.signed_in()
    site = _site(app, uid)
    run = _run(app, uid, site.id, tickers=("</script><img src=x onerror=alert(1)>",))
    html = client.get(f"/runs/{run.id}").get_data(as_text=True)
    assert "<img src=x" not in html
    assert "\\u003c/script\\u003e" in html


def test_history_filters_and_paging(app, client, auth):
    uid = auth.signed_in()
    a = _site(app, uid, "Alpha")
    b = _site(app, uid, "Beta")
    stock_runs = [_run(app, uid, a.id) for _ in range(23)]
    sports = _run(app, uid, b.id, kind="sports", tickers=("story",))
    html = client.get("/history").get_data(as_text=True)
    assert html.count('data-run-id="') == 20 and "Older runs" in html
    html2 = client.get("/history?page=2").get_data(as_text=True)
    assert html2.count('data-run-id="') == 4 and "Newer runs" in html2
    only_sports = client.get("/history?kind=sports").get_data(as_text=True)
    assert only_sports.count('data-run-id="') == 1 and sports.id in only_sports
    only_beta = client.get(f"/history?site={b.id}").get_data(as_text=True)
    assert only_beta.count('data-run-id="') == 1
    assert client.get("/history?status=completed").get_data(as_text=True).count(
        'data-run-id="') == 0
    assert stock_runs[0].id in html2          # oldest on the last page
    # Junk filters are ignored, never a 500.
    junk = client.get("/history?kind=<b>&status=zzz&site=nope&page=-3&posts_page=x")
    assert junk.status_code == 200 and junk.get_data(as_text=True).count('data-run-id="') == 20


def test_history_hides_other_users_runs(app, client, auth):
    other = auth.signed_in("other@example.com")
    run = _run(app, other, _site(app, other).id)
    auth.logout()
    auth.signed_in("me@example.com")
    assert run.id not in client.get("/history").get_data(as_text=True)


# --- ticker uploads ---------------------------------------------------------------------


def _xlsx(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _upload(client, auth, name: str, data: bytes):
    return client.post("/api/uploads/tickers", headers=auth.headers(),
                       data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_xlsx_upload_detects_the_symbol_column(client, auth):
    auth.signed_in()
    data = _xlsx([["Company", "Symbol", "Weight"], ["Apple", "aapl", 0.5],
                  ["Microsoft", "MSFT", 0.3], ["Apple again", "AAPL", 0.1],
                  ["Bad", "<img src=x>", 0.1]])
    response = _upload(client, auth, "list.xlsx", data)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["column"] == "Symbol"
    assert body["tickers"] == ["AAPL", "MSFT"]
    assert body["invalid"] == ["<img src=x>"]
    assert body["preview"][0] == ["Company", "Symbol", "Weight"]


def test_csv_upload_without_header_finds_the_ticker_column(client, auth):
    auth.signed_in()
    response = _upload(client, auth, "t.csv", b"1,GOOG\n2,KVUE\n3,brk.b\n")
    assert response.status_code == 200
    assert response.get_json()["tickers"] == ["GOOG", "KVUE", "BRK.B"]
    assert response.get_json()["column"] is None


@pytest.mark.parametrize("name,data,message", [
    ("notes.pdf", b"%PDF-1.4", ".csv or .xlsx"),
    ("broken.xlsx", b"not a zip at all", "not a readable .xlsx"),
    ("empty.csv", b"", "no rows"),
    ("prose.csv", b"hello world, this is not\na list of, tickers at all\n", "no column"),
])
def test_bad_uploads_are_clear_400s(client, auth, name, data, message):
    auth.signed_in()
    response = _upload(client, auth, name, data)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_upload_without_file_or_csrf(client, auth):
    auth.signed_in()
    missing = client.post("/api/uploads/tickers", headers=auth.headers(), data={})
    assert missing.status_code == 400 and "file" in missing.get_json()["error"]
    no_csrf = client.post("/api/uploads/tickers",
                          data={"file": (io.BytesIO(b"AAPL\n"), "t.csv")},
                          content_type="multipart/form-data")
    assert no_csrf.status_code == 400 and "error" in no_csrf.get_json()


def test_detect_ticker_column_rules():
    assert detect_ticker_column([["ticker"], ["aapl"], ["aapl"]]).tickers == ["AAPL"]
    with pytest.raises(UploadError):
        detect_ticker_column([[""], [""]])


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
