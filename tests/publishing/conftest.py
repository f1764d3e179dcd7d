"""Fixtures for the publishing tests: a real SQLite store, a SecretBox, sites, the service."""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from automation_scripts.base import Article, Image
from automation_scripts.publishing.wordpress_client import RetryPolicy
from runner.publishing import PublishingService
from storage.base import Site, User
from storage.secrets import SecretBox
from storage.sqlite import SQLiteStore

_counter = itertools.count()


def png_bytes(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real (tiny) PNG, so WordPress accepts the upload as an image."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig = plt.figure(figsize=(1, 1), dpi=20)
    fig.patch.set_facecolor(tuple(c / 255 for c in color))
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def make_article(slug: str | None = None, **changes: Any) -> Article:
    slug = slug or f"test-article-{next(_counter)}-{uuid.uuid4().hex[:8]}"
    fields: dict[str, Any] = {
        "slug": slug, "title": f"Title of {slug}",
        "html": "<h2>Summary</h2><p>Body of the article.</p>", "excerpt": "An excerpt.",
    }
    fields.update(changes)
    return Article(**fields)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "publishing.db")
    yield s
    s.close()


@pytest.fixture
def user(store: SQLiteStore) -> User:
    return store.create_user("owner@example.com", "x")


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SecretBox.generate_key())


class Sleeps(list):
    """A RetryPolicy.sleep that records the waits instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_service(store: SQLiteStore, box: SecretBox, tmp_path: Path, sleeps: Sleeps
                 ) -> Callable[..., PublishingService]:
    def factory(store_: Any = None, **kwargs: Any) -> PublishingService:
        kwargs.setdefault("policy", RetryPolicy(attempts=3, backoff=0.01, sleep=sleeps))
        kwargs.setdefault("timeout", (5.0, 30.0))
        return PublishingService(store_ or store, box, tmp_path / "archive", **kwargs)
    return factory


@pytest.fixture
def service(make_service: Callable[..., PublishingService]) -> PublishingService:
    return make_service()


@pytest.fixture
def make_site(store: SQLiteStore, user: User, box: SecretBox) -> Callable[..., Site]:
    """``make_site(url, username, password, **fields)`` -> a stored WordPress site."""
    def factory(url: str = "", username: str = "", password: str = "", *,
                kind: str = "wordpress", **fields: Any) -> Site:
        site = Site(id="", user_id=user.id, name=fields.pop("name", "Test site"), kind=kind,
                    url=url, username=username, app_password_enc=box.encrypt(password),
                    **fields)
        return store.create_site(user.id, site)
    return factory


@pytest.fixture
def wp_site(make_site: Callable[..., Site], wordpress: Any) -> Callable[..., Site]:
    """A site for the session's real WordPress as its admin (``url`` overridable)."""
    def factory(url: str | None = None, **fields: Any) -> Site:
        return make_site(url or wordpress.base_url, wordpress.admin_user,
                         fields.pop("password", wordpress.admin_app_password), **fields)
    return factory


__all__ = ["Image", "make_article", "png_bytes"]
