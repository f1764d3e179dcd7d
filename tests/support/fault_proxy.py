"""A small HTTP reverse proxy that injects faults between a client and a real server.

Used to prove exactly-once publishing against the real WordPress::

    proxy = make_fault_proxy(wordpress.base_url,
                             drop_responses={("POST", "/wp-json/wp/v2/posts"): 1})
    # the first POST to /wp/v2/posts is forwarded, WordPress creates the post, and the client's
    # connection is then closed without any answer (as a dropped connection/timeout looks).

Other faults: ``strip_authorization`` (a host that eats the Authorization header) and
``inject`` (answer the first matching requests with a canned status, e.g. 503 or 429 with
Retry-After, without forwarding them), ``hold`` (park the first matching requests until the
test sets ``gate``; ``arrived`` is set when one is parked: a slow-but-alive client).
``seen`` records (method, path) of every request; ``most_in_flight`` the most requests the
upstream server was handling at once through the proxy.
It runs in a thread of the test process, bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

_HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
                "upgrade", "trailer", "host", "content-length"}


@dataclass
class Injected:
    """A canned answer for the first ``times`` requests matching (method, path prefix)."""

    status: int
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"code":"injected","message":"injected by the fault proxy"}'


class FaultProxy:
    """Forwards every request to ``upstream`` unless a configured fault applies."""

    def __init__(self, upstream: str, *, strip_authorization: bool = False,
                 drop_responses: dict[tuple[str, str], int] | None = None,
                 inject: dict[tuple[str, str], Injected] | None = None,
                 hold: dict[tuple[str, str], int] | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.strip_authorization = strip_authorization
        self.drop_responses = dict(drop_responses or {})
        self.inject = dict(inject or {})
        self.hold = dict(hold or {})
        self.gate = threading.Event()
        self.arrived = threading.Event()
        self.seen: list[tuple[str, str]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.dropped: list[tuple[str, str, int]] = []     # (method, path, upstream status)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fault-proxy")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _take(self, table: dict, method: str, path: str) -> object | None:
        """Consume one use of the first rule matching (method, path prefix)."""
        with self._lock:
            for (rule_method, prefix), value in table.items():
                if rule_method == method and path.startswith(prefix):
                    if isinstance(value, Injected):
                        if value.times <= 0:
                            continue
                        value.times -= 1
                        return value
                    if value <= 0:
                        continue
                    table[(rule_method, prefix)] = value - 1
                    return True
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:   # quiet
                pass

            def _relay(self) -> None:
                method, path = self.command, self.path
                with proxy._lock:
                    proxy.seen.append((method, urlsplit(path).path))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                route = urlsplit(path).path
                if proxy._take(proxy.hold, method, route):
                    proxy.arrived.set()
                    proxy.gate.wait(timeout=120)
                canned = proxy._take(proxy.inject, method, route)
                if isinstance(canned, Injected):
                    self.send_response(canned.status)
                    if not any(k.lower() == "content-type" for k in canned.headers):
                        self.send_header("Content-Type", "application/json")
                    for name, value in canned.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(canned.body)))
                    self.end_headers()
                    self.wfile.write(canned.body)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in _HOP_HEADERS}
                if proxy.strip_authorization:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
                headers["Connection"] = "close"
                if body or method in ("POST", "PUT", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port,
                                                      timeout=120)
                with proxy._lock:
                    proxy.in_flight += 1
                    proxy.most_in_flight = max(proxy.most_in_flight, proxy.in_flight)
                try:
                    upstream.request(method, path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                finally:
                    upstream.close()
                    with proxy._lock:
                        proxy.in_flight -= 1
                if proxy._take(proxy.drop_responses, method, route):
                    # The server did the work; the client never hears about it.
                    with proxy._lock:
                        proxy.dropped.append((method, route, response.status))
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_HEADERS:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _relay

        return Handler


@pytest.fixture
def make_fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """Factory: ``make_fault_proxy(upstream_url, **faults)`` -> a started FaultProxy."""
    started: list[FaultProxy] = []

    def factory(upstream: str, **faults: object) -> FaultProxy:
        proxy = FaultProxy(upstream, **faults).start()   # type: ignore[arg-type]
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        proxy.gate.set()
        proxy.stop()
