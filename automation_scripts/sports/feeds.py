"""Sports feeds: fetching (conditional GET, size cap, timeouts) and story clustering.

Each source is fetched on its own: a bad or unreachable feed becomes an error line for that
source and never fails the others. Conditional-GET validators and the last good entries are
kept per user in a small JSON cache under the instance folder, so a ``304 Not Modified`` still
yields that source's stories.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import requests

from automation_scripts.base import slugify
from automation_scripts.writing import feed_text

MAX_FEED_BYTES = 2 * 1024 * 1024
MAX_SOURCES = 50
MAX_URL_LENGTH = 2048
MAX_REDIRECTS = 5
USER_AGENT = "TickZenPortal/1.0 (+feed reader)"

# A sensible default: public football and basketball feeds (the product never needs ../shared).
DEFAULT_SOURCES: tuple[tuple[str, str], ...] = (
    ("BBC Sport Football", "https://feeds.bbci.co.uk/sport/football/rss.xml"),
    ("Guardian Football", "https://www.theguardian.com/football/rss"),
    ("ESPN FC", "https://www.espn.com/espn/rss/soccer/news"),
    ("Independent Football", "https://www.independent.co.uk/sport/football/rss"),
    ("Telegraph Football", "https://www.telegraph.co.uk/football/rss.xml"),
    ("Daily Mail Football", "https://www.dailymail.co.uk/sport/football/index.rss"),
    ("Metro Football", "https://metro.co.uk/sport/football/feed/"),
    ("BBC Sport General", "https://feeds.bbci.co.uk/sport/rss.xml"),
    ("ESPN General Sports", "https://www.espn.com/espn/rss/news"),
    ("The Athletic NBA", "https://theathletic.com/rss/nba/"),
    ("Yahoo Sports NBA", "https://sports.yahoo.com/nba/rss.xml"),
    ("ESPN NBA", "https://www.espn.com/espn/rss/nba/news"),
    ("CBS Sports NBA", "https://www.cbssports.com/rss/headlines/nba/"),
    ("Deadspin", "https://deadspin.com/rss"),
)

STOP_WORDS = frozenset("""
a an the and or but of to in on at for from by with as is are was were be been being it its
this that these those after before over under into out up down off about than then so not no vs
v his her their they he she we you i our your who what when where why how will would can could
should may might must has have had do does did just more most new says say said amid against
while during all any each every via per ahead again still back gets get set
""".split())  # noqa: SIM905
# Words that appear in many unrelated sports headlines: they count toward similarity but two
# titles must also share at least two words outside this list.
WEAK_WORDS = frozenset("""
premier league nba nfl football soccer basketball game match player team club season win beat
loss lose coach manager star fan cup final first half record home away point goal week top best
year day night time report update live watch
""".split())  # noqa: SIM905
GENERIC_CATEGORIES = frozenset({"sport", "sports", "news", "top news", "sports wire"})


class FeedError(Exception):
    """One source could not be read; the message says why, for that source's line."""


@dataclass
class FeedSource:
    name: str
    url: str


@dataclass
class FeedEntry:
    """The facts of one feed entry that articles are written from (plain text only)."""

    source: str
    feed_url: str
    title: str
    link: str
    summary: str = ""
    published: str | None = None        # ISO-8601 UTC
    categories: list[str] = field(default_factory=list)
    author: str = ""


@dataclass
class SourceResult:
    name: str
    url: str
    status: str                         # ok | not_modified | error
    entries: int = 0
    error: str | None = None


@dataclass
class FetchReport:
    entries: list[FeedEntry]
    sources: list[SourceResult]


def default_sources() -> list[FeedSource]:
    return [FeedSource(name, url) for name, url in DEFAULT_SOURCES]


def validate_sources(raw: Any) -> list[FeedSource]:
    """A user's feed list -> sources; ValueError with every problem when any is bad."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("feeds must be a non-empty list of {name, url}")
    if len(raw) > MAX_SOURCES:
        raise ValueError(f"at most {MAX_SOURCES} feeds")
    errors, out, seen = [], [], set()
    for n, item in enumerate(raw, 1):
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            errors.append(f"feed {n}: expected {{name, url}}")
            continue
        try:
            url = validate_feed_url(item.get("url"))
        except ValueError as exc:
            errors.append(f"feed {n}: {exc}")
            continue
        name = item.get("name") or urlsplit(url).hostname or url
        if not isinstance(name, str):
            errors.append(f"feed {n}: name must be text")
            continue
        name = " ".join(name.split())[:80]
        if url in seen:
            continue
        seen.add(url)
        out.append(FeedSource(name=name, url=url))
    if errors:
        raise ValueError("; ".join(errors))
    return out


def validate_feed_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValueError("a feed URL is required")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValueError("the feed URL is too long")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url[:60]!r} is not an http(s) URL")
    if not parts.hostname:
        raise ValueError(f"{url[:60]!r} has no host name")
    if parts.username or parts.password:
        raise ValueError("feed URLs must not carry credentials")
    if any(ch.isspace() for ch in url):
        raise ValueError("a feed URL cannot contain spaces")
    return url


# ---------------------------------------------------------------------------------------------
# fetching


class FeedCache:
    """Per-user validators (ETag, Last-Modified) and the last good entries of each feed."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory else None

    def _path(self, url: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".json")

    def get(self, url: str) -> dict[str, Any] | None:
        path = self._path(url)
        if path is None or not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None                             # a damaged cache is just a cold cache
        return data if isinstance(data, dict) and data.get("url") == url else None

    def put(self, url: str, etag: str | None, modified: str | None,
            entries: list[FeedEntry]) -> None:
        path = self._path(url)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{time.monotonic_ns()}.tmp")
        tmp.write_text(json.dumps({"url": url, "etag": etag, "modified": modified,
                                   "entries": [asdict(e) for e in entries]}), encoding="utf-8")
        os.replace(tmp, path)


class FeedFetcher:
    """Fetch several feeds concurrently, each with its own timeouts and size cap."""

    def __init__(self, cache: FeedCache | None = None, *, timeout: float = 10.0,
                 max_bytes: int = MAX_FEED_BYTES, max_workers: int = 4,
                 session_factory: Any = requests.Session,
                 url_check: Callable[[str], str | None] | None = None) -> None:
        """``url_check(url)`` -> why that URL may not be fetched (e.g. the SSRF rule), or None;
        it runs on the feed URL and on every redirect target, right before each request."""
        self.url_check = url_check
        self.cache = cache or FeedCache(None)
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_workers = max_workers
        self.session_factory = session_factory

    def fetch_all(self, sources: Sequence[FeedSource]) -> FetchReport:
        if not sources:
            return FetchReport(entries=[], sources=[])
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(sources))) as pool:
            results = list(pool.map(self._fetch_one, sources))
        entries = [e for _, got in results for e in got]
        return FetchReport(entries=entries, sources=[r for r, _ in results])

    def _fetch_one(self, source: FeedSource) -> tuple[SourceResult, list[FeedEntry]]:
        cached = self.cache.get(source.url)
        try:
            status, body, etag, modified = self._download(source.url, cached)
            if status == 304 and cached is not None:
                entries = [FeedEntry(**e) for e in cached.get("entries", [])]
                return SourceResult(source.name, source.url, "not_modified", len(entries)), entries
            entries = parse_feed(body, source)
        except FeedError as exc:
            return SourceResult(source.name, source.url, "error", error=str(exc)), []
        self.cache.put(source.url, etag, modified, entries)
        return SourceResult(source.name, source.url, "ok", len(entries)), entries

    def _download(self, url: str, cached: dict[str, Any] | None
                  ) -> tuple[int, bytes, str | None, str | None]:
        headers = {"User-Agent": USER_AGENT,
                   "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
                             "text/xml;q=0.8, */*;q=0.1"}
        if cached and cached.get("etag"):
            headers["If-None-Match"] = cached["etag"]
        if cached and cached.get("modified"):
            headers["If-Modified-Since"] = cached["modified"]
        deadline = time.monotonic() + self.timeout * 3
        session = self.session_factory()
        try:
            resp = self._get_following_redirects(session, url, headers)
            with resp:
                if resp.status_code == 304:
                    return 304, b"", None, None
                if resp.status_code != 200:
                    raise FeedError(f"the feed answered HTTP {resp.status_code}")
                length = resp.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > self.max_bytes:
                    raise FeedError(f"the feed is larger than {self.max_bytes // 1024} KB")
                chunks, size = [], 0
                try:
                    for chunk in resp.iter_content(chunk_size=64 * 1024):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise FeedError(
                                f"the feed is larger than {self.max_bytes // 1024} KB")
                        if time.monotonic() > deadline:
                            raise FeedError("the feed took too long to download")
                        chunks.append(chunk)
                except requests.RequestException as exc:
                    raise FeedError(f"the feed broke off while downloading "
                                    f"({type(exc).__name__})") from None
                return (200, b"".join(chunks), resp.headers.get("ETag"),
                        resp.headers.get("Last-Modified"))
        finally:
            session.close()

    def _get_following_redirects(self, session: Any, url: str, headers: dict[str, str]
                                 ) -> requests.Response:
        """GET ``url``, following redirects here (not in requests) so every hop is checked."""
        for _ in range(MAX_REDIRECTS + 1):
            try:
                validate_feed_url(url)
            except ValueError as exc:
                raise FeedError(f"the feed redirects to a URL that is not allowed ({exc})"
                                ) from None
            problem = self.url_check(url) if self.url_check else None
            if problem:
                raise FeedError(problem)
            try:
                resp = session.get(url, headers=headers, stream=True, allow_redirects=False,
                                   timeout=(self.timeout, self.timeout))
            except requests.Timeout:
                raise FeedError("the feed did not answer in time") from None
            except requests.RequestException as exc:
                raise FeedError(f"the feed is unreachable ({type(exc).__name__})") from None
            location = resp.headers.get("Location")
            if resp.status_code not in (301, 302, 303, 307, 308) or not location:
                return resp
            resp.close()
            url = urljoin(url, location)
        raise FeedError(f"the feed redirects more than {MAX_REDIRECTS} times")


def parse_feed(body: bytes, source: FeedSource) -> list[FeedEntry]:
    """RSS/Atom bytes -> entries; FeedError when it is not a feed at all."""
    parsed = feedparser.parse(body)
    if parsed.bozo and not parsed.entries:
        reason = type(parsed.get("bozo_exception")).__name__ if parsed.get("bozo_exception") \
            else "unreadable"
        raise FeedError(f"not a valid RSS/Atom feed ({reason})")
    if not parsed.get("version") and not parsed.entries:
        raise FeedError("not an RSS/Atom feed")
    entries = []
    for e in parsed.entries:
        title = feed_text(e.get("title"))
        link = e.get("link") or ""
        if not title or not link.startswith(("http://", "https://")):
            continue
        stamp = e.get("published_parsed") or e.get("updated_parsed")
        published = (datetime(*stamp[:6], tzinfo=UTC).isoformat() if stamp
                     else _parse_date(e.get("published") or e.get("updated")))
        cats = [feed_text(t.get("term")) for t in e.get("tags", []) if t.get("term")]
        entries.append(FeedEntry(
            source=source.name, feed_url=source.url, title=title[:300], link=link[:2000],
            summary=feed_text(e.get("summary"))[:2000], published=published,
            categories=[c for c in cats if c and ":" not in c][:20],
            author=feed_text(e.get("author"))[:120]))
    return entries


def _parse_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC).isoformat()
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# clustering


def title_tokens(title: str) -> frozenset[str]:
    """Stop-word-stripped, accent-folded, crudely stemmed title words."""
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"'s\b", "", text)
    words = re.findall(r"[a-z0-9]+", text)
    out = set()
    for w in words:
        if w in STOP_WORDS or (len(w) < 2 and not w.isdigit()):
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if len(w) > len(suffix) + 3 and w.endswith(suffix):
                w = w[: -len(suffix)]
                break
        out.add(w)
    return frozenset(out)


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Overlap of two token sets (shared / smaller set); 0 unless they share three words, two
    of them specific (names, not "league" or "win")."""
    common = a & b
    if len(common) < 3 or len(common - WEAK_WORDS) < 2:
        return 0.0
    return len(common) / min(len(a), len(b))


@dataclass
class Story:
    id: str                             # stable key (slug) of the story
    title: str
    published: str | None
    entries: list[FeedEntry]
    sources: list[str]
    categories: list[str]
    score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "published": self.published,
                "sources": self.sources, "source_count": len(self.sources),
                "categories": self.categories, "score": round(self.score, 3),
                "entries": [asdict(e) for e in self.entries]}


def story_key(entries: Iterable[FeedEntry | dict[str, Any]]) -> str:
    """A stable key for a story: slug of its earliest entry's headline, its UTC date, and a
    short hash of that entry's link. Later outlets joining the story do not change it."""
    rows = [e if isinstance(e, dict) else asdict(e) for e in entries]
    if not rows:
        raise ValueError("a story needs at least one entry")
    first = min(rows, key=lambda r: (r.get("published") or "9999", r.get("link") or ""))
    words = slugify(first.get("title") or "").split("-")[:8]
    day = (first.get("published") or "")[:10] or "undated"
    digest = hashlib.sha1((first.get("link") or "").encode()).hexdigest()[:6]
    return slugify("-".join(words + [day, digest]))


def cluster_entries(entries: Sequence[FeedEntry], *, threshold: float = 0.5,
                    window: timedelta = timedelta(hours=48)) -> list[Story]:
    """Group entries that tell the same story (similar titles, close in time)."""
    ordered = sorted(entries, key=lambda e: (e.published or "", e.link))
    tokens = [title_tokens(e.title) for e in ordered]
    clusters: list[list[int]] = []
    for i, entry in enumerate(ordered):
        best, best_score = None, 0.0
        for c, members in enumerate(clusters):
            for j in members:
                if not _close_in_time(ordered[j], entry, window):
                    continue
                score = similarity(tokens[i], tokens[j])
                if score > best_score:
                    best, best_score = c, score
        if best is not None and best_score >= threshold:
            if all(ordered[j].link != entry.link for j in clusters[best]):
                clusters[best].append(i)
        else:
            clusters.append([i])
    return [_story([ordered[i] for i in members]) for members in clusters]


def _close_in_time(a: FeedEntry, b: FeedEntry, window: timedelta) -> bool:
    if not a.published or not b.published:
        return True
    return abs(datetime.fromisoformat(a.published) - datetime.fromisoformat(b.published)) <= window


def _story(members: list[FeedEntry]) -> Story:
    # One entry per outlet: a feed listing the same story twice counts once.
    by_source: dict[str, FeedEntry] = {}
    for e in members:
        by_source.setdefault(e.source, e)
    entries = sorted(by_source.values(), key=lambda e: (e.published or "", e.link))
    counts = Counter(c for e in entries for c in dict.fromkeys(e.categories)
                     if c.lower() not in GENERIC_CATEGORIES)
    latest = max((e.published for e in entries if e.published), default=None)
    # The headline: the entry whose words are most shared with the others (the most typical).
    toks = [title_tokens(e.title) for e in entries]
    headline = max(range(len(entries)),
                   key=lambda i: (sum(len(toks[i] & t) for t in toks), -len(entries[i].title)))
    return Story(id=story_key(entries), title=entries[headline].title, published=latest,
                 entries=entries, sources=[e.source for e in entries],
                 categories=[c for c, _ in counts.most_common(8)])


def rank_stories(stories: list[Story], now: datetime) -> list[Story]:
    """More outlets and more recent first: score = sources x recency decay (half-life 12 h)."""
    for s in stories:
        age_h = 48.0
        if s.published:
            age_h = max(0.0, (now - datetime.fromisoformat(s.published)).total_seconds() / 3600)
        s.score = len(s.sources) * 0.5 ** (age_h / 12) + len(s.sources) * 0.01
    return sorted(stories, key=lambda s: (-s.score, -len(s.sources), s.title))
