"""The app's long-lived services (store, run manager ...), built once per app by ``init_app``.

The automation registry is built here: each product kind is registered only when its module
imports, so the portal starts while a pipeline is broken or absent (config
``TICKZEN_AUTOMATION_MODULES``, comma-separated, narrows the product modules loaded). Tests add
their own kinds through ``TICKZEN_EXTRA_AUTOMATIONS`` (comma-separated module names, each with
``create(settings)`` returning one automation or a list); nothing test-only ships.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from flask_socketio import SocketIO

from portal.config import allow_private_urls, automation_settings, instance_host
from portal.outbox import delivery_worker, notices_for
from runner.campaigns import CampaignService
from runner.generation import generation_processes
from runner.manager import RunManager
from runner.publishing import PublishingService
from runner.retention import Retention, RetentionJob
from runner.scheduler import Scheduler
from storage import open_store
from storage.base import Store
from storage.secrets import SecretBox

log = logging.getLogger(__name__)

PRODUCT_AUTOMATIONS = ("automation_scripts.stock", "automation_scripts.earnings",
                       "automation_scripts.sports")

Emit = Callable[[str, dict[str, Any], str], None]


@dataclass
class Services:
    store: Store
    runs: Any = None          # runner.manager.RunManager
    publishing: Any = None    # runner.publishing.PublishingService
    secrets: Any = None       # storage.secrets.SecretBox (app passwords at rest)
    automations: dict[str, Any] = field(default_factory=dict)   # kind -> Automation
    campaigns: Any = None     # runner.campaigns.CampaignService
    scheduler: Any = None     # runner.scheduler.Scheduler (ticking while the runner runs)
    delivery: Any = None      # runner.delivery.DeliveryWorker (the outbox, while the runner runs)
    retention: Any = None     # runner.retention.Retention (the daily job runs on the scheduler)


def init_app(app: Flask) -> None:
    """Build the app's services into ``app.extensions['tickzen']`` (after its Socket.IO)."""
    app.extensions["tickzen"] = build_services(app)


def emitter(socketio: SocketIO) -> Emit:
    """``emit(event, payload, room)`` through this app's own Socket.IO object (never another
    app's: each app builds its own), as the runner expects it."""

    def emit(event: str, payload: dict[str, Any], room: str) -> None:
        socketio.emit(event, payload, to=room)

    return emit


def build_services(app: Flask) -> Services:
    """Open the store, build publishing, automations and the run manager; recover runs."""
    store = app.config.get("TICKZEN_STORE_OBJECT") or open_store(app.config["TICKZEN_STORE"])
    settings = automation_settings(app)
    automations = load_automations(settings)
    secrets = _secret_box(app)
    publishing = app.config.get("TICKZEN_PUBLISHING_OBJECT") or _publishing(app, store, secrets)
    notices = notices_for(app, store)
    runs = RunManager(
        store, emitter(app.extensions["socketio"]), automations, publishing,
        max_runs=int(app.config["TICKZEN_MAX_RUNS"]),
        max_runs_per_user=int(app.config["TICKZEN_MAX_RUNS_PER_USER"]),
        max_items=int(app.config["TICKZEN_MAX_ITEMS"]),
        workdir_root=app.config["TICKZEN_WORKDIR"],
        progress_max_per_second=float(app.config["PROGRESS_MAX_PER_SECOND"]),
        lease_seconds=float(app.config["TICKZEN_LEASE_SECONDS"]),
        autostart=bool(app.config["TICKZEN_START_RUNNER"]),
        automation_settings=settings,
        instance_id=instance_id(),
        takeover=bool(app.config.get("SOCKETIO_MESSAGE_QUEUE")),
        notices=notices,
        generation_processes=generation_processes(app.config.get("TICKZEN_GENERATION_PROCESSES")),
    )
    campaigns = CampaignService(
        store, runs, publishing, settings=settings,
        min_interval_seconds=int(app.config["TICKZEN_MIN_INTERVAL_SECONDS"]))
    retention = Retention(store, runs.workdirs, int(app.config["TICKZEN_RETENTION_DAYS"]),
                          archive_dir=app.config["TICKZEN_ARCHIVE_DIR"])
    scheduler = Scheduler(campaigns, tick_seconds=float(app.config["TICKZEN_SCHEDULER_TICK"]),
                          jobs=[RetentionJob(retention, owner=runs.instance_id)])
    delivery = delivery_worker(app, store, emit=emitter(app.extensions["socketio"]),
                               secrets=secrets, notices=notices, owner=runs.instance_id)
    if runs.autostart:
        runs.recover(auto_resume=bool(app.config.get("TICKZEN_AUTO_RESUME")),
                     single_instance=not app.config.get("SOCKETIO_MESSAGE_QUEUE"))
        scheduler.start()
        atexit.register(scheduler.stop)
        delivery.start()
        atexit.register(delivery.stop)
    return Services(store=store, runs=runs, publishing=publishing, secrets=secrets,
                    automations=automations, campaigns=campaigns, scheduler=scheduler,
                    delivery=delivery,
                    retention=retention)


def instance_id() -> str:
    """This process's name as a run owner: the instance (App Service's or the host), the pid,
    and a random part, so logs and ``runs.owner`` say which server holds a run."""
    return f"{instance_host()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _names(value: Any) -> list[str]:
    return [n.strip() for n in str(value or "").split(",") if n.strip()]


def load_automations(settings: Mapping[str, Any]) -> dict[str, Any]:
    """kind -> Automation for every product module that imports, plus the configured extras,
    each built with ``settings``."""
    product = settings.get("TICKZEN_AUTOMATION_MODULES")
    names = (list(PRODUCT_AUTOMATIONS) if product is None else _names(product)) + _names(
        settings.get("TICKZEN_EXTRA_AUTOMATIONS"))
    registry: dict[str, Any] = {}
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


def _secret_box(app: Flask) -> SecretBox:
    """The Fernet box for app passwords (development keeps a generated key under instance/)."""
    return SecretBox.from_environment(app.config.get("TICKZEN_SECRETS_KEY"), app.instance_path,
                                      allow_generate=app.config.get("ENV_NAME") != "production")


def _publishing(app: Flask, store: Store, secrets: SecretBox) -> PublishingService:
    """The real PublishingService (the local archive lives under instance/archive)."""
    archive = app.config["TICKZEN_ARCHIVE_DIR"]
    return PublishingService(store, secrets, archive_dir=archive,
                             allow_private_urls=allow_private_urls(app.config))


def services() -> Services:
    """The current app's services."""
    return current_app.extensions["tickzen"]
