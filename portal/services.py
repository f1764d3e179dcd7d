"""The app's long-lived services (store, run manager ...), built once per app.

The automation registry is built here: each product kind is registered only when its module
imports, so the portal starts while a pipeline is broken or absent (config
``TICKZEN_AUTOMATION_MODULES``, comma-separated, narrows the product modules loaded). Tests add
their own kinds through ``TICKZEN_EXTRA_AUTOMATIONS`` (config or environment: comma-separated
module names, each with ``create(settings)`` returning one automation or a list); nothing
test-only ships.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from storage import open_store
from storage.base import Store

log = logging.getLogger(__name__)

PRODUCT_AUTOMATIONS = ("automation_scripts.stock", "automation_scripts.earnings",
                       "automation_scripts.sports")


@dataclass
class Services:
    store: Store
    runs: Any = None          # runner.manager.RunManager
    publishing: Any = None    # runner.publishing.PublishingService
    secrets: Any = None       # storage.secrets.SecretBox (app passwords at rest)
    automations: dict[str, Any] = field(default_factory=dict)   # kind -> Automation


def build_services(app: Flask) -> Services:
    """Open the store, build publishing, automations and the run manager; recover runs."""
    from portal.extensions import socketio
    from runner.manager import RunManager

    store = app.config.get("TICKZEN_STORE_OBJECT") or open_store(app.config["TICKZEN_STORE"])
    settings = dict(app.config)
    settings["INSTANCE_PATH"] = app.instance_path
    automations = load_automations(settings)
    secrets = _secret_box(app)
    publishing = app.config.get("TICKZEN_PUBLISHING_OBJECT") or _publishing(app, store, secrets)
    instance = Path(app.instance_path)

    def emit(event: str, payload: dict[str, Any], room: str) -> None:
        socketio.emit(event, payload, to=room)

    runs = RunManager(
        store, emit, automations, publishing,
        max_runs=int(app.config.get("TICKZEN_MAX_RUNS", 8)),
        max_runs_per_user=int(app.config.get("TICKZEN_MAX_RUNS_PER_USER", 2)),
        max_items=int(app.config.get("TICKZEN_MAX_ITEMS", 500)),
        workdir_root=app.config.get("TICKZEN_WORKDIR") or instance / "runs",
        progress_max_per_second=float(app.config.get("PROGRESS_MAX_PER_SECOND", 2)),
        lease_seconds=float(app.config.get("TICKZEN_LEASE_SECONDS", 30)),
        autostart=bool(app.config.get("TICKZEN_START_RUNNER", True)),
        services={"settings": settings},
        instance_id=instance_id(),
        takeover=bool(app.config.get("SOCKETIO_MESSAGE_QUEUE")),
    )
    if runs.autostart:
        runs.recover(auto_resume=bool(app.config.get("TICKZEN_AUTO_RESUME")),
                     single_instance=not app.config.get("SOCKETIO_MESSAGE_QUEUE"))
    return Services(store=store, runs=runs, publishing=publishing, secrets=secrets,
                    automations=automations)


def instance_id() -> str:
    """This process's name as a run owner: the Azure instance (WEBSITE_INSTANCE_ID) or the host,
    the pid, and a random part, so logs and ``runs.owner`` say which server holds a run."""
    where = os.environ.get("WEBSITE_INSTANCE_ID") or socket.gethostname() or "host"
    return f"{where[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def load_automations(settings: Mapping[str, Any]) -> dict[str, Any]:
    """kind -> Automation for every product module that imports, plus the configured extras."""
    registry: dict[str, Any] = {}
    extra = settings.get("TICKZEN_EXTRA_AUTOMATIONS") or os.environ.get(
        "TICKZEN_EXTRA_AUTOMATIONS", "")
    product = settings.get("TICKZEN_AUTOMATION_MODULES")
    product = PRODUCT_AUTOMATIONS if product is None else [
        n.strip() for n in str(product).split(",") if n.strip()]
    names = list(product) + [n.strip() for n in str(extra).split(",") if n.strip()]
    for name in names:
        try:
            module = importlib.import_module(name)
            made = module.create(settings)
        except Exception:   # one broken pipeline must not keep the portal down
            log.exception("automation module %s is unavailable", name)
            continue
        for automation in made if isinstance(made, (list, tuple)) else [made]:
            registry[automation.kind] = automation
    return registry


def _secret_box(app: Flask) -> Any:
    """The Fernet box for app passwords (development keeps a generated key under instance/)."""
    from storage.secrets import SecretBox

    return SecretBox.from_environment(app.config.get("TICKZEN_SECRETS_KEY"), app.instance_path,
                                      allow_generate=app.config.get("ENV_NAME") != "production")


def _publishing(app: Flask, store: Store, secrets: Any) -> Any:
    """The real PublishingService (the local archive lives under instance/archive)."""
    from runner.publishing import PublishingService

    archive = app.config.get("TICKZEN_ARCHIVE_DIR") or Path(app.instance_path) / "archive"
    return PublishingService(store, secrets, archive_dir=archive,
                             allow_private_urls=bool(
                                 app.config.get("TICKZEN_ALLOW_PRIVATE_URLS", True)))


def services() -> Services:
    return current_app.extensions["tickzen"]
