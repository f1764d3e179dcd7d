"""The local archive: the built-in site, articles and images under
instance/archive/<user>/<site>/<slug>/, served by the portal at /sites/<site>/posts/<slug>.

article.json holds the post with its structured data (``json_ld``: Article and FAQPage,
always); an update in place moves the previous article.json to ``revisions/<n>.json`` and
gives the new images names of their own (``<name>-r<n>.png``), so every revision keeps its
charts."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from automation_scripts.base import Article
from automation_scripts.publishing import POST_STATUSES, PublishError, PublishResult, wp_date
from automation_scripts.publishing.safety import (
    SAFE_FILE_NAME,
    replace_image_placeholders,
    sanitize_html,
)
from automation_scripts.publishing.structured_data import article_json_ld

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def archive_path(archive_dir: str | os.PathLike[str], user_id: str, site_id: str,
                 slug: str | None = None) -> Path:
    """instance/archive/<user>/<site>[/<slug>], refusing ids that could escape the folder."""
    parts = [user_id, site_id] + ([slug] if slug is not None else [])
    for part in parts:
        if not isinstance(part, str) or not _SAFE_ID.match(part):
            raise ValueError(f"unsafe archive path component {part!r}")
    return Path(archive_dir, *parts)


def local_post_url(site_id: str, slug: str) -> str:
    return f"/sites/{site_id}/posts/{slug}"


def load_archived_article(archive_dir: str | os.PathLike[str], user_id: str, site_id: str,
                          slug: str) -> dict[str, Any] | None:
    """The stored article.json of a local-archive post, or None."""
    try:
        path = archive_path(archive_dir, user_id, site_id, slug) / "article.json"
    except ValueError:
        return None
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def archived_image_path(archive_dir: str | os.PathLike[str], user_id: str, site_id: str,
                        slug: str, filename: str) -> Path | None:
    """The stored image file of a local-archive post, or None (also for unsafe names)."""
    if not SAFE_FILE_NAME.match(filename) or filename == "article.json":
        return None
    try:
        path = archive_path(archive_dir, user_id, site_id, slug) / "images" / filename
    except ValueError:
        return None
    return path if path.is_file() else None


class LocalArchivePublisher:
    """The built-in target: articles and images under instance/archive/<user>/<site>/<slug>/,
    served by the portal at ``/sites/<site>/posts/<slug>``. article.json is written last
    (atomically), so its presence means "published"."""

    def __init__(self, archive_dir: str | os.PathLike[str], user_id: str, site_id: str,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.archive_dir = Path(archive_dir)
        self.user_id = user_id
        self.site_id = site_id
        self.clock = clock

    def find_existing(self, slug: str) -> PublishResult | None:
        stored = load_archived_article(self.archive_dir, self.user_id, self.site_id, slug)
        if stored is None:
            return None
        return PublishResult(slug, local_post_url(self.site_id, slug),
                             str(stored.get("status") or "publish"), existed=True)

    def publish(self, article: Article, *, status: str, date_gmt: datetime | None = None,
                run_id: str = "") -> PublishResult:
        return self._write(article, status=status, date_gmt=date_gmt, run_id=run_id)

    def update(self, post_id: str, article: Article, *, status: str, run_id: str
               ) -> PublishResult:
        """Update the post in place; the previous version becomes a revision."""
        return self._write(article, status=status, date_gmt=None, run_id=run_id, update=True)

    def applied_run(self, post_id: str) -> str:
        """The run whose content the post carries ("" when unknown)."""
        stored = load_archived_article(self.archive_dir, self.user_id, self.site_id, post_id)
        return str((stored or {}).get("run_id") or "")

    def _write(self, article: Article, *, status: str, date_gmt: datetime | None,
               run_id: str, update: bool = False) -> PublishResult:
        if status not in POST_STATUSES:
            raise PublishError(f"status must be one of {', '.join(POST_STATUSES)}")
        try:
            folder = archive_path(self.archive_dir, self.user_id, self.site_id, article.slug)
        except ValueError as exc:
            raise PublishError(f"invalid slug {article.slug!r}") from exc
        previous = load_archived_article(self.archive_dir, self.user_id, self.site_id,
                                         article.slug) if update else None
        revision = int((previous or {}).get("revision") or 1) + 1 if previous else 1
        images_dir = folder / "images"
        images_dir.mkdir(parents=True, exist_ok=True)
        base = local_post_url(self.site_id, article.slug) + "/images/"
        urls: dict[str, str] = {}
        images = []
        for image in article.images:
            if not SAFE_FILE_NAME.match(image.filename) or image.filename == "article.json":
                raise PublishError(f"invalid image file name {image.filename!r}")
            stem, dot, ext = image.filename.rpartition(".")
            name = f"{stem}-r{revision}{dot}{ext}" if revision > 1 and stem else image.filename
            (images_dir / name).write_bytes(image.data)
            urls[image.filename] = base + name
            images.append({"filename": name, "alt": image.alt, "role": image.role,
                           "mime": image.mime, "url": urls[image.filename]})
        now = self.clock()
        first = _parse((previous or {}).get("published_at")) or now
        featured = next((i["url"] for i in images if i["role"] == "featured"), "")
        record = {
            "slug": article.slug, "title": article.title, "excerpt": article.excerpt,
            "html": sanitize_html(replace_image_placeholders(article.html, urls)),
            "categories": list(article.categories), "tags": list(article.tags),
            "images": images, "status": status,
            "date_gmt": wp_date(date_gmt) if date_gmt else None,
            "published_at": first.isoformat(),
            "updated_at": now.isoformat() if previous else None,
            "revision": revision, "run_id": run_id,
            "focus_keyword": article.focus_keyword, "about": dict(article.about),
            "faq": [{"question": q.question, "answer": q.answer} for q in article.faq],
            "writer": article.writer, "writer_note": article.writer_note,
            "json_ld": article_json_ld(article, published=first, modified=now,
                                       url=local_post_url(self.site_id, article.slug),
                                       image_url=featured),
        }
        if previous:
            revisions = folder / "revisions"
            revisions.mkdir(exist_ok=True)
            _write_json(revisions / f"{revision - 1}.json", previous)
        _write_json(folder / "article.json", record)
        return PublishResult(article.slug, local_post_url(self.site_id, article.slug), status,
                             existed=bool(previous))


def archived_revisions(archive_dir: str | os.PathLike[str], user_id: str, site_id: str,
                       slug: str) -> list[int]:
    """The revision numbers kept beside a post's article.json (oldest first)."""
    try:
        folder = archive_path(archive_dir, user_id, site_id, slug) / "revisions"
    except ValueError:
        return []
    return sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()) \
        if folder.is_dir() else []


def _parse(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _write_json(path: Path, record: dict[str, Any]) -> None:
    """Written atomically: a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
