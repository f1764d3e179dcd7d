"""Google's Firestore emulator for the tests: one per session, emptied between tests.

``firestore_emulator`` (session) starts the emulator jar on a free 127.0.0.1 port in its own
process group, points FIRESTORE_EMULATOR_HOST at it for this process, and stops that process
group at the end. ``firestore_store`` (per test) empties the database and yields a fresh
``FirestoreStore(project="demo-test")``. Without the jar or java the tests skip with the reason;
under CI=true they fail instead, so CI can never pass without really running them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import free_port, need, spawn, stop

EMULATOR_JAR = Path(os.environ.get(
    "FIRESTORE_EMULATOR_JAR",
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"))
PROJECT = "demo-test"
INSTALL_HINT = "install it with `gcloud components install cloud-firestore-emulator` (and Java 11+)"
START_TIMEOUT_S = 60


@dataclass
class FirestoreEmulator:
    """A running emulator: where it listens and how to empty it."""

    host: str           # "127.0.0.1:PORT", the FIRESTORE_EMULATOR_HOST value
    process: subprocess.Popen[bytes]
    log_path: Path

    def reset(self, project: str = PROJECT) -> None:
        """Delete every document of ``project`` (the emulator's own endpoint)."""
        url = f"http://{self.host}/emulator/v1/projects/{project}/databases/(default)/documents"
        request = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def _answers(host: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}/", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    java = shutil.which("java")
    need(EMULATOR_JAR.is_file(),
         f"Firestore emulator jar not found at {EMULATOR_JAR}; {INSTALL_HINT}")
    need(java is not None, f"no `java` on PATH for the Firestore emulator; {INSTALL_HINT}")
    assert java is not None
    host = f"127.0.0.1:{free_port()}"
    log_path = tmp_path_factory.mktemp("firestore") / "emulator.log"
    process = spawn([java, "-cp", str(EMULATOR_JAR),
                     "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
                     "--host=127.0.0.1", f"--port={host.split(':')[1]}"],
                    "firestore-emulator", log=log_path)
    emulator = FirestoreEmulator(host=host, process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(host):
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                pytest.fail(f"Firestore emulator did not start; log:\n{log_path.read_text()}",
                            pytrace=False)
            time.sleep(0.1)
        previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = host
        try:
            yield emulator
        finally:
            if previous is None:
                os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = previous
    finally:
        stop(process)


@pytest.fixture
def firestore_store(firestore_emulator: FirestoreEmulator):  # -> Iterator[FirestoreStore]
    """A FirestoreStore on an empty emulator database."""
    from storage.firestore import FirestoreStore

    firestore_emulator.reset(PROJECT)
    store = FirestoreStore(project=PROJECT)
    try:
        yield store
    finally:
        store.close()
