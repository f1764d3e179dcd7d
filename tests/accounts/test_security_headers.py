"""Every response carries the security headers: pages, API answers, errors, static files;
production adds HSTS. No template keeps inline script, event handlers or style attributes."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import AuthActions

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _check(response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (name, response.request.path)
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


@pytest.mark.parametrize("path", ["/login", "/register", "/forgot-password", "/healthz",
                                  "/api/runs", "/nowhere", "/static/css/portal.css",
                                  "/api/openapi.json", "/api/docs"])
def test_headers_on_anonymous_responses(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    _check(response)
    assert "Strict-Transport-Security" not in response.headers


def test_headers_on_signed_in_pages_and_api_errors(client: FlaskClient,
                                                   auth: AuthActions) -> None:
    auth.signed_in()
    for path in ("/", "/sites", "/account", "/history", "/automation/stock", "/api/account",
                 "/api/runs/missing"):
        _check(client.get(path))
    _check(client.post("/api/sites", json={"name": ""}, headers=auth.headers()))


def test_production_adds_hsts(make_app: Callable[..., Flask]) -> None:
    app = make_app(ENV_NAME="production", SECRET_KEY="k" * 32,
                   TICKZEN_SECRETS_KEY="ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=")
    response = app.test_client().get("/healthz")
    _check(response)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>",
                           re.I)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
STYLE_ATTR = re.compile(r"\sstyle\s*=", re.I)


def test_templates_hold_no_inline_script_handlers_or_styles() -> None:
    problems = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for rule, name in ((INLINE_SCRIPT, "inline <script>"), (HANDLER, "on* handler"),
                           (STYLE_ATTR, "style attribute"), (re.compile(r"<style", re.I),
                                                             "<style> element")):
            if rule.search(text):
                problems.append(f"{path.relative_to(ROOT)}: {name}")
    assert problems == []
