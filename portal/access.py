"""Who is asking and what they may see: the signed-in user's id, and their runs, items and
sites. Anything of another user is "not found" (404), so ids reveal nothing."""

from __future__ import annotations

from flask_login import current_user

from portal.errors import NotFound
from portal.services import services
from storage.base import Item, Run, Site


def current_user_id() -> str:
    """The signed-in user's id (views behind ``login_required``, authenticated sockets)."""
    return str(current_user.get_id())


def owned_run(run_id: str) -> Run:
    """The signed-in user's run; the runner's ``RunNotFound`` (404) when missing or another
    user's (the one ownership rule the API, the sockets and the pages share)."""
    return services().runs.get(run_id, current_user_id())


def owned_item(run_id: str, position: int) -> tuple[Run, Item]:
    """The signed-in user's run and its item at ``position``; 404 when either is not theirs."""
    run = owned_run(run_id)
    item = services().store.get_item(run.id, position)
    if item is None:
        raise NotFound("item not found")
    return run, item


def owned_site(site_id: str) -> Site:
    """The signed-in user's site; 404 ("site not found") when missing or another user's."""
    site = services().store.get_site(current_user_id(), site_id) \
        if isinstance(site_id, str) and site_id else None
    if site is None:
        raise NotFound("site not found")
    return site
