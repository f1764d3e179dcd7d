"""The Automation protocol and the ItemContext an automation reports through.

An automation turns one item (a ticker, an earnings ticker, a story) into an ``Article``. It
never publishes and never touches Socket.IO or the store: the runner owns item states, asks the
publisher to publish the article, and turns ``ctx.progress`` calls into events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol


@dataclass
class Image:
    filename: str                   # e.g. "aapl-price.png"
    data: bytes
    alt: str
    role: str = "inline"            # "featured" | "inline"
    mime: str = "image/png"


@dataclass(frozen=True)
class FaqEntry:
    """One question of an article's FAQ section, answered from the article's own figures
    (plain text: the publisher turns it into FAQPage structured data)."""

    question: str
    answer: str


@dataclass
class Article:
    """What an automation produces. ``html`` may hold ``{{image:<filename>}}`` placeholders
    that the publisher replaces with the uploaded image's URL.

    ``excerpt`` is the meta description (at most 160 characters; WordPress's excerpt).
    ``about`` names what the article is about for structured data and internal links
    (``{"ticker": ..., "name": ...}``); ``writer``/``writer_note`` say who wrote the text
    (``template`` or ``llm:<model>``) and why when the LLM's text was refused.
    """

    slug: str
    title: str
    html: str
    excerpt: str = ""
    images: list[Image] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    focus_keyword: str = ""
    faq: list[FaqEntry] = field(default_factory=list)
    about: dict[str, str] = field(default_factory=dict)
    writer: str = "template"
    writer_note: str = ""


class AutomationError(Exception):
    """An item failed for a reason worth showing the user (bad data, provider down...)."""


class InvalidItems(ValueError):
    """Submitted items are unusable; ``errors`` says why, one message per bad item."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class StopRequested(Exception):
    """Raised by ``ctx.checkpoint()`` when the item loop must stop; ``reason`` says why:

    - ``"pause"``: the user asked for a pause (the run is ``pausing``);
    - ``"cancel"``: the run was cancelled (or deleted);
    - ``"lost"``: the run is no longer this worker's: another instance took its lease over,
      the heartbeat could not renew the lease, or the run left ``running`` otherwise;
    - ``"shutdown"``: this server is shutting down (the run becomes ``interrupted``).

    An automation lets it propagate; the runner decides what each reason means.
    """

    def __init__(self, reason: str) -> None:   # "pause" | "cancel" | "lost" | "shutdown"
        super().__init__(reason)
        self.reason = reason


@dataclass
class PreparedItem:
    """A validated, normalised item: ``key`` is its idempotency key (the post slug)."""

    key: str
    input: Any
    label: str


@dataclass(frozen=True)
class LinkTarget:
    """An earlier, published post of the same site that an article may link to."""

    url: str
    title: str
    slug: str
    ticker: str = ""                 # what it is about, when known (from its slug or record)
    name: str = ""                   # the company's name, when known
    kind: str = ""                   # stock | earnings | sports, when known
    categories: tuple[str, ...] = ()
    published: str = ""              # ISO date, for "newest first"


@dataclass(frozen=True)
class InternalLinks:
    """A site's ``internal_links`` option: a "Related analysis" block of at most ``max`` links
    (and inline links), restricted to the article's own category when ``same_category``."""

    enabled: bool = False
    max: int = 5
    same_category: bool = False


@dataclass(frozen=True)
class SiteContext:
    """What an automation may know of the site it writes for; plain data, so it pickles into
    a generation process. ``links`` are the candidates the runner found (published posts of
    this site only, never the item's own slug), empty when internal links are off."""

    id: str = ""
    name: str = ""
    internal_links: InternalLinks = field(default_factory=InternalLinks)
    links: tuple[LinkTarget, ...] = ()


@dataclass
class ItemContext:
    """Handed to ``Automation.process`` for one item.

    ``progress(stage, message, percent=None, data=None)``: ``percent`` is the item's own
    progress (0..100); the runner maps it into the run's percent. ``checkpoint()`` raises
    StopRequested when a pause or cancel is pending.
    """

    run_id: str
    user_id: str
    index: int                       # 0-based position in the run
    total: int
    options: Mapping[str, Any]
    workdir: Path                    # a private folder for this item's files (charts...)
    progress: Callable[..., None]
    checkpoint: Callable[[], None]
    services: Mapping[str, Any] = field(default_factory=dict)   # providers, writer, clock
    site: SiteContext = field(default_factory=SiteContext)

    @property
    def site_id(self) -> str:
        """The site the article is written for (seeds its wording)."""
        return self.site.id


class Automation(Protocol):
    kind: str                        # "stock" | "earnings" | "sports" | test kinds
    # The name progress events give the item's label besides "item" (e.g. "ticker"), if any.
    label_field: str | None = None
    # A file the item leaves in its workdir that the portal shows as its report, if any.
    report_file: str | None = None
    # process() is CPU-bound (charts under the GIL): the runner may call it in a worker
    # process, on an automation rebuilt there by its module's create(settings).
    cpu_bound: bool = False

    def prepare(self, raw_items: list[Any], options: Mapping[str, Any], today: date
                ) -> tuple[list[PreparedItem], list[str]]:
        """Validate and normalise the submitted items. Returns the items (duplicates removed)
        and notes about what was removed; raises InvalidItems when any item is bad."""

    def process(self, item: PreparedItem, ctx: ItemContext) -> Article:
        """Build the article for one item. Raise AutomationError for a readable failure."""

    # Optional, for internal links: ``link_category`` (the category its articles are filed
    # under, for ``same_category``) and ``link_topic(item) -> str`` (what to search the site's
    # earlier posts for, e.g. the ticker).


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by '-' (deterministic: used in idempotency keys)."""
    import re
    import unicodedata

    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
