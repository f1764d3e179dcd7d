"""The OpenAPI document covers every /api/ route and method with request and answer schemas,
the reference page renders it, and schemathesis, run against the live server with a bearer
token, finds no server error and no answer that breaks its schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.openapi import api_rules, openapi_path
from tests.support.live_server import unique_email

# Operations that reach hosts outside this machine (a site's WordPress, feeds, market data):
# the fuzzer must not make the portal call out; they are covered by their own tests.
OUTSIDE_CALLS = ("/api/sites/{site_id}/test", "/api/sports/stories", "/api/earnings/calendar")
# Revoking the fuzzer's own token (it learns ids from answers) would leave it testing 401s.
NOT_FUZZED = OUTSIDE_CALLS + ("/api/tokens/{token_id}",)
MAX_EXAMPLES = 8


def test_every_api_route_and_method_is_in_the_document(app: Flask,
                                                       client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    missing = []
    for rule, method in api_rules(app):
        path, _ = openapi_path(rule)
        if method.lower() not in document["paths"].get(path, {}):
            missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert missing == [], "undocumented API routes (add an Operation in portal/api_models):\n" \
        + "\n".join(missing)
    documented = {(p, m) for p, ops in document["paths"].items() for m in ops}
    routed = {(openapi_path(r)[0], m.lower()) for r, m in api_rules(app)}
    assert documented == routed


def test_each_operation_declares_its_shapes(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert "Error" in schemas
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            answers = op["responses"]
            success = [s for s in answers if s.startswith("2")]
            assert success, (method, path)
            for status in success:
                assert answers[status]["content"], (method, path, status)
            assert "500" in answers
            if method in ("post", "put", "patch") and "{action}" not in path \
                    and not path.endswith(("/run", "/test", "/retry")):
                assert "requestBody" in op, (method, path)
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    assert "{" + param["name"] + "}" in path
    tokens = document["paths"]["/api/tokens"]["post"]
    body = tokens["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schemas[body.rsplit("/", 1)[1]]["properties"]["name"]["maxLength"] == 100


def test_reference_page_is_served_without_sign_in(client: FlaskClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "js/api_docs.js" in html and "/api/openapi.json" in html
    assert client.get("/static/js/api_docs.js").status_code == 200


@pytest.mark.slow
def test_schemathesis_finds_nothing_against_the_live_server(live_server_factory,
                                                            tmp_path: Path,
                                                            monkeypatch) -> None:
    # Anything the portal would send to another host goes to a dead proxy on loopback.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = live_server_factory(TICKZEN_AUTOMATION_MODULES="",
                                 TICKZEN_TOKEN_RATE_LIMIT="100000 per minute").start()
    session = server.register(unique_email("fuzz"))
    made = session.post(f"{server.url}/api/tokens", json={"name": "schemathesis"}, timeout=10)
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    exe = Path(sys.executable).with_name("schemathesis")
    command = [str(exe), "run", f"{server.url}/api/openapi.json",
               "-H", f"Authorization: Bearer {token}",
               "--checks", "not_a_server_error,response_schema_conformance",
               "--phases", "examples,coverage,fuzzing",
               "--max-examples", str(MAX_EXAMPLES), "--seed", "1", "--workers", "1",
               "--request-timeout", "20", "--no-color",
               "--report", "ndjson", "--report-dir", str(tmp_path / "report")]
    for path in NOT_FUZZED:
        command += ["--exclude-path", path]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:] + "\n--- server log ---\n" + \
        server.log_tail(60)
    print(output[-3000:])
    # The token was used (the run really was authenticated).
    listed = session.get(f"{server.url}/api/tokens", timeout=10).json()["tokens"]
    assert any(t["name"] == "schemathesis" and t["last_used_at"] for t in listed), \
        json.dumps(listed)
