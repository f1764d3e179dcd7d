"""Personal API tokens: made once, kept as a hash, usable with no cookie and no CSRF token on
/api/*, isolated per user, revoked for good, rate limited per token."""

from __future__ import annotations

import hashlib

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.accounts.conftest import bearer, make_token, store_of
from tests.conftest import AuthActions


def test_token_is_shown_once_and_stored_as_a_hash(app: Flask, client: FlaskClient,
                                                  auth: AuthActions) -> None:
    uid = auth.signed_in()
    made = make_token(client, auth, "nightly")
    assert set(made) >= {"id", "name", "token", "created_at"}
    assert made["name"] == "nightly" and made["token"].startswith("tz_")
    assert len(made["token"]) == 3 + 43                 # tz_ + 32 bytes, URL-safe base64
    listed = client.get("/api/tokens").get_json()["tokens"]
    assert [t["id"] for t in listed] == [made["id"]]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is None
    stored = store_of(app).list_tokens(uid)[0]
    assert stored.token_sha256 == hashlib.sha256(made["token"].encode()).hexdigest()
    assert made["token"] not in repr(stored)


def test_bearer_authenticates_api_calls_without_cookie_or_csrf(app: Flask, client: FlaskClient,
                                                               auth: AuthActions) -> None:
    uid = auth.signed_in()
    token = make_token(client, auth)["token"]
    script = app.test_client(use_cookies=False)
    listed = script.get("/api/sites", headers=bearer(token))
    assert listed.status_code == 200
    assert "Set-Cookie" not in listed.headers
    created = script.post("/api/sites", json={"name": "From a script", "kind": "local"},
                          headers=bearer(token))
    assert created.status_code == 201, created.get_data(as_text=True)
    assert "Set-Cookie" not in created.headers
    assert created.get_json()["name"] in [s.name for s in store_of(app).list_sites(uid)]
    used = store_of(app).list_tokens(uid)[0]
    assert used.last_used_at is not None


def test_cookie_writes_still_need_csrf(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    response = client.post("/api/sites", json={"name": "No CSRF", "kind": "local"})
    assert response.status_code == 400
    assert "CSRF" in response.get_json()["error"]


@pytest.mark.parametrize("header", ["Bearer tz_not-a-real-token", "Bearer nonsense",
                                    "Bearer ", "bearer tz_" + "x" * 300])
def test_wrong_token_is_401_json(app: Flask, header: str) -> None:
    script = app.test_client(use_cookies=False)
    response = script.get("/api/runs", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"]


def test_wrong_token_is_401_even_with_a_valid_cookie(client: FlaskClient,
                                                     auth: AuthActions) -> None:
    auth.signed_in()
    response = client.get("/api/runs", headers=bearer("tz_wrong"))
    assert response.status_code == 401


def test_revoked_token_stops_working(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    made = make_token(client, auth)
    script = app.test_client(use_cookies=False)
    assert script.get("/api/runs", headers=bearer(made["token"])).status_code == 200
    revoked = client.delete(f"/api/tokens/{made['id']}", headers=auth.headers())
    assert revoked.status_code == 200 and revoked.get_json() == {"deleted": made["id"]}
    assert script.get("/api/runs", headers=bearer(made["token"])).status_code == 401
    again = client.delete(f"/api/tokens/{made['id']}", headers=auth.headers())
    assert again.status_code == 404


def test_a_token_acts_as_its_user_only(app: Flask, other_client) -> None:
    ann_client, ann = other_client()
    bob_client, bob = other_client()
    ann.signed_in("ann@example.com")
    bob_id = bob.signed_in("bob@example.com")
    ann_token = make_token(ann_client, ann)
    bob_token = make_token(bob_client, bob)
    ann_site = ann_client.post("/api/sites", json={"name": "Ann's", "kind": "local"},
                               headers=ann.headers()).get_json()["id"]
    script = app.test_client(use_cookies=False)
    assert script.get(f"/api/sites/{ann_site}",
                      headers=bearer(bob_token["token"])).status_code == 404
    assert script.get("/api/account", headers=bearer(bob_token["token"])).get_json()[
        "email"] == "bob@example.com"
    assert script.delete(f"/api/tokens/{ann_token['id']}",
                         headers=bearer(bob_token["token"])).status_code == 404
    assert [t.id for t in store_of(app).list_tokens(bob_id)] == [bob_token["id"]]
    # A token with another user's cookie: the token decides who is asking.
    mixed = ann_client.get("/api/account", headers=bearer(bob_token["token"]))
    assert mixed.get_json()["email"] == "bob@example.com"


def test_bad_token_names_are_refused(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    for body in ({}, {"name": ""}, {"name": "   "}, {"name": 5}, {"name": "x" * 101}, [1]):
        response = client.post("/api/tokens", json=body, headers=auth.headers())
        assert response.status_code == 400, body
        assert response.get_json()["error"]
    assert client.get("/api/tokens").get_json()["tokens"] == []


def test_bearer_is_not_a_page_login(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    token = make_token(client, auth)["token"]
    page = app.test_client(use_cookies=False).get("/account", headers=bearer(token))
    assert page.status_code == 302 and "/login" in page.headers["Location"]


@pytest.mark.app_config(TICKZEN_TOKEN_RATE_LIMIT="3 per minute")
def test_rate_limit_is_per_token(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    first = make_token(client, auth, "one")["token"]
    second = make_token(client, auth, "two")["token"]
    script = app.test_client(use_cookies=False)
    answers = [script.get("/api/runs", headers=bearer(first)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert script.get("/api/runs", headers=bearer(first)).get_json()["error"]
    assert script.get("/api/runs", headers=bearer(second)).status_code == 200


def test_tokens_on_the_account_page(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    made = client.post("/account/tokens", data={"name": "page token",
                                                "csrf_token": auth.csrf_token()})
    assert made.status_code == 201
    html = made.get_data(as_text=True)
    assert 'id="new-token">tz_' in html and "page token" in html
    again = client.get("/account").get_data(as_text=True)
    assert 'id="new-token"' not in again and "tz_" not in again
    bad = client.post("/account/tokens", data={"name": "", "csrf_token": auth.csrf_token()})
    assert bad.status_code == 400 and "name is required" in bad.get_data(as_text=True)
    token_id = client.get("/api/tokens").get_json()["tokens"][0]["id"]
    revoked = client.post(f"/account/tokens/{token_id}/revoke",
                          data={"csrf_token": auth.csrf_token()})
    assert revoked.status_code == 302
    assert client.get("/api/tokens").get_json()["tokens"] == []
