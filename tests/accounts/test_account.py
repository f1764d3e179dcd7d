"""/account and /api/account: profile, email choices, password change (every other session
signed out), sign out everywhere, deleting the account; bad input changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from storage.base import NewItem, Run
from tests.accounts.conftest import PASSWORD, bearer, make_token, store_of
from tests.conftest import AuthActions

NEW_PASSWORD = "battery-staple-2"


def test_account_json_and_page(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in("ann@example.com")
    body = client.get("/api/account").get_json()
    assert body["email"] == "ann@example.com"
    assert body["timezone"] == "UTC" and body["display_name"] == ""
    assert isinstance(body["email_events"], list)
    page = client.get("/account")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for part in ("Change password", "Sign out everywhere", "API tokens", "Delete the account",
                 "Time zone"):
        assert part in html


def test_patch_account_changes_profile_and_email_events(client: FlaskClient,
                                                        auth: AuthActions) -> None:
    auth.signed_in()
    events = client.get("/api/account").get_json()["email_events"]
    response = client.patch("/api/account", headers=auth.headers(), json={
        "display_name": "  Ann  ", "timezone": "America/New_York", "email_events": []})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["display_name"], body["timezone"], body["email_events"]) == (
        "Ann", "America/New_York", [])
    assert client.get("/api/account").get_json() == body
    back = client.patch("/api/account", headers=auth.headers(), json={"email_events": events})
    assert back.get_json()["email_events"] == events


@pytest.mark.parametrize("body", [
    {"timezone": "Mars/Olympus_Mons"}, {"timezone": ""}, {"timezone": 5},
    {"timezone": "../../etc/passwd"}, {"display_name": "x" * 101}, {"display_name": ["a"]},
    {"email_events": ["run.exploded"]}, {"email_events": "run.failed"},
    {"email": "other@example.com"}, {"password_hash": "x"},
    {"display_name": "Fine", "timezone": "Nowhere/Else"},
])
def test_bad_account_changes_are_refused_and_change_nothing(client: FlaskClient,
                                                            auth: AuthActions,
                                                            body: dict) -> None:
    auth.signed_in()
    before = client.get("/api/account").get_json()
    response = client.patch("/api/account", headers=auth.headers(), json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert client.get("/api/account").get_json() == before


def test_patch_account_needs_an_object(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    for raw in ("[1]", "null", "not json"):
        response = client.patch("/api/account", headers={**auth.headers(),
                                "Content-Type": "application/json"}, data=raw)
        assert response.status_code == 400


def test_profile_form_errors_change_nothing(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    response = client.post("/account/profile", data={
        "display_name": "Ann", "timezone": "Not/AZone", "csrf_token": auth.csrf_token()})
    assert response.status_code == 400
    assert "unknown time zone" in response.get_data(as_text=True)
    assert client.get("/api/account").get_json()["display_name"] == ""
    ok = client.post("/account/profile", data={
        "display_name": "Ann", "timezone": "Asia/Tokyo", "email_events": ["run.failed"],
        "csrf_token": auth.csrf_token()})
    assert ok.status_code == 302
    body = client.get("/api/account").get_json()
    assert (body["display_name"], body["timezone"], body["email_events"]) == (
        "Ann", "Asia/Tokyo", ["run.failed"])


@pytest.mark.parametrize("form, message", [
    ({"current_password": "wrong-password", "password": NEW_PASSWORD,
      "confirm_password": NEW_PASSWORD}, "current password is wrong"),
    ({"current_password": PASSWORD, "password": "short", "confirm_password": "short"},
     "at least 8"),
    ({"current_password": PASSWORD, "password": NEW_PASSWORD,
      "confirm_password": NEW_PASSWORD + "x"}, "do not match"),
    ({"current_password": "", "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
     "current_password is required"),
])
def test_password_form_errors_change_nothing(app: Flask, client: FlaskClient,
                                             auth: AuthActions, form: dict,
                                             message: str) -> None:
    uid = auth.signed_in()
    before = store_of(app).get_user(uid)
    response = client.post("/account/password", data={**form,
                                                       "csrf_token": auth.csrf_token()})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    after = store_of(app).get_user(uid)
    assert (after.password_hash, after.session_version) == (before.password_hash,
                                                           before.session_version)


def test_password_change_signs_out_every_other_session(app: Flask, other_client) -> None:
    first, first_auth = other_client()
    second, second_auth = other_client()
    first_auth.signed_in("ann@example.com")
    assert second_auth.login("ann@example.com").status_code == 302
    assert second.get("/api/runs").status_code == 200
    token = make_token(first, first_auth)["token"]

    response = first.post("/api/account/password", headers=first_auth.headers(),
                          json={"current_password": PASSWORD, "password": NEW_PASSWORD})
    assert response.status_code == 200 and response.get_json() == {"changed": True}

    assert first.get("/api/runs").status_code == 200          # this session goes on
    assert second.get("/api/runs").status_code == 401         # the other one is out
    assert second.get("/account").status_code == 302
    script = app.test_client(use_cookies=False)
    assert script.get("/api/runs", headers=bearer(token)).status_code == 200  # tokens stay
    assert second_auth.login("ann@example.com").status_code == 400
    assert second_auth.login("ann@example.com", NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize("body", [
    {"current_password": "wrong-password", "password": NEW_PASSWORD},
    {"current_password": PASSWORD, "password": "short"},
    {"current_password": PASSWORD, "password": "x" * 129},
    {"current_password": PASSWORD}, {"password": NEW_PASSWORD},
    {"current_password": PASSWORD, "password": 12345678},
])
def test_bad_password_changes_are_400_json(app: Flask, client: FlaskClient, auth: AuthActions,
                                           body: dict) -> None:
    uid = auth.signed_in()
    before = store_of(app).get_user(uid).password_hash
    response = client.post("/api/account/password", headers=auth.headers(), json=body)
    assert response.status_code == 400 and response.get_json()["error"]
    assert store_of(app).get_user(uid).password_hash == before


def test_sign_out_everywhere(other_client) -> None:
    first, first_auth = other_client()
    second, second_auth = other_client()
    first_auth.signed_in("ann@example.com")
    second_auth.login("ann@example.com")
    response = first.post("/account/sessions", data={"csrf_token": first_auth.csrf_token()})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert first.get("/api/runs").status_code == 401
    assert second.get("/api/runs").status_code == 401
    assert second_auth.login("ann@example.com").status_code == 302


def _owned_things(app: Flask, uid: str) -> tuple[str, Path, Path]:
    """A run with an item folder, and a local-archive article folder, for ``uid``."""
    store = store_of(app)
    site = store.list_sites(uid)[0]
    run = store.create_run(Run(id="", user_id=uid, kind="stock", site_id=site.id),
                           [NewItem(key="aapl", input="AAPL")])
    workdir = app.extensions["tickzen"].runs.workdirs.for_item(run.id, 0, "aapl")
    workdir.mkdir(parents=True)
    (workdir / "chart.png").write_bytes(b"png")
    archive = Path(app.config["TICKZEN_ARCHIVE_DIR"]) / uid / site.id / "aapl-post"
    archive.mkdir(parents=True)
    (archive / "article.json").write_text("{}")
    return run.id, workdir.parent, archive


def test_delete_account_needs_the_password_and_then_removes_everything(
        app: Flask, client: FlaskClient, auth: AuthActions, other_client) -> None:
    uid = auth.signed_in("ann@example.com")
    run_id, run_dir, archive = _owned_things(app, uid)
    token = make_token(client, auth)["token"]
    bob_client, bob = other_client()
    bob_id = bob.signed_in("bob@example.com")
    bob_run, bob_dir, bob_archive = _owned_things(app, bob_id)

    for body in ({}, {"password": ""}, {"password": "wrong-password"}, {"password": 5}):
        refused = client.delete("/api/account", headers=auth.headers(), json=body)
        assert refused.status_code == 400, body
    assert store_of(app).get_user(uid) is not None and run_dir.exists() and archive.exists()

    response = client.delete("/api/account", headers=auth.headers(),
                             json={"password": PASSWORD})
    assert response.status_code == 200 and response.get_json() == {"deleted": uid}
    store = store_of(app)
    assert store.get_user(uid) is None and store.get_run(run_id) is None
    assert store.list_sites(uid) == [] and store.list_tokens(uid) == []
    assert not run_dir.exists() and not archive.parent.parent.exists()
    assert client.get("/api/runs").status_code == 401
    assert app.test_client(use_cookies=False).get(
        "/api/runs", headers=bearer(token)).status_code == 401
    assert auth.login("ann@example.com").status_code == 400
    # Bob keeps everything.
    assert store.get_run(bob_run) is not None and bob_dir.exists() and bob_archive.exists()
    assert bob_client.get("/api/runs").status_code == 200


def test_delete_account_form(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    uid = auth.signed_in()
    wrong = client.post("/account/delete", data={"password": "nope-nope",
                                                 "csrf_token": auth.csrf_token()})
    assert wrong.status_code == 400 and "password is wrong" in wrong.get_data(as_text=True)
    assert store_of(app).get_user(uid) is not None
    done = client.post("/account/delete", data={"password": PASSWORD,
                                                "csrf_token": auth.csrf_token()})
    assert done.status_code == 302 and store_of(app).get_user(uid) is None


def test_account_pages_need_sign_in(client: FlaskClient) -> None:
    assert client.get("/account").status_code == 302
    assert client.get("/api/account").status_code == 401
    assert client.get("/api/tokens").status_code == 401


def test_new_campaigns_start_in_the_account_time_zone(client: FlaskClient,
                                                      auth: AuthActions) -> None:
    auth.signed_in()
    client.patch("/api/account", headers=auth.headers(), json={"timezone": "Asia/Kolkata"})
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert 'value="Asia/Kolkata"' in page
