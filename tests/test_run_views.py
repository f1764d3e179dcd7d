"""portal/run_views.py: one view of a run, from which the API answer, the socket snapshot entry
and the run page's state are derived; report links come from ``url_for``."""

from __future__ import annotations

from flask import Flask

from portal.run_views import RunView, has_report, report_url, snapshot_entries
from storage.base import Item, NewItem, Run, Site

API_KEYS = {"run_id", "id", "kind", "site_id", "status", "options", "total", "counts",
            "percent", "last_seq", "error", "remaining_count", "campaign_id", "campaign_name",
            "created_at", "updated_at", "events_pruned_at", "files_pruned_at",
            "events_pruned_seq", "items"}
API_ITEM_KEYS = {"position", "key", "label", "status", "post_id", "post_url", "error",
                 "attempts", "title", "report_url", "writer", "writer_note"}
SNAPSHOT_KEYS = {"run_id", "kind", "status", "percent", "counts", "total", "error", "items",
                 "last_seq"}
SNAPSHOT_ITEM_KEYS = {"key", "label", "status", "post_id", "post_url", "error"}


def make_run(app: Flask, user_id: str, tickers=("AAPL", "MSFT")) -> Run:
    store = app.extensions["tickzen"].store
    site = store.create_site(user_id, Site(id="", user_id=user_id, name="Archive",
                                           kind="local"))
    items = [NewItem(key=f"{t.lower()}-stock-analysis", input=t, label=t) for t in tickers]
    return store.create_run(Run(id="", user_id=user_id, kind="stock", site_id=site.id), items)


def _item(status: str = "published", **result) -> Item:
    return Item(run_id="r1", position=3, key="aapl-stock-analysis", input="AAPL",
                label="AAPL", status=status, result=result)


def test_an_item_has_a_report_when_the_runner_recorded_one_or_its_files_list_it(app) -> None:
    assert has_report(_item(report="report.json"))
    assert has_report(_item(files=["report.json", "price.png"]))
    assert has_report(_item("skipped", report="report.json"))
    assert not has_report(_item(files=["price.png"]))
    assert not has_report(_item("failed", report="report.json"))
    assert not has_report(_item("processing", report="report.json"))
    with app.test_request_context():
        assert report_url(_item(report="report.json")) == "/runs/r1/items/3/report"
        assert report_url(_item("pending")) is None


def test_api_snapshot_and_page_come_from_one_view(app, client, auth) -> None:
    uid = auth.signed_in()
    run = make_run(app, uid)
    store = app.extensions["tickzen"].store
    store.transition_item(run.id, 0, ["pending"], "published", result={"report": "report.json"})
    items = store.list_items(run.id)
    with app.test_request_context():
        view = RunView.of(store.get_run(run.id), items)
        api, [entry] = view.api(), snapshot_entries([(store.get_run(run.id), items)])
    assert set(api) == API_KEYS and all(set(i) == API_ITEM_KEYS for i in api["items"])
    assert set(entry) == SNAPSHOT_KEYS
    first, second = entry["items"]
    assert set(first) == SNAPSHOT_ITEM_KEYS | {"report_url"} and set(second) == SNAPSHOT_ITEM_KEYS
    assert first["report_url"] == api["items"][0]["report_url"] == \
        f"/runs/{run.id}/items/0/report"
    assert api["items"][1]["report_url"] is None
    assert client.get(f"/api/runs/{run.id}").get_json() == api
    assert RunView.of(run).api().keys() == API_KEYS - {"items"}
