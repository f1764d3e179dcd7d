"""The cap on LLM calls per run (``TICKZEN_LLM_MAX_CALLS``): a counter every item of a run shares.

A run's items are written in several threads and, for CPU-bound kinds, in several generation
processes, so the count lives in a small file in the run's own folder, changed under an
exclusive ``flock``: every writer of the run sees the same count, and a resumed or retried run
(same folder) goes on counting where it stopped. Another instance taking the run over has its
own folder and counts afresh there (the cap bounds the cost, it is not a ledger).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COUNTER_FILE = "llm-calls"
DEFAULT_MAX_CALLS = 100             # TICKZEN_LLM_MAX_CALLS unset (0: no cap)


@dataclass(frozen=True)
class CallBudget:
    """At most ``limit`` LLM calls for one run, counted in ``path`` (0: no cap)."""

    path: Path
    limit: int

    @classmethod
    def for_item(cls, workdir: str | Path, settings: Mapping[str, Any]) -> CallBudget:
        """The budget of the run an item's workdir belongs to (``<root>/<run>/<item>``), capped
        by the settings' ``TICKZEN_LLM_MAX_CALLS``."""
        limit = settings.get("TICKZEN_LLM_MAX_CALLS")
        return cls(Path(workdir).parent / COUNTER_FILE,
                   DEFAULT_MAX_CALLS if limit is None else int(limit))

    def take(self) -> bool:
        """Count one call; False (and nothing counted) when the run has used its calls."""
        if self.limit <= 0:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 32).decode("ascii", "replace").strip()
            used = int(raw) if raw.isdigit() else 0
            if used >= self.limit:
                return False
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, str(used + 1).encode())
            return True
        finally:
            os.close(fd)                    # releases the lock

    def used(self) -> int:
        """How many calls the run has made so far."""
        try:
            raw = self.path.read_text(encoding="ascii").strip()
        except OSError:
            return 0
        return int(raw) if raw.isdigit() else 0
