"""A signed-in user driving runs through the real HTTP API (shared by the earnings and sports
end-to-end tests): create sites, start a run, wait for it to finish."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask

from tests.conftest import AuthActions


class Member:
    def __init__(self, app: Flask, email: str = "e2e@example.com") -> None:
        self.app = app
        self.client = app.test_client()
        self.auth = AuthActions(self.client)
        self.user_id = self.auth.signed_in(email)
        self.token = self.auth.csrf_token()

    def send(self, method: str, path: str, body: Any = None):
        return self.client.open(path, method=method, json=body,
                                headers={"X-CSRFToken": self.token})

    def site(self, **fields: Any) -> str:
        response = self.send("POST", "/api/sites", fields)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def start(self, kind: str, site_id: str, items: list, **options: Any) -> str:
        response = self.send("POST", "/api/runs", {"kind": kind, "site_id": site_id,
                                                   "items": items, "options": options})
        assert response.status_code == 202, response.get_json()
        return response.get_json()["run_id"]

    def wait(self, run_id: str, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        run: dict = {}
        while time.monotonic() < deadline:
            run = self.client.get(f"/api/runs/{run_id}").get_json()
            if run["status"] in ("completed", "failed", "cancelled"):
                self.app.extensions["tickzen"].runs.join(run_id)
                return self.client.get(f"/api/runs/{run_id}").get_json()
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} stayed {run.get('status')}")
