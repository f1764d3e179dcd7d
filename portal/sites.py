"""Site profiles (WordPress or the local archive): the /sites page, the sites JSON API, and the
local archive's article pages.

Application passwords are encrypted with the app's SecretBox before they reach the store and
never leave it again: answers carry ``has_password`` and a fixed mask, never a character of
the secret. Validation answers 400 ``{error}`` and stores nothing; another user's site is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import login_required
from markupsafe import Markup

from automation_scripts.publishing import POST_STATUSES
from automation_scripts.publishing.archive import archived_image_path, load_archived_article
from automation_scripts.publishing.safety import sanitize_html, url_problem
from automation_scripts.publishing.structured_data import json_ld_script
from portal.access import current_user_id, owned_site
from portal.config import allow_private_urls
from portal.errors import InvalidRequest, NotFound
from portal.quotas import SITES, QuotaReached
from portal.services import services
from runner.pipeline import DEFAULT_CONCURRENCY, MAX_CONCURRENCY
from storage.base import Site

bp = Blueprint("sites", __name__)

KINDS = ("wordpress", "local")
MASK = "••••••••"
NAME_MAX, FIELD_MAX, PASSWORD_MAX, TAG_MAX, TAGS_MAX = 100, 200, 200, 50, 20
DAILY_LIMIT_MAX = 1000
GAP_MAX_MINUTES = 7 * 24 * 60
AUTHORS_MAX = 20
INTERNAL_LINKS_MAX, INTERNAL_LINKS_DEFAULT = 10, 5


class SiteInputError(InvalidRequest):
    """A submitted site profile is unusable (400); the message says which field and why."""


@dataclass
class _Input:
    data: dict[str, Any]
    partial: bool                      # PATCH: only the given fields change

    def has(self, name: str) -> bool:
        return name in self.data

    def text(self, name: str, limit: int = FIELD_MAX, required: bool = False) -> str:
        value = self.data.get(name)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise SiteInputError(f"{name} must be a string")
        value = value.strip()
        if required and not value:
            raise SiteInputError(f"{name} is required")
        if len(value) > limit:
            raise SiteInputError(f"{name} is longer than {limit} characters")
        return value


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise SiteInputError(f"{name} must be a whole number")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise SiteInputError(f"{name} must be a whole number")
    return value


def _tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise SiteInputError("tags must be a list of strings (or a comma-separated string)")
    tags: list[str] = []
    for tag in (t.strip() for t in value):
        if not tag:
            continue
        if len(tag) > TAG_MAX:
            raise SiteInputError(f"a tag is longer than {TAG_MAX} characters")
        if tag.lower() not in {t.lower() for t in tags}:
            tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise SiteInputError(f"at most {TAGS_MAX} tags")
    return tags


def _gap(value: Any) -> list[int]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise SiteInputError("gap_minutes must be [min, max] in minutes")
    low, high = _int(value[0], "gap_minutes min"), _int(value[1], "gap_minutes max")
    if low < 0 or high < 0:
        raise SiteInputError("gap_minutes must not be negative")
    if low > high:
        raise SiteInputError("gap_minutes min must not be greater than max")
    if high > GAP_MAX_MINUTES:
        raise SiteInputError(f"gap_minutes max must be at most {GAP_MAX_MINUTES} (a week)")
    return [low, high]


def _concurrency(value: Any) -> int:
    """How many items of a run may publish to the site at once."""
    if value is None or value == "":
        return DEFAULT_CONCURRENCY
    count = _int(value, "concurrency")
    if not 1 <= count <= MAX_CONCURRENCY:
        raise SiteInputError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
    return count


def parse_site(data: Any, *, existing: Site | None, allow_private: bool,
               encrypt: Any) -> dict[str, Any]:
    """Validated Site field changes from a JSON/form body (``existing`` set for PATCH)."""
    if not isinstance(data, dict):
        raise SiteInputError("the body must be a JSON object")
    inp = _Input(data, partial=existing is not None)
    changes: dict[str, Any] = {}
    if not inp.partial or inp.has("name"):
        changes["name"] = inp.text("name", NAME_MAX, required=True)
    kind = existing.kind if existing else None
    if not inp.partial or inp.has("kind"):
        kind = data.get("kind")
        if kind not in KINDS:
            raise SiteInputError("kind must be 'wordpress' or 'local'")
        changes["kind"] = kind
    if kind == "wordpress":
        if not inp.partial or inp.has("url") or "kind" in changes:
            url = inp.text("url", 500)
            url = url or (existing.url if existing and not inp.has("url") else "")
            problem = url_problem(url, allow_private=allow_private)
            if problem:
                raise SiteInputError(problem)
            changes["url"] = url.rstrip("/")
        if not inp.partial or inp.has("username") or "kind" in changes:
            username = inp.text("username")
            username = username or (existing.username if existing and not inp.has("username")
                                    else "")
            if not username:
                raise SiteInputError("username is required for a WordPress site")
            changes["username"] = username
        password = inp.text("app_password", PASSWORD_MAX)
        if password:
            changes["app_password_enc"] = encrypt(password)
        elif not (existing and existing.app_password_enc):
            raise SiteInputError("app_password is required for a WordPress site")
    elif kind == "local" and "kind" in changes:
        changes.update(url="", username="", app_password_enc="", authors=[])
    defaults = dict(existing.defaults) if existing else {}
    if not inp.partial or inp.has("default_status"):
        status = data.get("default_status") or "draft"
        if status not in POST_STATUSES:
            raise SiteInputError("default_status must be one of draft, publish, future")
        defaults["default_status"] = status
    if inp.has("gap_minutes") or not inp.partial:
        defaults["gap_minutes"] = _gap(data.get("gap_minutes") or [30, 90])
    if inp.has("category") or not inp.partial:
        defaults["category"] = inp.text("category", NAME_MAX)
    if inp.has("tags") or not inp.partial:
        defaults["tags"] = _tags(data.get("tags"))
    if inp.has("concurrency") or not inp.partial:
        defaults["concurrency"] = _concurrency(data.get("concurrency"))
    changes["defaults"] = defaults
    if inp.has("daily_limit") or not inp.partial:
        limit = data.get("daily_limit")
        if limit is None or limit == "":
            changes["daily_limit"] = None
        else:
            limit = _int(limit, "daily_limit")
            if not 1 <= limit <= DAILY_LIMIT_MAX:
                raise SiteInputError(f"daily_limit must be between 1 and {DAILY_LIMIT_MAX} "
                                     "(or empty for no limit)")
            changes["daily_limit"] = limit
    if inp.has("internal_links"):
        defaults["internal_links"] = _internal_links(data.get("internal_links"))
    if inp.has("structured_data"):
        if not isinstance(data.get("structured_data"), bool):
            raise SiteInputError("structured_data must be true or false")
        defaults["structured_data"] = data["structured_data"]
    if inp.has("authors") and (kind == "wordpress"):
        changes["authors"] = _authors(data.get("authors"), existing, encrypt)
    return changes


def _internal_links(value: Any) -> dict[str, Any]:
    """``{enabled, max (0..10), same_category}``; null turns the links off."""
    if value is None:
        return {"enabled": False, "max": INTERNAL_LINKS_DEFAULT, "same_category": False}
    if not isinstance(value, dict) or set(value) - {"enabled", "max", "same_category"}:
        raise SiteInputError("internal_links must be {enabled, max, same_category}")
    for name in ("enabled", "same_category"):
        if not isinstance(value.get(name, False), bool):
            raise SiteInputError(f"internal_links.{name} must be true or false")
    limit = _int(value.get("max", INTERNAL_LINKS_DEFAULT), "internal_links.max")
    if not 0 <= limit <= INTERNAL_LINKS_MAX:
        raise SiteInputError(f"internal_links.max must be between 0 and {INTERNAL_LINKS_MAX}")
    return {"enabled": bool(value.get("enabled", False)), "max": limit,
            "same_category": bool(value.get("same_category", False))}


def _authors(value: Any, existing: Site | None, encrypt: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > AUTHORS_MAX:
        raise SiteInputError(f"authors must be a list of at most {AUTHORS_MAX} "
                             "{username, app_password}")
    old = {a.get("username"): a.get("app_password_enc", "")
           for a in (existing.authors if existing else [])}
    authors = []
    for entry in value:
        if not isinstance(entry, dict):
            raise SiteInputError("each author must be {username, app_password}")
        inp = _Input(entry, partial=False)
        username = inp.text("username", required=True)
        password = inp.text("app_password", PASSWORD_MAX)
        enc = encrypt(password) if password else old.get(username, "")
        if not enc:
            raise SiteInputError(f"author {username!r} needs an app_password")
        authors.append({"username": username, "app_password_enc": enc})
    return authors


def site_json(site: Site) -> dict[str, Any]:
    """What the API and page may show of a site: never the password, not even in part."""
    defaults = site.defaults or {}
    return {
        "id": site.id, "name": site.name, "kind": site.kind, "url": site.url,
        "username": site.username, "has_password": bool(site.app_password_enc),
        "app_password": MASK if site.app_password_enc else "",
        "default_status": defaults.get("default_status", "draft"),
        "gap_minutes": defaults.get("gap_minutes", [30, 90]),
        "category": defaults.get("category", ""), "tags": defaults.get("tags", []),
        "daily_limit": site.daily_limit,
        "internal_links": defaults.get("internal_links") or {
            "enabled": False, "max": INTERNAL_LINKS_DEFAULT, "same_category": False},
        "structured_data": bool(defaults.get("structured_data")),
        "concurrency": defaults.get("concurrency", DEFAULT_CONCURRENCY),
        "authors": [{"username": a.get("username", ""),
                     "has_password": bool(a.get("app_password_enc"))} for a in site.authors],
        "created_at": site.created_at.isoformat() if site.created_at else None,
        "updated_at": site.updated_at.isoformat() if site.updated_at else None,
    }


def _create(data: Any) -> Site:
    """Check and store a new site; 409 past the account's TICKZEN_MAX_SITES."""
    svc = services()
    user_id = current_user_id()
    SITES.check(user_id)
    changes = parse_site(data, existing=None, allow_private=allow_private_urls(),
                         encrypt=svc.secrets.encrypt)
    return svc.store.create_site(user_id, Site(id="", user_id=user_id, **changes))


def _local_site(site_id: str) -> Site:
    """The signed-in user's local-archive site (its article pages exist only there)."""
    site = owned_site(site_id)
    if site.kind != "local":
        raise NotFound("site not found")
    return site


# ---------------------------------------------------------------------------------------------
# JSON API


@bp.get("/api/sites")
@login_required
def api_list() -> dict[str, Any]:
    return {"sites": [site_json(s) for s in services().store.list_sites(current_user_id())]}


@bp.post("/api/sites")
@login_required
def api_create() -> tuple[dict[str, Any], int]:
    return site_json(_create(request.get_json(silent=True))), 201


@bp.get("/api/sites/<site_id>")
@login_required
def api_get(site_id: str) -> dict[str, Any]:
    return site_json(owned_site(site_id))


@bp.patch("/api/sites/<site_id>")
@login_required
def api_update(site_id: str) -> dict[str, Any]:
    svc = services()
    site = owned_site(site_id)
    changes = parse_site(request.get_json(silent=True), existing=site,
                         allow_private=allow_private_urls(), encrypt=svc.secrets.encrypt)
    return site_json(svc.store.update_site(current_user_id(), site.id, changes))


@bp.delete("/api/sites/<site_id>")
@login_required
def api_delete(site_id: str) -> dict[str, Any]:
    site = owned_site(site_id)
    services().store.delete_site(current_user_id(), site.id)
    return {"deleted": site_id}


@bp.post("/api/sites/<site_id>/test")
@login_required
def api_test(site_id: str) -> dict[str, Any]:
    """Test the connection; 200 with ``ok`` false and a message the user can act on."""
    check = services().publishing.check_connection(owned_site(site_id))
    return {"ok": check.ok, "code": check.code, "message": check.message, "user": check.user,
            "capabilities": check.capabilities}


# ---------------------------------------------------------------------------------------------
# Pages


def _form_data() -> dict[str, Any]:
    form = request.form
    data: dict[str, Any] = {k: form.get(k, "") for k in (
        "name", "kind", "url", "username", "app_password", "default_status", "category",
        "tags", "daily_limit", "concurrency")}
    data["gap_minutes"] = [form.get("gap_min") or "30", form.get("gap_max") or "90"]
    return data


@bp.route("/sites", methods=["GET", "POST"])
@login_required
def page():
    error = None
    status = 200
    form: dict[str, Any] = {}
    if request.method == "POST":
        form = _form_data()
        try:
            site = _create(form)
        except (SiteInputError, QuotaReached) as exc:
            error, status = str(exc), exc.http_status
        else:
            flash(f"Site {site.name!r} added.", "success")
            return redirect(url_for("sites.page"))
    form.pop("app_password", None)      # never echo a password back into the page
    sites = [site_json(s) for s in services().store.list_sites(current_user_id())]
    return render_template("sites/index.html", sites=sites, error=error, form=form,
                           statuses=POST_STATUSES, concurrency_default=DEFAULT_CONCURRENCY,
                           concurrency_max=MAX_CONCURRENCY), status


def _checkbox(name: str) -> bool:
    return request.form.get(name) in ("1", "on", "true", "yes")


def _number_or_text(value: str) -> Any:
    """A form number as an int when it is one, else as typed (validation names the field)."""
    text = (value or "").strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _edit_form_data(site: Site) -> dict[str, Any]:
    """Every field of the edit form as a PATCH body: blank passwords keep the stored ones."""
    form = request.form
    data = _form_data()
    links: dict[str, Any] = {"enabled": _checkbox("internal_links_enabled"),
                             "same_category": _checkbox("internal_links_same_category")}
    if (form.get("internal_links_max") or "").strip():
        links["max"] = _number_or_text(form["internal_links_max"])
    data["internal_links"] = links
    if "structured_data_shown" in form:
        data["structured_data"] = _checkbox("structured_data")
    if (data.get("kind") or site.kind) == "wordpress":
        names = form.getlist("author_username")
        passwords = form.getlist("author_password")
        data["authors"] = [{"username": name, "app_password": password}
                           for name, password in zip(names, passwords, strict=False)
                           if name.strip() or password.strip()]
    return data


@bp.route("/sites/<site_id>/edit", methods=["GET", "POST"])
@login_required
def page_edit(site_id: str):
    """Edit every field of a site; the passwords stay unless replaced; errors change nothing."""
    svc = services()
    site = owned_site(site_id)
    error, status = None, 200
    if request.method == "POST":
        data = _edit_form_data(site)
        try:
            changes = parse_site(data, existing=site, allow_private=allow_private_urls(),
                                 encrypt=svc.secrets.encrypt)
        except SiteInputError as exc:
            error, status = str(exc), 400
        else:
            svc.store.update_site(current_user_id(), site.id, changes)
            flash(f"Site {changes.get('name', site.name)!r} saved.", "success")
            return redirect(url_for("sites.page"))
    return render_template("sites/edit.html", site=site_json(site), error=error,
                           statuses=POST_STATUSES), status


@bp.post("/sites/<site_id>/delete")
@login_required
def page_delete(site_id: str) -> Response:
    site = owned_site(site_id)
    services().store.delete_site(current_user_id(), site.id)
    flash("Site removed.", "success")
    return redirect(url_for("sites.page"))


@bp.get("/sites/<site_id>/posts/<slug>")
@login_required
def archived_post(site_id: str, slug: str):
    """A local-archive article, shown to its owner only (404 for anybody else)."""
    site = _local_site(site_id)
    article = load_archived_article(services().publishing.archive_dir, current_user_id(),
                                    site_id, slug)
    if article is None:
        raise NotFound("article not found")
    body = Markup(sanitize_html(str(article.get("html") or "")))   # noqa: S704 - sanitised
    stored = article.get("json_ld")
    # The archive's own structured data, re-serialised here with <, > and & escaped.
    json_ld = Markup(json_ld_script(stored)) if isinstance(stored, list) else ""  # noqa: S704
    return render_template("sites/post.html", site=site_json(site), article=article, body=body,
                           json_ld=json_ld)


@bp.get("/sites/<site_id>/posts/<slug>/images/<filename>")
@login_required
def archived_image(site_id: str, slug: str, filename: str):
    _local_site(site_id)
    archive_dir = services().publishing.archive_dir
    path = archived_image_path(archive_dir, current_user_id(), site_id, slug, filename)
    if path is None:
        raise NotFound("image not found")
    article = load_archived_article(archive_dir, current_user_id(), site_id, slug) or {}
    mime = next((i.get("mime") for i in article.get("images", [])
                 if i.get("filename") == filename), None) or "application/octet-stream"
    if not str(mime).startswith("image/"):
        mime = "application/octet-stream"
    response = send_file(path, mimetype=mime, max_age=3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
