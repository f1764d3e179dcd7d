"""A real Redis for the tests: ``redis-server`` on a free 127.0.0.1 port, no persistence.

Session fixture ``redis_url`` -> ``redis://127.0.0.1:<port>/0``. Started in its own process
group (recorded in .services/) and stopped by process id. Missing ``redis-server``: the tests
skip with the reason, or fail when ``CI=true``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import free_port, need, spawn, stop, wait_for_port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    need(binary is not None, "redis-server is not installed (apt-get install redis-server)")
    assert binary is not None
    root: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = spawn([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                  "--appendonly", "no", "--dir", str(root)], "redis", log=root / "redis.log")
    try:
        wait_for_port(port, timeout=30, proc=proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)
