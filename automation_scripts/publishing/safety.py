"""What crosses the publishing boundary safely: HTML reduced to an allow-list (nh3), image
placeholders filled with escaped URLs, and the SSRF check every site and feed URL passes."""

from __future__ import annotations

import html as _html
import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import nh3

_PLACEHOLDER = re.compile(r"\{\{\s*image:([^}\s]+)\s*\}\}")


ALLOWED_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "ul", "ol", "li",
                "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
                "strong", "em", "a", "img", "figure", "figcaption", "blockquote"}
ALLOWED_ATTRIBUTES = {"a": {"href"}, "img": {"src", "alt"}}


def sanitize_html(html: str) -> str:
    """The HTML reduced to ALLOWED_TAGS; links get rel="noopener noreferrer nofollow"."""
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


# An uploaded or archived file's name: no path, no leading dot, nothing a shell or URL bends.
SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
_RUN_MARKER = re.compile(r"<!--\s*tickzen-run:([A-Za-z0-9_-]{1,100})(?:\s+media:([0-9,]*))?\s*-->")
_NOFOLLOW = re.compile(r'<a href="([^"]*)" rel="noopener noreferrer nofollow">')


def run_marker(run_id: str, media: Sequence[int] = ()) -> str:
    """The comment a post carries to say which run wrote its content and which uploads are
    its own (WordPress keeps HTML comments; readers do not see them)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "", run_id)[:100]
    own = f" media:{','.join(str(int(m)) for m in media)}" if media else ""
    return f"<!-- tickzen-run:{safe}{own} -->"


def run_of(html: str) -> str:
    """The run named by the last marker in ``html`` ("" when there is none)."""
    found = _RUN_MARKER.findall(html or "")
    return found[-1][0] if found else ""


def media_of(html: str) -> list[int]:
    """The media ids the last marker in ``html`` names as the post's own uploads."""
    found = _RUN_MARKER.findall(html or "")
    return [int(m) for m in found[-1][1].split(",") if m] if found else []


def follow_internal_links(html: str, base_url: str) -> str:
    """Sanitised HTML whose links to ``base_url`` (the site itself) lose ``nofollow``:
    internal links are meant to be followed; every other link keeps it."""
    base = base_url.rstrip("/")
    if not base:
        return html

    def fix(match: re.Match[str]) -> str:
        href = _html.unescape(match.group(1))
        if href == base or href.startswith(base + "/"):
            return f'<a href="{match.group(1)}">'
        return match.group(0)
    return _NOFOLLOW.sub(fix, html)


def replace_image_placeholders(html: str, urls: dict[str, str]) -> str:
    """``{{image:<filename>}}`` -> the image's URL (HTML-escaped); unknown ones vanish."""
    return _PLACEHOLDER.sub(lambda m: _html.escape(urls.get(m.group(1), ""), quote=True), html)


def url_problem(url: str, *, allow_private: bool,
                resolve: Callable[[str], list[str]] | None = None) -> str | None:
    """Why ``url`` may not be used as a site URL, or None when it is fine.

    Every address the host name resolves to is checked, so a public name that points at
    127.0.0.1 is refused as well when ``allow_private`` is False.
    """
    if not isinstance(url, str) or not url.strip():
        return "url is required for a WordPress site"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "url is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "url must start with http:// or https://"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "url must not contain credentials (use the username and app_password fields)"
    host = parts.hostname
    if not host:
        return "url has no host name"
    if allow_private:
        return None
    try:
        addresses = (resolve or _resolve)(host)
    except OSError:
        return f"url host {host!r} cannot be resolved"
    if not addresses:
        return f"url host {host!r} cannot be resolved"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
                or ip.is_multicast or ip.is_unspecified):
            return (f"url host {host!r} resolves to a private or local address ({ip}); "
                    "such addresses are refused here")
    return None


def _resolve(host: str) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
