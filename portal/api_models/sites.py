"""Sites: the publishing targets (portal/sites.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from portal.api_models.common import ID, Deleted, Model, Operation, ops


class Author(Model):
    username: str = Field(min_length=1, max_length=200)
    app_password: str | None = Field(None, max_length=200,
                                     description="Empty keeps the stored one.")


class SiteFields(Model):
    """What POST and PATCH take (PATCH: only what changes; passwords kept unless given)."""

    url: str | None = Field(None, max_length=500, description="WordPress: the site's address.")
    username: str | None = Field(None, max_length=200)
    app_password: str | None = Field(None, max_length=200,
                                     description="WordPress application password.")
    default_status: Literal["draft", "publish", "future"] | None = None
    category: str | None = Field(None, max_length=100)
    tags: list[str] | str | None = Field(None, description="A list or a comma-separated text.")
    daily_limit: int | None = Field(None, ge=1, le=1000, description="null: no limit.")
    gap_minutes: list[int] | None = Field(None, min_length=2, max_length=2,
                                          description="[min, max] minutes between "
                                                      "scheduled (future) posts.")
    authors: list[Author] | None = Field(None, max_length=20,
                                         description="Writers the posts rotate through.")
    internal_links: dict[str, Any] | None = Field(
        None, description="{enabled, max (0..10), same_category}: a related-posts block.")


class SiteCreate(SiteFields):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["wordpress", "local"]


class SiteUpdate(SiteFields):
    name: str | None = Field(None, min_length=1, max_length=100)
    kind: Literal["wordpress", "local"] | None = None


class AuthorView(Model):
    username: str
    has_password: bool


class Site(Model):
    id: str
    name: str
    kind: Literal["wordpress", "local"]
    url: str
    username: str
    has_password: bool
    app_password: str = Field(description="A fixed mask when a password is stored, else "
                                          "empty: never the password.")
    default_status: str
    gap_minutes: list[int]
    category: str
    tags: list[str]
    daily_limit: int | None = None
    authors: list[AuthorView]
    created_at: str | None = None
    updated_at: str | None = None


class SiteList(Model):
    sites: list[Site]


class ConnectionCheck(Model):
    ok: bool
    code: Any = None
    message: str
    user: Any = None
    capabilities: Any = None


OPERATIONS = ops(
    ("sites.api_list", "GET", Operation("List your sites", "sites", {200: SiteList})),
    ("sites.api_create", "POST", Operation("Add a site", "sites", {201: Site}, body=SiteCreate,
                                           errors=(400, 401, 409, 429),
                                           description="409 past TICKZEN_MAX_SITES.")),
    ("sites.api_get", "GET", Operation("A site", "sites", {200: Site}, path={"site_id": ID})),
    ("sites.api_update", "PATCH", Operation(
        "Change a site", "sites", {200: Site}, body=SiteUpdate, path={"site_id": ID},
        description="Only the fields given change; passwords stay unless replaced.")),
    ("sites.api_delete", "DELETE", Operation("Remove a site", "sites", {200: Deleted},
                                             path={"site_id": ID})),
    ("sites.api_test", "POST", Operation(
        "Test a site's connection", "sites", {200: ConnectionCheck}, path={"site_id": ID},
        description="200 with ok false and a message when the site refuses.")),
)
