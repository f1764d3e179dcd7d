"""Where the earnings and sports run pages get their choices from.

``GET /api/earnings/calendar`` lists the coming week's report dates by day (the user picks
tickers); ``GET /api/sports/stories`` fetches the user's feeds and returns clustered, ranked
stories (the user picks stories), or the demo stories (synthetic, labelled) when none of the
feeds answers or ``source=demo`` asks for them; ``GET/PUT/DELETE /api/sports/feeds`` keeps the
user's feed sources in ``user.settings["sports_feeds"]``. Errors are ``{error}`` with a 4xx
(502 when the outside provider itself failed).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import login_required

from automation_scripts.earnings.providers import (
    PROVIDERS,
    EarningsDataError,
    FileProvider,
    ProviderConfig,
    get_provider,
    week_by_day,
)
from automation_scripts.publishing.safety import url_problem
from automation_scripts.sports.demo_stories import DEMO_LABEL, demo_stories
from automation_scripts.sports.feeds import (
    FeedCache,
    FeedFetcher,
    FeedSource,
    SourceResult,
    cluster_entries,
    default_sources,
    rank_stories,
    validate_sources,
)
from portal.access import current_user_id, owned_site
from portal.config import allow_private_urls
from portal.errors import InvalidRequest, UpstreamFailed
from portal.services import services

bp = Blueprint("sources", __name__)

SETTINGS_KEY = "sports_feeds"
STORY_SOURCES = ("auto", "feeds", "demo")    # auto: the feeds, demo stories when none answers


def _int_arg(name: str, default: int) -> int | None:
    """A whole-number query argument; None when it is given but is not one."""
    raw = request.args.get(name)
    if raw is None:
        return default
    return int(raw) if raw.strip().isdigit() else None


# -- earnings ----------------------------------------------------------------------------------


@bp.get("/api/earnings/calendar")
@login_required
def earnings_calendar() -> Response:
    name = request.args.get("provider", "demo")
    if name not in PROVIDERS:
        raise InvalidRequest(f"unknown provider {name[:30]!r}; use one of "
                             f"{', '.join(PROVIDERS)}")
    raw_start = request.args.get("start")
    try:
        start = date.fromisoformat(raw_start) if raw_start else datetime.now(UTC).date()
    except ValueError as exc:
        raise InvalidRequest("start must be a date (YYYY-MM-DD)") from exc
    days = _int_arg("days", 7)
    if days is None or not 1 <= days <= 14:
        raise InvalidRequest("days must be a whole number from 1 to 14")
    try:
        provider = get_provider(name, ProviderConfig.from_settings(current_app.config))
    except EarningsDataError as exc:
        raise InvalidRequest(f"the {name} provider is not available: {exc}") from exc
    try:
        if not raw_start and isinstance(provider, FileProvider):
            start = provider.first_day(start) or start
        by_day = week_by_day(provider, start, days)
    except EarningsDataError as exc:
        raise UpstreamFailed(str(exc)) from exc
    return jsonify({"provider": name, "demo": provider.demo, "start": start.isoformat(),
                    "days": by_day, "total": sum(len(d["entries"]) for d in by_day)})


# -- sports feeds ------------------------------------------------------------------------------


def _user_sources() -> tuple[list[FeedSource], bool]:
    """The signed-in user's feeds (custom=True) or the default list."""
    user = services().store.get_user(current_user_id())
    saved = (user.settings or {}).get(SETTINGS_KEY) if user else None
    if saved:
        try:
            return validate_sources(saved), True
        except ValueError:
            pass                          # stored before a rule tightened: fall back
    return default_sources(), False


def _feeds_body(sources: list[FeedSource], custom: bool) -> dict[str, Any]:
    return {"feeds": [{"name": s.name, "url": s.url} for s in sources], "custom": custom}


def _private_problem(url: str) -> str | None:
    return _feed_host_problem(url, allow_private_urls())


def _feed_host_problem(url: str, allow_private: bool) -> str | None:
    """The SSRF rule for feeds; also run by the fetcher on every redirect (no app context)."""
    problem = url_problem(url, allow_private=allow_private)
    return problem.replace("url host", "feed host") if problem else None


@bp.get("/api/sports/feeds")
@login_required
def get_feeds() -> Response:
    return jsonify(_feeds_body(*_user_sources()))


@bp.put("/api/sports/feeds")
@login_required
def put_feeds() -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "feeds" not in body:
        raise InvalidRequest("the body must be a JSON object with a feeds list")
    try:
        sources = validate_sources(body["feeds"])
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    problems = [f"{s.url[:60]}: {p}" for s in sources if (p := _private_problem(s.url))]
    if problems:
        raise InvalidRequest("; ".join(problems))
    services().store.update_user_settings(
        current_user_id(), {SETTINGS_KEY: [{"name": s.name, "url": s.url} for s in sources]})
    return jsonify(_feeds_body(sources, True))


@bp.delete("/api/sports/feeds")
@login_required
def reset_feeds() -> Response:
    services().store.update_user_settings(current_user_id(), {SETTINGS_KEY: None})
    return jsonify(_feeds_body(default_sources(), False))


@bp.get("/api/sports/stories")
@login_required
def sports_stories() -> Response:
    limit = _int_arg("limit", 50)
    if limit is None or not 1 <= limit <= 200:
        raise InvalidRequest("limit must be a whole number from 1 to 200")
    source = request.args.get("source", "auto")
    if source not in STORY_SOURCES:
        raise InvalidRequest(f"unknown source {source[:30]!r}; use one of "
                             f"{', '.join(STORY_SOURCES)}")
    site_id = request.args.get("site_id")
    store = services().store
    user_id = current_user_id()
    if site_id:
        owned_site(site_id)
    sources, _ = _user_sources()
    if source == "demo":
        sources = []
    allowed, refused = [], []
    for s in sources:                      # checked again at fetch time (DNS may change)
        problem = _private_problem(s.url)
        if problem:
            refused.append(SourceResult(s.name, s.url, "error", error=problem))
        else:
            allowed.append(s)
    cache_dir = Path(current_app.instance_path) / "feed_cache" / user_id
    allow = allow_private_urls()
    fetcher = FeedFetcher(FeedCache(cache_dir),
                          url_check=lambda u: _feed_host_problem(u, allow),
                          timeout=current_app.config["TICKZEN_FEED_TIMEOUT"],
                          max_bytes=current_app.config["TICKZEN_FEED_MAX_BYTES"])
    report = fetcher.fetch_all(allowed)
    now = datetime.now(UTC)
    stories = rank_stories(cluster_entries(report.entries), now)[:limit]
    answered = any(r.status != "error" for r in report.sources)
    demo = source == "demo" or (source == "auto" and not answered)
    if demo:
        stories = demo_stories(today=now.date())[:limit]
    out = []
    for story in stories:
        row = story.to_dict() | {"demo": demo}
        if site_id:
            entry = store.get_post(user_id, site_id, story.id)
            row["published_on_site"] = bool(entry and entry.status == "published")
        out.append(row)
    results = {r.url: r for r in report.sources + refused}
    reason = None
    if demo:
        reason = ("demo stories were asked for" if source == "demo" else
                  "none of your feeds answered, so these are demo stories")
    return jsonify({"stories": out, "fetched_at": now.isoformat(),
                    "sources": [vars(results[s.url]) for s in sources],
                    "demo": demo, "demo_reason": reason,
                    "label": DEMO_LABEL if demo else None})
