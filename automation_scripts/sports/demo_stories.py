"""Demo stories: synthetic sports news the project makes itself, so a sports run works offline.

A new user's feeds are public internet feeds; with no network none of them answers and there
would be nothing to pick. Then the stories page offers these instead: invented clubs, players
and results, each story "reported" by two to four invented outlets, all made from a seed (the
day, by default), so the same day gives the same stories and their keys stay stable for the
ledger. Nothing is copied from anywhere. Every link points at ``DEMO_HOST`` under the reserved
``.example`` domain (it never resolves), which is also how the automation recognises a demo
story and labels its article.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from automation_scripts.base import slugify
from automation_scripts.sports.feeds import FeedEntry, Story, story_key
from automation_scripts.variants import variant_index

DEMO_HOST = "demo-stories.tickzen.example"
DEMO_LABEL = "demo stories"
DEFAULT_COUNT = 12
OUTLETS = ("Demo Sports Wire", "Practice Pitch Daily", "Sample Court Report",
           "Mock Match Gazette")
TOWNS = ("Northbridge", "Eastvale", "Redmoor", "Kingsport", "Lakeholm", "Stonehaven",
         "Ashcombe", "Brightwater", "Fallowmere", "Glenford", "Harrowgate Vale", "Millbrook")
FOOTBALL_CLUBS = ("Rovers", "Athletic", "United", "Wanderers", "City", "Albion")
BASKETBALL_CLUBS = ("Comets", "Foxes", "Herons", "Miners", "Pilots", "Storm")
FIRST = ("Arlo", "Bram", "Cato", "Dario", "Emil", "Fenn", "Ivo", "Jonah", "Kit", "Leif",
         "Milo", "Nico", "Otto", "Rafe", "Silas", "Tobin")
LAST = ("Ashdown", "Brennick", "Corvell", "Dunmore", "Everly", "Falkner", "Garrow",
        "Holloway", "Ingram", "Jessop", "Kettering", "Lowther", "Marchetti", "Norwood")


def is_demo_story(story: Mapping[str, Any]) -> bool:
    """Whether a story (as submitted) is one of these: every entry links to ``DEMO_HOST``."""
    entries = story.get("entries") or []
    return bool(entries) and all(
        urlsplit(str(e.get("link") or "")).hostname == DEMO_HOST for e in entries)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _event(rng: random.Random) -> dict[str, Any]:
    """One invented event: what happened, with the words each outlet may use for it."""
    football = rng.random() < 0.6
    towns = rng.sample(TOWNS, 2)
    clubs = FOOTBALL_CLUBS if football else BASKETBALL_CLUBS
    home, away = (f"{t} {rng.choice(clubs)}" for t in towns)
    player, other = _person(rng), _person(rng)
    sport = "Football" if football else "Basketball"
    kind = rng.choice(["result", "result", "transfer", "injury", "coach"])
    if kind == "result" and football:
        a, b = rng.randint(1, 4), rng.randint(0, 3)
        a = max(a, b + 1)
        score = f"{a}-{b}"
        titles = [f"{home} beat {away} {score} as {player} scores twice",
                  f"{player} double lifts {home} past {away}",
                  f"{home} {score} {away}: {player} decides it",
                  f"{away} fall {score} at {home} after {player} brace"]
        summary = (f"{player} scored twice as {home} beat {away} {score} at home. {other} "
                   f"pulled one back for the visitors before the break. The win moves {home} "
                   f"up the table with a game in hand.")
    elif kind == "result":
        a = rng.randint(95, 125)
        b = a - rng.randint(1, 12)
        score, points = f"{a}-{b}", rng.randint(28, 44)
        titles = [f"{home} edge {away} {score} behind {player}'s {points} points",
                  f"{player} scores {points} as {home} hold off {away}",
                  f"{home} top {away} {score} in a late finish",
                  f"{away} come up short at {home}, {player} pours in {points}"]
        summary = (f"{player} scored {points} points and {home} held off {away} {score}. "
                   f"{other} led the visitors, who cut a double-digit deficit in the fourth "
                   f"quarter but ran out of time.")
    elif kind == "transfer":
        fee = rng.randint(8, 60)
        titles = [f"{home} agree {fee} million fee for {player}",
                  f"{player} set to join {home} from {away}",
                  f"{away} accept {home} bid for {player}",
                  f"{home} close in on {player} signing"]
        summary = (f"{home} have agreed a fee of about {fee} million with {away} for {player}. "
                   f"The move still needs a medical. {away} had rejected two earlier offers.")
    elif kind == "injury":
        weeks = rng.randint(3, 10)
        titles = [f"{player} ruled out for {weeks} weeks with a hamstring injury",
                  f"{home} without {player} for {weeks} weeks",
                  f"Injury blow for {home} as {player} faces {weeks} weeks out",
                  f"{player} hamstring setback: {home} confirm {weeks}-week absence"]
        summary = (f"{home} said {player} will miss about {weeks} weeks after a hamstring "
                   f"injury in training. {other} is expected to start against {away} this "
                   f"weekend.")
    else:
        titles = [f"{home} appoint {player} as head coach",
                  f"{player} named {home} head coach",
                  f"{home} turn to {player} after coaching search",
                  f"New era at {home} as {player} takes charge"]
        summary = (f"{home} have appointed {player} as head coach on a three-year deal. "
                   f"{player} leaves {away}, where {other} will take over for now.")
    return {"titles": titles, "summary": summary, "categories": [sport, home, away],
            "author": _person(rng)}


def demo_stories(seed: str | None = None, *, today: date | None = None,
                 count: int = DEFAULT_COUNT) -> list[Story]:
    """``count`` invented stories of the seed (default: the day), newest first; each entry's
    time lies on the day before ``today``, so a day's stories and keys never change."""
    today = today or datetime.now(UTC).date()
    seed = seed or today.isoformat()
    rng = random.Random(f"demo-stories|{seed}")
    start = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=1)
    stories = []
    for n in range(count):
        event = _event(rng)
        outlets = rng.sample(OUTLETS, rng.randint(2, len(OUTLETS)))
        first = start + timedelta(minutes=rng.randint(0, 20 * 60))
        entries = []
        for m, outlet in enumerate(outlets):
            title = event["titles"][variant_index(f"{seed}|{n}", outlet, 4)]
            when = first + timedelta(minutes=m * rng.randint(5, 50))
            link = (f"https://{DEMO_HOST}/{slugify(outlet)}/{when.date().isoformat()}/"
                    f"{slugify(title)[:80]}")
            entries.append(FeedEntry(source=outlet, feed_url=f"https://{DEMO_HOST}/feed",
                                     title=title, link=link, summary=event["summary"],
                                     published=when.isoformat(),
                                     categories=list(event["categories"]),
                                     author=event["author"] if m == 0 else ""))
        stories.append(Story(id=story_key(entries), title=entries[0].title,
                             published=entries[-1].published, entries=entries,
                             sources=[e.source for e in entries],
                             categories=list(event["categories"]), score=float(len(entries))))
    return sorted(stories, key=lambda s: (s.published or "", s.id), reverse=True)
