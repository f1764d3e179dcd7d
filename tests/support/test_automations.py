"""Test-only automation kind ``test`` and a recording publisher (never shipped in the product).

The live server loads this module through ``TICKZEN_EXTRA_AUTOMATIONS``; in-process tests put
``TestAutomation()`` into the registry directly. Timing is steered by the run's options, so a
test decides how long an item takes and where it waits:

- ``steps`` (default 3) progress steps per item, ``delay`` seconds each (default 0);
- ``gate``: a folder; each step waits until the file ``<gate>/open`` exists (checkpointing
  while it waits), so a test can hold a run mid-item and release it; ``gate_items`` (a list of
  names) limits the gate to those items;
- ``record``: a file; every ``process`` call appends ``process <key>`` (and the recording
  publisher appends ``publish <key>``), so a test counts calls across processes, even after
  ``kill -9``;
- an item named ``fail-...`` raises AutomationError; one named ``flaky-...`` fails until the
  file ``<gate or record dir>/heal`` exists.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from automation_scripts.base import (
    Article,
    AutomationError,
    InvalidItems,
    ItemContext,
    PreparedItem,
    slugify,
)
from automation_scripts.publishing import PublishResult
from storage.base import LedgerEntry, Store, utcnow


def _append(path: str | None, line: str) -> None:
    if not path:
        return
    # O_APPEND writes of one short line are atomic enough for counting across processes.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_record(path: str | Path) -> list[str]:
    """The lines a record file holds (empty when it does not exist yet)."""
    path = Path(path)
    return path.read_text().splitlines() if path.exists() else []


class TestAutomation:
    """``kind = "test"``: items are names (or ``{"name": ...}``); see the module docstring."""

    __test__ = False             # not a pytest test class
    kind = "test"

    def prepare(self, raw_items: list[Any], options: Mapping[str, Any], today: date
                ) -> tuple[list[PreparedItem], list[str]]:
        errors: list[str] = []
        notes: list[str] = []
        items: list[PreparedItem] = []
        seen: set[str] = set()
        for index, raw in enumerate(raw_items):
            name = raw.get("name") if isinstance(raw, dict) else raw
            if not isinstance(name, str) or not slugify(name) or "!" in name:
                errors.append(f"item {index + 1}: {raw!r} is not a valid name")
                continue
            key = f"{slugify(name)}-test"
            if key in seen:
                notes.append(f"duplicate removed: {name}")
                continue
            seen.add(key)
            items.append(PreparedItem(key=key, input={"name": name}, label=name))
        if errors:
            raise InvalidItems(errors)
        return items, notes

    def process(self, item: PreparedItem, ctx: ItemContext) -> Article:
        options = ctx.options
        name = item.input["name"]
        _append(options.get("record"), f"process {item.key}")
        steps = int(options.get("steps", 3))
        delay = float(options.get("delay", 0))
        gate = options.get("gate")
        if gate and "gate_items" in options and name not in options["gate_items"]:
            gate = None
        for step in range(steps):
            ctx.checkpoint()
            if gate:
                while not (Path(gate) / "open").exists():
                    ctx.checkpoint()
                    time.sleep(0.01)
            if delay:
                time.sleep(delay)
            ctx.progress("processing", f"{name}: step {step + 1}/{steps}",
                         percent=100 * (step + 1) / steps, data={"step": step + 1})
        ctx.checkpoint()
        if name.startswith("fail"):
            raise AutomationError(f"synthetic failure for {name}")
        record_dir = os.path.dirname(options["record"]) if options.get("record") else None
        heal_dir = options.get("gate") or record_dir
        if name.startswith("flaky") and not (heal_dir and (Path(heal_dir) / "heal").exists()):
            raise AutomationError(f"{name} is flaky and not healed yet")
        (ctx.workdir / "notes.txt").write_text(f"{name} processed\n")
        return Article(slug=item.key, title=f"Test article {name}",
                       html=f"<p>{name}</p>", excerpt=f"About {name}")


class RecordingPublisher:
    """The publishing service's two methods over the real ledger, recording each publish.

    Exactly-once like the real one: reserve the slug, return the existing post when the slug
    is already published, else "create" it and complete the entry.
    """

    __test__ = False

    def __init__(self, store: Store, record: str | Path | None = None,
                 fail_keys: set[str] | None = None) -> None:
        self.store = store
        self.record = str(record) if record else None
        self.fail_keys = fail_keys or set()
        self.calls: list[str] = []

    def already_published(self, user_id: str, site_id: str, slug: str, **_mode: Any
                          ) -> LedgerEntry | None:
        entry = self.store.get_post(user_id, site_id, slug)
        return entry if entry is not None and entry.status == "published" else None

    def publish(self, user_id: str, site_id: str, article: Article, *, run_id: str, kind: str,
                options: dict) -> PublishResult:
        self.calls.append(article.slug)
        if article.slug in self.fail_keys:
            from automation_scripts.publishing import TransientError

            raise TransientError(f"site unreachable while publishing {article.slug}")
        now = utcnow()
        entry, new = self.store.reserve_post(LedgerEntry(
            user_id=user_id, site_id=site_id, slug=article.slug, item_key=article.slug,
            kind=kind, run_id=run_id, day=now.date().isoformat(), title=article.title))
        if not new and entry.status == "published":
            return PublishResult(post_id=entry.post_id or "", post_url=entry.post_url or "",
                                 status="publish", existed=True)
        post_id = f"post-{article.slug}"
        url = f"http://archive.invalid/{article.slug}/"
        _append(self.record, f"publish {article.slug}")
        self.store.complete_post(user_id, site_id, article.slug, post_id=post_id, post_url=url,
                                 title=article.title)
        return PublishResult(post_id=post_id, post_url=url, status="publish")


def create(settings: Mapping[str, Any]) -> list[TestAutomation]:
    """The hook ``TICKZEN_EXTRA_AUTOMATIONS`` calls."""
    return [TestAutomation()]
