"""The site option ``concurrency`` (how many items of a run publish to it at once) through the
sites JSON API: default 2, 1..8, anything else a 400 that stores nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

SECRET = "Zq7x Wv3k Lm9p Rt2s Yb6n Hc4d"


@pytest.fixture
def app(make_app, tmp_path: Path):
    return make_app(TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_ALLOW_PRIVATE_URLS=True)


def _wp(**changes):
    body = {"name": "Blog", "kind": "wordpress", "url": "http://127.0.0.1:9",
            "username": "editor", "app_password": SECRET}
    body.update(changes)
    return body


def test_concurrency_defaults_to_2_and_takes_1_to_8(app, client, auth):
    auth.signed_in()
    created = client.post("/api/sites", json=_wp(), headers=auth.headers())
    assert created.status_code == 201 and created.get_json()["concurrency"] == 2
    site_id = created.get_json()["id"]
    for value, stored in ((1, 1), (8, 8), ("4", 4)):
        patched = client.patch(f"/api/sites/{site_id}", json={"concurrency": value},
                               headers=auth.headers())
        assert patched.status_code == 200 and patched.get_json()["concurrency"] == stored
    renamed = client.patch(f"/api/sites/{site_id}", json={"name": "Other"},
                           headers=auth.headers())
    assert renamed.get_json()["concurrency"] == 4                # a PATCH keeps it
    assert client.get(f"/api/sites/{site_id}").get_json()["concurrency"] == 4
    made = client.post("/api/sites", json=_wp(name="Four", concurrency=4),
                       headers=auth.headers())
    assert made.status_code == 201 and made.get_json()["concurrency"] == 4


@pytest.mark.parametrize("value", [0, 9, -1, "many", 2.5, True, [2]])
def test_concurrency_outside_1_to_8_is_a_400_and_stores_nothing(app, client, auth, value):
    auth.signed_in()
    created = client.post("/api/sites", json=_wp(concurrency=value), headers=auth.headers())
    assert created.status_code == 400
    assert "concurrency" in created.get_json()["error"]
    sites = client.get("/api/sites").get_json()
    sites = sites["sites"] if isinstance(sites, dict) else sites
    assert [s["name"] for s in sites if s["name"] == "Blog"] == []
    site_id = client.post("/api/sites", json=_wp(), headers=auth.headers()).get_json()["id"]
    patched = client.patch(f"/api/sites/{site_id}", json={"concurrency": value},
                           headers=auth.headers())
    assert patched.status_code == 400
    assert client.get(f"/api/sites/{site_id}").get_json()["concurrency"] == 2


def _site_form(auth, **changes):
    form = {"name": "Archive two", "kind": "local", "default_status": "draft",
            "gap_min": "30", "gap_max": "90", "csrf_token": auth.csrf_token()}
    form.update(changes)
    return form


def test_the_add_site_form_sets_concurrency(app, client, auth):
    auth.signed_in()
    page = client.get("/sites").get_data(as_text=True)
    assert 'name="concurrency" type="number" min="1" max="8" value="2"' in page
    for name, value, stored in (("Default", "", 2), ("Four", "4", 4), ("One", " 1 ", 1),
                                ("Eight", "8", 8)):
        added = client.post("/sites", data=_site_form(auth, name=name, concurrency=value))
        assert added.status_code == 302, added.get_data(as_text=True)
        shown = {s["name"]: s for s in client.get("/api/sites").get_json()["sites"]}
        assert shown[name]["concurrency"] == stored


@pytest.mark.parametrize("value, message", [
    ("0", "concurrency must be between 1 and 8"), ("9", "concurrency must be between 1 and 8"),
    ("x", "concurrency must be a whole number"), ("-1", "concurrency must be between 1 and 8")])
def test_the_add_site_form_refuses_bad_concurrency(app, client, auth, value, message):
    auth.signed_in()
    before = client.get("/api/sites").get_json()["sites"]
    refused = client.post("/sites", data=_site_form(auth, concurrency=value))
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert f'<p class="form-error" role="alert">{message}</p>' in html
    assert 'value="Archive two"' in html                       # the form keeps what was typed
    assert client.get("/api/sites").get_json()["sites"] == before
