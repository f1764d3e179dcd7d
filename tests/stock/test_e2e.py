"""Stock runs end to end: HTTP API -> RunManager thread -> StockAutomation ->
PublishingService -> the local archive; then the report page, its charts, and price uploads."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.earnings.runs import Member

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def engine_app(make_app, tmp_path: Path):
    return make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50)


def test_five_demo_tickers_into_the_local_archive(engine_app, tmp_path):
    alice = Member(engine_app)
    site_id = alice.site(name="Archive", kind="local")
    run_id = alice.start("stock", site_id, ["aapl", "MSFT", "brk.b", "NVDA", "^GSPC", "AAPL"],
                         data_source="demo", status="publish")
    run = alice.wait(run_id)
    assert run["status"] == "completed", run
    assert [i["status"] for i in run["items"]] == ["published"] * 5, run["items"]
    keys = [i["key"] for i in run["items"]]
    assert keys[0].startswith("aapl-stock-analysis-") and keys[2].startswith("brk-b-")

    post = alice.client.get(run["items"][0]["post_url"])
    assert post.status_code == 200
    html = post.get_data(as_text=True)
    assert "Demo data" in html and "not investment advice" in html
    assert "{{image:" not in html                         # placeholders were replaced
    folder = tmp_path / "archive" / alice.user_id / site_id / keys[0]
    assert len([p for p in (folder / "images").iterdir() if p.suffix == ".png"]) == 3

    # the report page of each finished item, for its owner
    page = alice.client.get(f"/runs/{run_id}/items/0/report")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "AAPL" in text and "demo data" in text and "Key figures" in text
    assert f"/runs/{run_id}/items/0/files/aapl-price.png" in text
    png = alice.client.get(f"/runs/{run_id}/items/0/files/aapl-momentum.png")
    assert png.status_code == 200 and png.data[:4] == b"\x89PNG"
    assert alice.client.get(f"/runs/{run_id}/items/0/files/report.json").status_code == 404
    assert alice.client.get(f"/runs/{run_id}/items/0/files/..%2Freport.png").status_code == 404
    assert alice.client.get(f"/runs/{run_id}/items/9/report").status_code == 404

    # nobody else sees it
    bob = Member(engine_app, email="bob@example.com")
    assert bob.client.get(f"/runs/{run_id}/items/0/report").status_code == 404
    assert bob.client.get(f"/runs/{run_id}/items/0/files/aapl-price.png").status_code == 404
    anonymous = engine_app.test_client()
    assert anonymous.get(f"/runs/{run_id}/items/0/report").status_code in (302, 401)


def test_bad_tickers_are_refused_at_submit(engine_app):
    alice = Member(engine_app)
    site_id = alice.site(name="Archive", kind="local")
    response = alice.send("POST", "/api/runs", {"kind": "stock", "site_id": site_id,
                                                "items": ["AAPL", "<script>x</script>"],
                                                "options": {"data_source": "demo"}})
    assert response.status_code == 400
    assert "'<script>x</script>' is not a valid ticker" in json.dumps(response.get_json())
    response = alice.send("POST", "/api/runs", {"kind": "stock", "site_id": site_id,
                                                "items": ["AAPL"],
                                                "options": {"data_source": "nope"}})
    assert response.status_code == 400
    assert "unknown data_source 'nope'" in json.dumps(response.get_json())
    assert alice.client.get("/api/runs").get_json()["runs"] == []


def upload(member: Member, data: bytes, name: str = "prices.csv", **form):
    return member.client.post("/api/uploads/prices", headers={"X-CSRFToken": member.token},
                              data={"file": (io.BytesIO(data), name), **form},
                              content_type="multipart/form-data")


def test_price_upload_then_a_csv_run(engine_app):
    alice = Member(engine_app)
    lines = ["Date,Open,High,Low,Close,Volume"] + [
        f"2025-{m:02d}-{d:02d},{50 + d},{52 + d},{49 + d},{51 + d},{1000 * d}"
        for m in range(1, 10) for d in range(1, 25)]
    lines.insert(5, lines[4])                                 # a duplicate date
    lines.append("garbage,row,,,,")
    response = upload(alice, "\n".join(lines).encode(), "acme.csv", ticker="acme")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["tickers"] == ["ACME"] and body["rows"] == 9 * 24
    assert any("duplicate" in p for p in body["problems"])
    assert any("unreadable" in p for p in body["problems"])
    stored = Path(engine_app.instance_path) / "uploads" / alice.user_id / \
        f"{body['upload_id']}.csv"
    assert stored.is_file()

    site_id = alice.site(name="Archive", kind="local")
    run = alice.wait(alice.start("stock", site_id, ["ACME"], data_source="csv",
                                 csv_upload_id=body["upload_id"]))
    assert run["items"][0]["status"] == "published", run
    page = alice.client.get(f"/runs/{run['id']}/items/0/report").get_data(as_text=True)
    assert "uploaded CSV" in page


@pytest.mark.parametrize("data,name,form,status,message", [
    (b"", "x.csv", {}, 400, "empty"),
    (b"Day,Price\n2024-01-01,3\n", "x.csv", {}, 400, "missing required column"),
    (b"Date,Close\n2024-01-01,3\n", "x.csv", {"ticker": "bad ticker"}, 400, "not a valid"),
    (b"Date,Close\nnope,nope\n", "x.csv", {"ticker": "X"}, 400, "no usable price rows"),
])
def test_bad_uploads_are_refused_and_nothing_stored(engine_app, data, name, form, status,
                                                    message):
    alice = Member(engine_app)
    response = upload(alice, data, name, **form)
    assert response.status_code == status
    assert message in response.get_json()["error"]
    folder = Path(engine_app.instance_path) / "uploads" / alice.user_id
    assert not folder.exists() or not any(folder.iterdir())


def test_upload_needs_a_file_and_a_login(engine_app):
    alice = Member(engine_app)
    response = alice.client.post("/api/uploads/prices", headers={"X-CSRFToken": alice.token})
    assert response.status_code == 400 and "file" in response.get_json()["error"]
    anonymous = engine_app.test_client()
    assert anonymous.post("/api/uploads/prices").status_code in (400, 401)


def test_a_file_named_like_no_ticker_serves_the_tickers_of_the_run(engine_app):
    alice = Member(engine_app)
    lines = ["date,close"] + [f"2025-{m:02d}-{d:02d},{40 + d / 10}"
                              for m in range(1, 7) for d in range(1, 25)]
    response = upload(alice, "\n".join(lines).encode(), "my prices (2).csv")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["tickers"] == [] and body["rows"] == 6 * 24

    site_id = alice.site(name="Archive", kind="local")
    run = alice.wait(alice.start("stock", site_id, ["KO"], data_source="csv",
                                 csv_upload_id=body["upload_id"]))
    assert run["items"][0]["status"] == "published", run
    assert run["items"][0]["report_url"] == f"/runs/{run['id']}/items/0/report"
    page = alice.client.get(run["items"][0]["report_url"]).get_data(as_text=True)
    assert "KO" in page and "uploaded CSV" in page and "badge-demo" not in page
