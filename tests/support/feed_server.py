"""A local HTTP feed server for the sports tests (run as its own process, stopped by pid).

``/feeds/<file>`` serves files from a folder (../shared/data/feeds) with ``ETag`` and
``Last-Modified`` and answers ``304`` to a matching ``If-None-Match`` / ``If-Modified-Since``.
``/bad/...`` serves the bad cases: ``malformed.xml`` (not a feed), ``huge.xml`` (streams 8 MB
without a Content-Length), ``huge-declared.xml`` (declares 50 MB), ``slow.xml`` (answers after
``?delay=`` seconds), ``error.xml`` (HTTP 500), ``empty.xml`` (a valid feed with no items).
``POST /llm/v1/chat/completions`` is a stand-in for an OpenAI-compatible LLM (unreachable
from here): it answers one fixed article as JSON, with a ``<script>`` the writer must strip.
``/redirect?to=<url>`` answers 302 to ``<url>`` (redirect checks).
``/_stats`` returns ``{path: {status: count}}``; ``/_reset`` clears it.

Fixture: ``feed_server`` (session) -> ``FeedServer`` with ``url(path)``, ``stats()``, ``reset()``.
Run by hand: ``python -m tests.support.feed_server --root DIR --port PORT``.
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support import procs

ROOT = Path(__file__).resolve().parents[2]
FEEDS_DIR = ROOT / ".." / "shared" / "data" / "feeds"

EMPTY_FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Empty</title>'
              b"<link>http://example.invalid/</link><description>none</description>"
              b"</channel></rss>")
MALFORMED = b"<html><head><title>Oops</title></head><body><p>Service <b>unavailable"


def _handler(root: Path) -> type[BaseHTTPRequestHandler]:
    stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"          # streamed bodies end with the connection

        def log_message(self, *args: object) -> None:   # quiet
            pass

        def _count(self, status: int) -> None:
            with lock:
                stats[urlsplit(self.path).path][str(status)] += 1

        def _send(self, status: int, body: bytes = b"", ctype: str = "application/rss+xml",
                  headers: dict[str, str] | None = None) -> None:
            self._count(status)
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
            if path == "/_stats":
                with lock:
                    body = json.dumps({k: dict(v) for k, v in stats.items()}).encode()
                return self._send(200, body, "application/json")
            if path == "/_reset":
                with lock:
                    stats.clear()
                return self._send(200, b"{}", "application/json")
            if path.startswith("/feeds/"):
                return self._feed(path[len("/feeds/"):])
            if path == "/bad/malformed.xml":
                return self._send(200, MALFORMED, "text/html")
            if path == "/bad/empty.xml":
                return self._send(200, EMPTY_FEED)
            if path == "/redirect":
                return self._send(302, b"", "text/plain",
                                  {"Location": query.get("to", ["/bad/empty.xml"])[0]})
            if path == "/bad/error.xml":
                return self._send(500, b"boom", "text/plain")
            if path == "/bad/slow.xml":
                time.sleep(float(query.get("delay", ["5"])[0]))
                return self._send(200, EMPTY_FEED)
            if path in ("/bad/huge.xml", "/bad/huge-declared.xml"):
                return self._huge(declared=path.endswith("declared.xml"))
            return self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            if urlsplit(self.path).path != "/llm/v1/chat/completions":
                return self._send(404, b"not found", "text/plain")
            prompt = request["messages"][-1]["content"]
            answer = {"title": "LLM headline", "summary": "LLM summary sentence.",
                      "body_html": "<h2>LLM analysis</h2><p>" + "A careful paragraph. " * 8
                                   + "</p><script>alert(1)</script>"
                                   + f"<p>Prompt {'with' if 'Facts' in prompt else 'without'}"
                                   " facts.</p>"}
            body = json.dumps({"choices": [{"message": {"role": "assistant",
                                                        "content": json.dumps(answer)}}]})
            return self._send(200, body.encode(), "application/json")

        def _feed(self, name: str) -> None:
            file = (root / name).resolve()
            if root.resolve() not in file.parents or not file.is_file():
                return self._send(404, b"not found", "text/plain")
            body = file.read_bytes()
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            modified = email.utils.formatdate(int(file.stat().st_mtime), usegmt=True)
            headers = {"ETag": etag, "Last-Modified": modified}
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            fresh = etag in [t.strip() for t in inm.split(",")] if inm else ims == modified
            if fresh:
                self._count(304)
                self.send_response(304)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                return None
            return self._send(200, body, headers=headers)

        def _huge(self, declared: bool) -> None:
            self._count(200)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            if declared:
                self.send_header("Content-Length", str(50 * 1024 * 1024))
            self.end_headers()
            head = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Huge</title>'
                    b"<link>http://example.invalid/</link><description>")
            try:
                self.wfile.write(head)
                chunk = b"x" * 65536
                for _ in range(128):           # 8 MB
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass                           # the client gave up, as it should

    return Handler


def serve(root: Path, port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(root))
    server.daemon_threads = True
    server.serve_forever()


@dataclass
class FeedServer:
    base_url: str
    root: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def stats(self) -> dict[str, dict[str, int]]:
        return requests.get(self.url("_stats"), timeout=5).json()

    def reset(self) -> None:
        requests.get(self.url("_reset"), timeout=5)


@pytest.fixture(scope="session")
def feed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedServer]:
    """The feed server over ../shared/data/feeds (an empty folder when that is absent: the
    bad-case routes still work; tests of real feeds skip through ``shared_data``)."""
    root = FEEDS_DIR.resolve() if FEEDS_DIR.is_dir() else tmp_path_factory.mktemp("feeds")
    port = procs.free_port()
    proc = procs.spawn([sys.executable, "-m", "tests.support.feed_server", "--root", str(root),
                        "--port", str(port)], "feed-server", cwd=str(ROOT))
    try:
        procs.wait_for_port(port, timeout=20, proc=proc)
        yield FeedServer(base_url=f"http://127.0.0.1:{port}", root=root)
    finally:
        procs.stop(proc)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(Path(args.root), args.port)
