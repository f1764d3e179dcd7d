"""The site edit page: every field, writers (author rotation), gap minutes, daily limit and
internal links; passwords kept unless replaced; a bad value is a form error, nothing changed;
another user's site is a 404."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.accounts.conftest import store_of
from tests.conftest import AuthActions

URL = "http://127.0.0.1:9/wp"


def _wordpress_site(client: FlaskClient, auth: AuthActions) -> dict[str, Any]:
    response = client.post("/api/sites", headers=auth.headers(), json={
        "name": "Blog", "kind": "wordpress", "url": URL, "username": "editor",
        "app_password": "abcd efgh ijkl", "authors": [{"username": "writer1",
                                                       "app_password": "pw-one"}]})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def _form(auth: AuthActions, **changes: Any) -> dict[str, Any]:
    form = {"name": "Blog", "kind": "wordpress", "url": URL, "username": "editor",
            "app_password": "", "default_status": "future", "gap_min": "10", "gap_max": "20",
            "category": "Markets", "tags": "stocks, daily", "daily_limit": "5",
            "concurrency": "3", "internal_links_enabled": "1", "internal_links_max": "4",
            "author_username": ["writer1", "writer2"], "author_password": ["", "pw-two"],
            "csrf_token": auth.csrf_token()}
    form.update(changes)
    return form


def test_edit_every_field_keeping_passwords(app: Flask, client: FlaskClient,
                                            auth: AuthActions) -> None:
    uid = auth.signed_in()
    site = _wordpress_site(client, auth)
    before = store_of(app).get_site(uid, site["id"])
    page = client.get(f"/sites/{site['id']}/edit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "writer1" in html and "abcd efgh" not in html and "pw-one" not in html

    saved = client.post(f"/sites/{site['id']}/edit", data=_form(auth))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    after = store_of(app).get_site(uid, site["id"])
    assert after.app_password_enc == before.app_password_enc          # kept, not replaced
    assert [a["username"] for a in after.authors] == ["writer1", "writer2"]
    assert after.authors[0]["app_password_enc"] == before.authors[0]["app_password_enc"]
    assert after.authors[1]["app_password_enc"]
    assert after.defaults["default_status"] == "future"
    assert after.defaults["gap_minutes"] == [10, 20]
    assert after.defaults["category"] == "Markets"
    assert after.defaults["tags"] == ["stocks", "daily"]
    assert after.daily_limit == 5
    view = client.get(f"/api/sites/{site['id']}").get_json()
    assert view["concurrency"] == 3
    assert after.defaults["internal_links"] == {"enabled": True, "max": 4,
                                                "same_category": False}

    replaced = client.post(f"/sites/{site['id']}/edit",
                           data=_form(auth, app_password="new password 1", daily_limit=""))
    assert replaced.status_code == 302
    again = store_of(app).get_site(uid, site["id"])
    assert again.app_password_enc != before.app_password_enc and again.daily_limit is None
    secrets = app.extensions["tickzen"].secrets
    assert secrets.decrypt(again.app_password_enc) == "new password 1"


def test_bad_values_are_form_errors_and_change_nothing(app: Flask, client: FlaskClient,
                                                       auth: AuthActions) -> None:
    uid = auth.signed_in()
    site = _wordpress_site(client, auth)
    before = store_of(app).get_site(uid, site["id"])
    for bad in ({"gap_min": "50", "gap_max": "10"}, {"daily_limit": "0"},
                {"daily_limit": "many"}, {"name": ""}, {"url": "ftp://example.com"},
                {"default_status": "private"}, {"concurrency": "99"},
                {"author_username": ["writer3"], "author_password": [""]},
                {"internal_links_max": "11"}, {"internal_links_max": "lots"}):
        response = client.post(f"/sites/{site['id']}/edit", data=_form(auth, **bad))
        assert response.status_code == 400, bad
        assert 'class="form-error"' in response.get_data(as_text=True)
        assert store_of(app).get_site(uid, site["id"]) == before, bad


def test_local_site_edit_and_other_users_site(app: Flask, client: FlaskClient,
                                              auth: AuthActions, other_client) -> None:
    uid = auth.signed_in()
    local = store_of(app).list_sites(uid)[0]
    response = client.post(f"/sites/{local.id}/edit", data={
        "name": "My archive", "kind": "local", "default_status": "publish", "gap_min": "30",
        "gap_max": "90", "csrf_token": auth.csrf_token()})
    assert response.status_code == 302
    assert store_of(app).get_site(uid, local.id).name == "My archive"
    bob_client, bob = other_client()
    bob.signed_in("bob@example.com")
    assert bob_client.get(f"/sites/{local.id}/edit").status_code == 404
    assert bob_client.post(f"/sites/{local.id}/edit", data={
        "name": "stolen", "csrf_token": bob.csrf_token()}).status_code == 404
    assert store_of(app).get_site(uid, local.id).name == "My archive"
    assert "/edit" in client.get("/sites").get_data(as_text=True)
