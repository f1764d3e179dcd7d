"""The sites JSON API and /sites page through the Flask test client (real SQLite store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AuthActions

SECRET = "Zq7x Wv3k Lm9p Rt2s Yb6n Hc4d"


@pytest.fixture
def app(make_app, tmp_path: Path):
    return make_app(TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_ALLOW_PRIVATE_URLS=True)


def _wp(**changes: Any) -> dict[str, Any]:
    body = {"name": "My blog", "kind": "wordpress", "url": "http://127.0.0.1:9",
            "username": "editor", "app_password": SECRET, "default_status": "publish",
            "category": "Markets", "tags": ["stocks", "daily"], "daily_limit": 5}
    body.update(changes)
    return body


def _post(client, auth: AuthActions, path: str, body: Any):
    return client.post(path, json=body, headers=auth.headers())


def _count_sites(app) -> int:
    """Sites the tests created (not the "Local archive" every account starts with)."""
    store = app.extensions["tickzen"].store
    with app.app_context():
        return sum(1 for u in _user_ids(app) for s in store.list_sites(u)
                   if s.name != "Local archive")


def _user_ids(app) -> list[str]:
    import sqlite3

    path = app.config["TICKZEN_STORE"][len("sqlite:///"):]
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT id FROM users")]


def test_create_list_get_patch_delete_never_show_the_password(app, client, auth):
    auth.signed_in()
    created = _post(client, auth, "/api/sites", _wp())
    assert created.status_code == 201, created.get_json()
    site = created.get_json()
    assert site["has_password"] is True and site["name"] == "My blog"
    assert site["tags"] == ["stocks", "daily"] and site["daily_limit"] == 5
    answers = [created, client.get("/api/sites"), client.get(f"/api/sites/{site['id']}")]
    patched = client.patch(f"/api/sites/{site['id']}", json={"name": "Renamed"},
                           headers=auth.headers())
    assert patched.status_code == 200 and patched.get_json()["name"] == "Renamed"
    answers += [patched, client.get("/sites")]
    for answer in answers:
        text = answer.get_data(as_text=True)
        assert SECRET not in text and SECRET.replace(" ", "") not in text
        assert SECRET[-4:] not in text
    # PATCH without a password kept the old one (still decryptable to the same secret).
    store, secrets = app.extensions["tickzen"].store, app.extensions["tickzen"].secrets
    user_id = _user_ids(app)[0]
    stored = store.get_site(user_id, site["id"])
    assert secrets.decrypt(stored.app_password_enc) == SECRET
    # At rest: no database file (main, WAL, journal) contains the password; the stored
    # username does appear, which shows the scan reads what the store wrote.
    db = Path(app.config["TICKZEN_STORE"][len("sqlite:///"):])
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert b"editor" in raw
    assert SECRET.encode() not in raw and SECRET.replace(" ", "").encode() not in raw
    assert client.delete(f"/api/sites/{site['id']}", headers=auth.headers()).status_code == 200
    assert client.get(f"/api/sites/{site['id']}").status_code == 404


@pytest.mark.parametrize("body, fragment", [
    ({"kind": "local"}, "name is required"),
    ({"name": "x", "kind": "ftp"}, "kind"),
    (_wp(url="ftp://example.com"), "http"),
    (_wp(url="javascript:alert(1)"), "http"),
    (_wp(url="http://user:pw@example.com"), "credentials"),
    (_wp(url=""), "url is required"),
    (_wp(username=""), "username"),
    (_wp(app_password=""), "app_password"),
    (_wp(daily_limit=-1), "daily_limit"),
    (_wp(daily_limit=10**9), "daily_limit"),
    (_wp(daily_limit="lots"), "daily_limit"),
    (_wp(daily_limit=True), "daily_limit"),
    (_wp(default_status="scheduled"), "default_status"),
    (_wp(gap_minutes=[90, 30]), "min"),
    (_wp(gap_minutes=[-5, 30]), "negative"),
    (_wp(gap_minutes="often"), "gap_minutes"),
    (_wp(tags=[1, 2]), "tags"),
    (_wp(name="n" * 500), "name"),
    (_wp(authors=[{"username": "bob"}]), "app_password"),
    ([1, 2, 3], "JSON object"),
    ("not json", "JSON object"),
])
def test_bad_inputs_are_400_json_and_store_nothing(app, client, auth, body, fragment):
    auth.signed_in()
    answer = _post(client, auth, "/api/sites", body)
    assert answer.status_code == 400
    assert fragment in answer.get_json()["error"]
    assert _count_sites(app) == 0


def test_private_addresses_refused_when_not_allowed(make_app, tmp_path):
    app = make_app(TICKZEN_ALLOW_PRIVATE_URLS=False)
    client = app.test_client()
    auth = AuthActions(client)
    auth.signed_in()
    for url in ("http://127.0.0.1:8080", "http://localhost", "http://10.1.2.3",
                "http://192.168.0.10", "http://169.254.169.254/latest", "http://[::1]/",
                "http://0.0.0.0"):
        answer = _post(client, auth, "/api/sites", _wp(url=url))
        assert answer.status_code == 400, url
        assert "private or local" in answer.get_json()["error"] or "resolve" in \
            answer.get_json()["error"]
    assert _count_sites(app) == 0


def test_another_users_site_is_404_everywhere(app, client, auth):
    auth.signed_in("a@example.com")
    site = _post(client, auth, "/api/sites", {"name": "Mine", "kind": "local"}).get_json()
    other = app.test_client()
    other_auth = AuthActions(other)
    other_auth.signed_in("b@example.com")
    assert other.get(f"/api/sites/{site['id']}").status_code == 404
    assert other.patch(f"/api/sites/{site['id']}", json={"name": "x"},
                       headers=other_auth.headers()).status_code == 404
    assert other.delete(f"/api/sites/{site['id']}", headers=other_auth.headers()
                        ).status_code == 404
    assert other.post(f"/api/sites/{site['id']}/test", headers=other_auth.headers()
                      ).status_code == 404
    assert [s["name"] for s in other.get("/api/sites").get_json()["sites"]] == [
        "Local archive"]                                  # only b's own starter site
    assert client.get(f"/api/sites/{site['id']}").get_json()["name"] == "Mine"


def test_api_needs_login_and_csrf(app, client, auth):
    assert client.get("/api/sites").status_code == 401
    auth.signed_in()
    no_csrf = client.post("/api/sites", json={"name": "x", "kind": "local"})
    assert no_csrf.status_code == 400 and "CSRF" in no_csrf.get_json()["error"]
    assert _count_sites(app) == 0


def test_local_site_test_connection_is_ok(app, client, auth):
    auth.signed_in()
    site = _post(client, auth, "/api/sites", {"name": "Archive", "kind": "local"}).get_json()
    answer = _post(client, auth, f"/api/sites/{site['id']}/test", None)
    assert answer.status_code == 200 and answer.get_json()["ok"] is True


def test_sites_page_form_adds_and_shows_errors(app, client, auth):
    auth.signed_in()
    page = client.get("/sites")
    assert page.status_code == 200 and b"Local archive" in page.data   # the starter site
    bad = client.post("/sites", data={"name": "", "kind": "local",
                                      "csrf_token": auth.csrf_token()})
    assert bad.status_code == 400 and b"name is required" in bad.data
    good = client.post("/sites", data={"name": "<b>Archive</b>", "kind": "local",
                                       "default_status": "draft", "gap_min": "10",
                                       "gap_max": "20", "csrf_token": auth.csrf_token()},
                       follow_redirects=True)
    assert good.status_code == 200
    assert b"&lt;b&gt;Archive&lt;/b&gt;" in good.data and b"<b>Archive</b>" not in good.data
    assert b"Test connection" in good.data
    wp = client.post("/sites", data={"name": "WP", "kind": "wordpress",
                                     "url": "http://127.0.0.1:9", "username": "u",
                                     "app_password": SECRET, "csrf_token": auth.csrf_token()},
                     follow_redirects=True)
    assert wp.status_code == 200 and SECRET.encode() not in wp.data
    failed = client.post("/sites", data={"name": "WP2", "kind": "wordpress", "url": "nope",
                                         "username": "u", "app_password": SECRET,
                                         "csrf_token": auth.csrf_token()})
    assert failed.status_code == 400 and SECRET.encode() not in failed.data
