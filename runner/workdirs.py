"""Where an item's files live: one owner for the folder's name and its root.

An automation writes its charts and reports into ``<root>/<run id>/<position>-<key>``; the
runner records that folder in the item's result, and the portal finds it again through
``Workdirs.locate`` (never outside the run's folder, so a recorded path cannot point elsewhere).
"""

from __future__ import annotations

from pathlib import Path

MAX_NAME = 120          # the folder name is cut here: keys can be long, file systems are not


def item_dirname(position: int, key: str) -> str:
    """The folder name of an item: its 0-padded position and its key, at most MAX_NAME long."""
    return f"{position:04d}-{key}"[:MAX_NAME]


class Workdirs:
    """The item workdirs under one root folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def for_run(self, run_id: str) -> Path:
        """The folder that holds every item folder of a run."""
        return self.root / run_id

    def for_item(self, run_id: str, position: int, key: str) -> Path:
        """The item's own folder (not created here)."""
        return self.for_run(run_id) / item_dirname(position, key)

    def locate(self, run_id: str, position: int, recorded: str | None, *,
               holding: str) -> Path | None:
        """The item's folder that holds the file ``holding``, or None.

        The folder ``recorded`` in the item's result is tried first, then any folder of that
        position (a result written before the folder was recorded); only folders inside the
        run's folder count, so neither a stored path nor a run id can lead out of the root.
        """
        root = self.root.resolve()
        run_dir = root / run_id
        candidates = [Path(recorded)] if recorded else []
        candidates += sorted(run_dir.glob(f"{position:04d}-*"))
        for folder in candidates:
            folder = folder.resolve()
            if folder.is_relative_to(run_dir) and (folder / holding).is_file():
                return folder
        return None
