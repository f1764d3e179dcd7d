"""Pages: layout on every page, the dashboard, /healthz, and errors that never leak a traceback."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.services import services
from storage.base import NewItem, Run, Site
from tests.conftest import AuthActions

META = re.compile(r'<meta name="csrf-token" content="[^"]+">')


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "scheduler": "stopped",    # no runner here
                                   "scheduler_last_tick": None, "delivery": "stopped"}


def test_healthz_503_when_the_store_fails(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        services().store.close()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.is_json and response.get_json()["status"] == "unavailable"


def test_dashboard_requires_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.location == "/login?next=/"


@pytest.mark.parametrize("path", ["/login", "/register"])
def test_guest_pages_carry_layout(client: FlaskClient, path: str) -> None:
    body = client.get(path).get_data(as_text=True)
    assert META.search(body)
    assert 'name="viewport"' in body
    assert "Sign in" in body and "Register" in body
    assert "Sign out" not in body


def test_dashboard_layout_and_nav(client: FlaskClient, auth: AuthActions) -> None:
    auth.register("nav@example.com")
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert META.search(body)
    for href in ('href="/"', 'href="/automation/stock"', 'href="/automation/earnings"',
                 'href="/automation/sports"', 'href="/sites"', 'href="/history"'):
        assert href in body
    assert 'action="/logout"' in body and "nav@example.com" in body
    assert "Welcome to TickZen" in body               # the flash from registering
    assert "No runs yet" in body
    sites = body.split('id="sites"')[1]
    assert "<strong>Local archive</strong>" in sites     # the starter site of every account
    assert "No sites yet" not in sites
    # flashed once only
    assert "Welcome to TickZen" not in client.get("/").get_data(as_text=True)


def test_dashboard_lists_only_own_sites_and_runs(app: Flask, client: FlaskClient,
                                                 auth: AuthActions) -> None:
    other_id = auth.signed_in("other@example.com")
    auth.logout()
    user_id = auth.signed_in("owner@example.com")
    with app.app_context():
        store = services().store
        mine = store.create_site(user_id, Site(id="", user_id=user_id, name="My Archive",
                                               kind="local"))
        theirs = store.create_site(other_id, Site(id="", user_id=other_id, name="Not Mine",
                                                  kind="local"))
        active = store.create_run(Run(id="", user_id=user_id, kind="stock", site_id=mine.id),
                                  [NewItem(key="aapl-x", input="AAPL", label="AAPL")])
        done = store.create_run(Run(id="", user_id=user_id, kind="sports", site_id=mine.id),
                                [NewItem(key="story-x", input={}, label="Story")])
        store.transition_run(done.id, ["queued"], "running")
        store.transition_run(done.id, ["running"], "completed", percent=100)
        foreign = store.create_run(Run(id="", user_id=other_id, kind="earnings",
                                       site_id=theirs.id), [NewItem(key="k", input="MSFT")])
    body = client.get("/").get_data(as_text=True)
    assert "My Archive" in body and "Not Mine" not in body
    assert f"/runs/{active.id}" in body and f"/runs/{done.id}" in body
    assert f"/runs/{foreign.id}" not in body
    active_section = body.split('id="active-runs"')[1].split('id="recent-runs"')[0]
    assert f"/runs/{active.id}" in active_section
    assert f"/runs/{done.id}" not in active_section
    assert "completed" in body


def test_page_errors_are_html_without_traceback(make_app) -> None:
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    @app.get("/api/boom")
    def api_boom():
        raise RuntimeError("secret internals")

    client = app.test_client()
    page = client.get("/boom")
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "Something went wrong" in text
    assert "secret internals" not in text and "Traceback" not in text

    api = client.get("/api/boom")
    assert api.status_code == 500 and api.is_json
    assert api.get_json() == {"error": "Something went wrong on our side. It has been logged."}


def test_not_found_page_and_json(client: FlaskClient) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "There is nothing at this address." in page.get_data(as_text=True)
    api = client.get("/api/no-such-thing")
    assert api.status_code == 404 and api.is_json and "error" in api.get_json()


def test_method_not_allowed_keeps_allow_header(client: FlaskClient) -> None:
    response = client.put("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_api_needs_login_as_json(make_app) -> None:
    from flask_login import login_required

    app = make_app()

    @app.get("/api/private")
    @login_required
    def private():
        return {"ok": True}

    response = app.test_client().get("/api/private")
    assert response.status_code == 401
    assert response.get_json() == {"error": "login required"}
