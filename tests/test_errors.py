"""The one error handler: a domain error raised in a view answers with the status its class
carries, as ``{error, details?}`` JSON under /api and as an HTML page elsewhere, never with a
traceback; views pick no statuses themselves."""

from __future__ import annotations

import pytest
from flask import Flask

from portal.errors import InvalidRequest, NotFound, PayloadTooLarge, UpstreamFailed
from runner.errors import InvalidRun, RunNotFound, TransitionNotAllowed
from storage.base import ConflictError, DailyLimitReached, DuplicateError, NotFoundError
from tests.test_run_views import make_run

DOMAIN_ERRORS = [
    (RunNotFound("run not found"), 404),
    (TransitionNotAllowed("a completed run cannot be paused", "completed"), 409),
    (InvalidRun("no usable items"), 400),
    (NotFoundError("site not found"), 404),
    (DuplicateError("email already registered"), 409),
    (ConflictError("the run is not running", "paused"), 409),
    (DailyLimitReached("the site's daily limit is reached"), 409),
    (InvalidRequest("limit must be 1..200"), 400),
    (NotFound("nothing here"), 404),
    (PayloadTooLarge("the file is larger than 5 MB"), 413),
    (UpstreamFailed("finnhub is unreachable"), 502),
]


def _raising_app(make_app, error: Exception) -> Flask:
    app = make_app()

    def boom():
        raise error

    app.add_url_rule("/api/domain", "api_domain", boom)
    app.add_url_rule("/domain", "page_domain", boom)
    return app


@pytest.mark.parametrize(("error", "status"), DOMAIN_ERRORS,
                         ids=[type(e).__name__ for e, _ in DOMAIN_ERRORS])
def test_a_domain_error_answers_with_its_own_status(make_app, error, status) -> None:
    client = _raising_app(make_app, error).test_client()

    api = client.get("/api/domain")
    assert api.status_code == status and api.is_json
    assert api.get_json() == {"error": str(error)}

    page = client.get("/domain")
    assert page.status_code == status and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert str(error).replace("'", "&#39;") in text
    assert "Traceback" not in text and 'name="csrf-token"' in text


def test_details_go_out_beside_the_error(make_app) -> None:
    error = InvalidRun("some items are invalid", ["item 2: 'bad!' is not a valid name"])
    api = _raising_app(make_app, error).test_client().get("/api/domain")
    assert api.status_code == 400
    assert api.get_json() == {"error": "some items are invalid",
                              "details": ["item 2: 'bad!' is not a valid name"]}


def test_an_error_without_a_status_stays_a_logged_500(make_app) -> None:
    class Unmapped(Exception):
        pass

    client = _raising_app(make_app, Unmapped("secret internals")).test_client()
    api = client.get("/api/domain")
    assert api.status_code == 500
    assert api.get_json() == {"error": "Something went wrong on our side. It has been logged."}
    assert "secret internals" not in client.get("/domain").get_data(as_text=True)


def test_another_users_run_is_a_not_found_page_and_answer(app, client, auth) -> None:
    owner = auth.signed_in("owner@example.com")
    run = make_run(app, owner)
    auth.logout()
    auth.signed_in("other@example.com")
    page = client.get(f"/runs/{run.id}")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "run not found" in page.get_data(as_text=True)
    report = client.get(f"/runs/{run.id}/items/0/report")
    assert report.status_code == 404 and "run not found" in report.get_data(as_text=True)
    api = client.get(f"/api/runs/{run.id}")
    assert api.status_code == 404 and api.get_json() == {"error": "run not found"}


def test_unknown_site_and_action_are_404_json(app, client, auth) -> None:
    auth.signed_in()
    headers = auth.headers()
    for call in (client.get("/api/sites/nope"), client.delete("/api/sites/nope", headers=headers),
                 client.patch("/api/sites/nope", json={"name": "x"}, headers=headers),
                 client.post("/api/sites/nope/test", headers=headers),
                 client.get("/api/sports/stories?site_id=nope")):
        assert call.status_code == 404 and call.get_json() == {"error": "site not found"}
    steer = client.post("/api/runs/whatever/explode", headers=headers)
    assert steer.status_code == 404 and steer.get_json() == {"error": "unknown action 'explode'"}
