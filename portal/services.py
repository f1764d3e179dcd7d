"""The app's long-lived services (store, run manager ...), built once per app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from storage.base import Store, open_store


@dataclass
class Services:
    store: Store
    runs: Any = None          # runner.manager.RunManager (issue 3)


def build_services(app: Flask) -> Services:
    store = app.config.get("TICKZEN_STORE_OBJECT") or open_store(app.config["TICKZEN_STORE"])
    return Services(store=store)


def services() -> Services:
    return current_app.extensions["tickzen"]
