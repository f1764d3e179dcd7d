"""SQLite day totals (see storage._day_totals): two tables kept by triggers on ``posts`` and
``runs``, so every write of those tables, whatever path makes it (a publish, an item's
transition, a site's cascade, bulk seeding, an older version of the portal on the same file),
changes them in its own transaction.

- ``post_day_totals(user_id, day, site_id, kind, count)``: published entries by the UTC day
  of ``published_at``; an entry counts while it is published, wherever it moves.
- ``run_day_totals(user_id, day, runs, published, failed)``: runs by the UTC day of
  ``created_at`` with the sums of their ``counts.published`` / ``counts.failed``; a change of
  counts takes the run's old figures out and puts its new ones in, so a retry or a re-count
  never counts twice.

Removals only ever ``UPDATE`` (a row is there since its record was added), so deleting an
account, which empties these tables by their ``user_id`` in any order, leaves nothing behind.
A file made before the totals existed is backfilled from its rows once, in the transaction
that creates the tables and triggers (marked in ``day_totals_built``), so no write falls
between the two.
"""

from __future__ import annotations

_PUBLISHED_OLD = "OLD.status = 'published' AND OLD.published_at IS NOT NULL"
_PUBLISHED_NEW = "NEW.status = 'published' AND NEW.published_at IS NOT NULL"
_POST_OLD_KEY = ("user_id = OLD.user_id AND day = substr(OLD.published_at, 1, 10) "
                 "AND site_id = OLD.site_id AND kind = OLD.kind")
_POST_ADD = """
    INSERT INTO post_day_totals (user_id, day, site_id, kind, count)
    VALUES (NEW.user_id, substr(NEW.published_at, 1, 10), NEW.site_id, NEW.kind, 1)
    ON CONFLICT (user_id, day, site_id, kind) DO UPDATE SET count = count + 1;
"""
_POST_FIELDS = "user_id, site_id, kind, status, published_at"


def _count(record: str, state: str) -> str:
    return f"COALESCE(json_extract({record}.counts, '$.{state}'), 0)"


_RUN_ADD = f"""
    INSERT INTO run_day_totals (user_id, day, runs, published, failed)
    VALUES (NEW.user_id, substr(NEW.created_at, 1, 10), 1, {_count("NEW", "published")},
            {_count("NEW", "failed")})
    ON CONFLICT (user_id, day) DO UPDATE SET runs = runs + 1,
        published = published + excluded.published, failed = failed + excluded.failed;
"""
_RUN_REMOVE = f"""
    UPDATE run_day_totals SET runs = runs - 1,
        published = published - {_count("OLD", "published")},
        failed = failed - {_count("OLD", "failed")}
    WHERE user_id = OLD.user_id AND day = substr(OLD.created_at, 1, 10);
"""
_RUN_MOVED = (f"OLD.user_id IS NOT NEW.user_id OR OLD.created_at IS NOT NEW.created_at "
              f"OR {_count('OLD', 'published')} != {_count('NEW', 'published')} "
              f"OR {_count('OLD', 'failed')} != {_count('NEW', 'failed')}")

# One row until the backfill is done, none after: as the outer loop of a CROSS JOIN it keeps
# every later opening of the file from scanning posts and runs (a WHERE NOT EXISTS would).
_NOT_BUILT = "(SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM day_totals_built))"

DAY_TOTALS_SCHEMA = f"""
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS post_day_totals (
    user_id TEXT NOT NULL,
    day     TEXT NOT NULL,
    site_id TEXT NOT NULL,
    kind    TEXT NOT NULL,
    count   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, site_id, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_day_totals (
    user_id   TEXT NOT NULL,
    day       TEXT NOT NULL,
    runs      INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS day_totals_built (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    built_at TEXT NOT NULL
);

INSERT INTO post_day_totals (user_id, day, site_id, kind, count)
    SELECT user_id, substr(published_at, 1, 10), site_id, kind, COUNT(*)
    FROM {_NOT_BUILT} CROSS JOIN posts
    WHERE status = 'published' AND published_at IS NOT NULL
    GROUP BY 1, 2, 3, 4;
INSERT INTO run_day_totals (user_id, day, runs, published, failed)
    SELECT user_id, substr(created_at, 1, 10), COUNT(*),
        COALESCE(SUM(json_extract(counts, '$.published')), 0),
        COALESCE(SUM(json_extract(counts, '$.failed')), 0)
    FROM {_NOT_BUILT} CROSS JOIN runs
    GROUP BY 1, 2;
INSERT OR IGNORE INTO day_totals_built (id, built_at)
    VALUES (1, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'));

CREATE TRIGGER IF NOT EXISTS post_day_totals_insert AFTER INSERT ON posts
WHEN {_PUBLISHED_NEW} BEGIN {_POST_ADD} END;
CREATE TRIGGER IF NOT EXISTS post_day_totals_leave AFTER UPDATE OF {_POST_FIELDS} ON posts
WHEN {_PUBLISHED_OLD} BEGIN
    UPDATE post_day_totals SET count = count - 1 WHERE {_POST_OLD_KEY};
END;
CREATE TRIGGER IF NOT EXISTS post_day_totals_enter AFTER UPDATE OF {_POST_FIELDS} ON posts
WHEN {_PUBLISHED_NEW} BEGIN {_POST_ADD} END;
CREATE TRIGGER IF NOT EXISTS post_day_totals_delete AFTER DELETE ON posts
WHEN {_PUBLISHED_OLD} BEGIN
    UPDATE post_day_totals SET count = count - 1 WHERE {_POST_OLD_KEY};
END;

CREATE TRIGGER IF NOT EXISTS run_day_totals_insert AFTER INSERT ON runs BEGIN {_RUN_ADD} END;
CREATE TRIGGER IF NOT EXISTS run_day_totals_update AFTER UPDATE OF user_id, created_at, counts
ON runs WHEN {_RUN_MOVED} BEGIN {_RUN_REMOVE} {_RUN_ADD} END;
CREATE TRIGGER IF NOT EXISTS run_day_totals_delete AFTER DELETE ON runs BEGIN {_RUN_REMOVE} END;
COMMIT;
"""
