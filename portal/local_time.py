"""Times as the signed-in user reads them: in their zone (``User.timezone``), UTC when it is
unset or unknown on this host. Campaign fire times also name the campaign's own wall-clock
time, since its schedule is written in that zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_login import current_user


def viewer_zone() -> ZoneInfo:
    """The signed-in user's zone; UTC when there is none or the host does not know it."""
    name = getattr(current_user, "timezone", "") if current_user.is_authenticated else ""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def fire_time(instant: datetime | None, campaign_zone: str | None) -> str | None:
    """A fire time in the viewer's zone ("Mon 24 Nov 2026, 13:00 CET"), followed by the
    campaign's wall-clock time when its cron zone reads otherwise ("(Mon 07:00 EST)");
    interval campaigns (no zone) show the one time."""
    if instant is None:
        return None
    mine = instant.astimezone(viewer_zone())
    text = mine.strftime("%a %d %b %Y, %H:%M %Z")
    if not campaign_zone:
        return text
    theirs = instant.astimezone(ZoneInfo(campaign_zone))
    if theirs.strftime("%a %H:%M %Z") != mine.strftime("%a %H:%M %Z"):
        text += theirs.strftime(" (%a %H:%M %Z)")
    return text
