"""Per-account quotas (TICKZEN_MAX_SITES, _CAMPAIGNS, _WEBHOOKS, _TOKENS) and the upload size
limit (TICKZEN_MAX_UPLOAD_BYTES): past one the API answers 409 (413 for an upload) with an
``error`` that names the limit, the page shows it as a form error, and nothing is stored."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from main_portal_app import create_app
from portal.config import ConfigurationError
from tests.accounts.conftest import bearer, make_token, store_of
from tests.conftest import AuthActions

STOCK_CAMPAIGN = {"name": "Mornings", "kind": "stock", "source": {"tickers": ["AAPL", "KO"]},
                  "per_run": 1, "schedule": {"cron": "0 7 * * 1-5", "timezone": "UTC"},
                  "options": {"data_source": "demo"}}
HOOK = {"url": "http://127.0.0.1:9/hook", "events": ["run.completed"]}


def _refused(response: Any, setting: str, limit: int, noun: str) -> None:
    assert response.status_code == 409, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert setting in error and f"at most {limit} {noun}" in error, error


@pytest.mark.app_config(TICKZEN_MAX_SITES=2)
def test_sites_past_the_quota_are_refused_and_not_stored(app: Flask, client: FlaskClient,
                                                          auth: AuthActions) -> None:
    uid = auth.signed_in()
    assert [s.name for s in store_of(app).list_sites(uid)] == ["Local archive"]   # it counts
    made = client.post("/api/sites", json={"name": "Second", "kind": "local"},
                       headers=auth.headers())
    assert made.status_code == 201, made.get_data(as_text=True)
    refused = client.post("/api/sites", json={"name": "Third", "kind": "local"},
                          headers=auth.headers())
    _refused(refused, "TICKZEN_MAX_SITES", 2, "sites")
    bad_and_over = client.post("/api/sites", json={"kind": "nonsense"}, headers=auth.headers())
    assert bad_and_over.status_code == 409                 # the quota is said first

    page = client.post("/sites", data={"name": "Fourth", "kind": "local",
                                       "csrf_token": auth.csrf_token()})
    assert page.status_code == 409
    html = page.get_data(as_text=True)
    assert 'class="form-error"' in html and "at most 2 sites" in html
    assert [s.name for s in store_of(app).list_sites(uid)] == ["Local archive", "Second"]

    assert client.delete(f"/api/sites/{made.get_json()['id']}",
                         headers=auth.headers()).status_code == 200
    again = client.post("/api/sites", json={"name": "Third", "kind": "local"},
                        headers=auth.headers())
    assert again.status_code == 201                        # room again after a removal


@pytest.mark.app_config(TICKZEN_MAX_SITES=1)
def test_the_quota_holds_for_bearer_tokens_and_per_account(app: Flask, client: FlaskClient,
                                                           auth: AuthActions,
                                                           other_client) -> None:
    auth.signed_in()
    token = make_token(client, auth)["token"]
    script = app.test_client(use_cookies=False)
    refused = script.post("/api/sites", json={"name": "Scripted", "kind": "local"},
                          headers=bearer(token))
    _refused(refused, "TICKZEN_MAX_SITES", 1, "sites")
    other, other_auth = other_client()                     # another account has its own
    other_id = other_auth.signed_in("other@example.com")
    assert len(store_of(app).list_sites(other_id)) == 1


@pytest.mark.app_config(TICKZEN_MAX_CAMPAIGNS=1)
def test_campaigns_past_the_quota_are_refused_and_not_stored(app: Flask, client: FlaskClient,
                                                              auth: AuthActions) -> None:
    uid = auth.signed_in()
    site_id = store_of(app).list_sites(uid)[0].id
    body = {**STOCK_CAMPAIGN, "site_id": site_id}
    made = client.post("/api/campaigns", json=body, headers=auth.headers())
    assert made.status_code == 201, made.get_data(as_text=True)
    refused = client.post("/api/campaigns", json={**body, "name": "Evenings"},
                          headers=auth.headers())
    _refused(refused, "TICKZEN_MAX_CAMPAIGNS", 1, "campaigns")

    page = client.post("/campaigns/new", data={
        "csrf_token": auth.csrf_token(), "name": "Evenings", "kind": "stock",
        "site_id": site_id, "tickers": "AAPL", "per_run": "1", "preset": "daily",
        "time": "07:00", "timezone": "UTC", "data_source": "demo"})
    assert page.status_code == 409
    assert "at most 1 campaigns" in page.get_data(as_text=True)
    assert [c.name for c in store_of(app).list_campaigns(uid)] == ["Mornings"]


@pytest.mark.app_config(TICKZEN_MAX_WEBHOOKS=1)
def test_webhooks_past_the_quota_are_refused_and_not_stored(app: Flask, client: FlaskClient,
                                                             auth: AuthActions) -> None:
    uid = auth.signed_in()
    made = client.post("/api/webhooks", json=HOOK, headers=auth.headers())
    assert made.status_code == 201, made.get_data(as_text=True)
    refused = client.post("/api/webhooks", json={**HOOK, "url": "http://127.0.0.1:9/b"},
                          headers=auth.headers())
    _refused(refused, "TICKZEN_MAX_WEBHOOKS", 1, "webhooks")
    assert "secret" not in refused.get_json()

    page = client.post("/webhooks", data={"csrf_token": auth.csrf_token(),
                                          "url": "http://127.0.0.1:9/c",
                                          "events": ["run.failed"]})
    assert page.status_code == 409
    html = page.get_data(as_text=True)
    assert 'id="webhook-error"' in html and "at most 1 webhooks" in html
    assert "whsec_" not in html
    assert [h.url for h in store_of(app).list_webhooks(uid)] == [HOOK["url"]]


@pytest.mark.app_config(TICKZEN_MAX_TOKENS=1)
def test_tokens_past_the_quota_are_refused_and_not_stored(app: Flask, client: FlaskClient,
                                                           auth: AuthActions) -> None:
    uid = auth.signed_in()
    first = make_token(client, auth, "first")
    refused = client.post("/api/tokens", json={"name": "second"}, headers=auth.headers())
    _refused(refused, "TICKZEN_MAX_TOKENS", 1, "API tokens")
    assert "token" not in refused.get_json()
    by_token = app.test_client(use_cookies=False).post(
        "/api/tokens", json={"name": "from a script"}, headers=bearer(first["token"]))
    assert by_token.status_code == 409

    page = client.post("/account/tokens", data={"csrf_token": auth.csrf_token(),
                                                "name": "third"})
    assert page.status_code == 409
    html = page.get_data(as_text=True)
    assert "at most 1 API tokens" in html and 'id="new-token"' not in html
    assert [t.name for t in store_of(app).list_tokens(uid)] == ["first"]


def _upload(client: FlaskClient, auth: AuthActions, path: str, data: bytes,
            name: str) -> Any:
    return client.post(path, headers=auth.headers(), content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), name)})


@pytest.mark.app_config(TICKZEN_MAX_UPLOAD_BYTES=2048)
def test_uploads_over_the_size_limit_are_refused_and_not_kept(app: Flask, client: FlaskClient,
                                                              auth: AuthActions) -> None:
    uid = auth.signed_in()
    rows = "\n".join(["Date,Close"] + [f"2025-01-{d:02d},{100 + d}.25" for d in range(1, 29)])
    small = _upload(client, auth, "/api/uploads/prices", rows.encode(), "AAPL.csv")
    assert small.status_code == 201, small.get_data(as_text=True)
    big = (rows + "\n" + "\n".join(f"2025-02-{d % 28 + 1:02d},{d}.5" for d in range(400)))
    assert len(big) > 2048
    refused = _upload(client, auth, "/api/uploads/prices", big.encode(), "AAPL.csv")
    assert refused.status_code == 413
    assert refused.get_json()["error"] == ("the file is larger than 2 KB "
                                           "(TICKZEN_MAX_UPLOAD_BYTES)")
    kept = list((Path(app.instance_path) / "uploads" / uid).iterdir())
    assert len(kept) == 1                                  # only the small one
    tickers = _upload(client, auth, "/api/uploads/tickers", ("ticker\n" + "AAPL\n" * 600)
                      .encode(), "list.csv")
    assert tickers.status_code == 413
    assert "2 KB" in tickers.get_json()["error"]


def test_a_whole_request_larger_than_any_upload_is_refused(make_app) -> None:
    roomy = make_app(TICKZEN_MAX_UPLOAD_BYTES=20 * 2**20)
    assert roomy.config["MAX_CONTENT_LENGTH"] == 20 * 2**20 + 64 * 1024
    app = make_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 10 * 2**20     # never below the default
    client = app.test_client()
    auth = AuthActions(client)
    auth.signed_in()
    response = client.post("/api/uploads/prices", headers=auth.headers(),
                           content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"x" * (10 * 2**20 + 1)), "a.csv")})
    assert response.status_code == 413 and "error" in response.get_json()


def test_quota_settings_must_be_at_least_one(monkeypatch, tmp_path: Path) -> None:
    for name in ("TICKZEN_MAX_SITES", "TICKZEN_MAX_CAMPAIGNS", "TICKZEN_MAX_WEBHOOKS",
                 "TICKZEN_MAX_TOKENS", "TICKZEN_MAX_UPLOAD_BYTES"):
        monkeypatch.setenv(name, "0")
        with pytest.raises(ConfigurationError, match=name):
            create_app({"ENV_NAME": "testing", "INSTANCE_PATH": str(tmp_path / "i"),
                        "TICKZEN_STORE": f"sqlite:///{tmp_path / 'q.db'}",
                        "TICKZEN_START_RUNNER": False})
        monkeypatch.delenv(name)


def test_the_limits_are_in_the_api_document(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    for path in ("/api/sites", "/api/campaigns", "/api/webhooks", "/api/tokens"):
        post = spec["paths"][path]["post"]
        assert "409" in post["responses"], path
        assert "TICKZEN_MAX_" in post.get("description", ""), path
