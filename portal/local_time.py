"""Times as the signed-in user reads them: in their zone (``User.timezone``), UTC when it is
unset or unknown on this host, always with the zone named. Campaign fire times also name the
campaign's own wall-clock time, since its schedule is written in that zone.

The browser formats the times it receives live (run log, notifications) with
static/js/local_time.js from ``page_clock``, so they read like the server-rendered ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_login import current_user

from storage.clock import utcnow

USER_TIME_FORMAT = "%Y-%m-%d %H:%M %Z"      # static/js/local_time.js prints the same


def zone_of(name: str | None) -> ZoneInfo:
    """The zone called ``name``; UTC when it is empty or the host does not know it."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def viewer_zone() -> ZoneInfo:
    """The signed-in user's zone; UTC when there is none or the host does not know it."""
    return zone_of(getattr(current_user, "timezone", "") if current_user.is_authenticated
                   else "")


def user_time(value: datetime | str | None, zone: str | None = None) -> str:
    """A timestamp as the user reads it, ``YYYY-MM-DD HH:MM TZ``: in ``zone`` when given,
    else the signed-in user's. ISO strings are read too; naive times are UTC."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    tz = zone_of(zone) if zone is not None else viewer_zone()
    return value.astimezone(tz).strftime(USER_TIME_FORMAT)


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


def zone_names(zone: ZoneInfo, around: datetime) -> dict[str, str]:
    """UTC offset in minutes -> the zone's abbreviation ("330" -> "IST", "-300" -> "EST"),
    for every offset it uses within a year either side of ``around``. Browsers name zones
    by locale ("GMT+5:30"), so the page hands them the server's names."""
    names: dict[str, str] = {}
    for half_month in range(-25, 26):
        local = (around + timedelta(days=15 * half_month)).astimezone(zone)
        offset = local.utcoffset() or timedelta(0)
        names[str(int(offset.total_seconds() // 60))] = local.strftime("%Z")
    return names


def page_clock() -> dict[str, object]:
    """What every page tells its scripts about the viewer's zone: its IANA name and
    ``zone_names``."""
    zone = viewer_zone()
    return {"zone": zone.key, "names": zone_names(zone, utcnow())}
