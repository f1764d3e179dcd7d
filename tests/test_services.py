"""portal/services.py: what automations are given of the config, and each app's own Socket.IO
server behind the runner's ``emit``."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from main_portal_app import socketio_of
from portal.config import automation_settings
from tests.conftest import AuthActions

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SECRET_KEYS = ("SECRET_KEY", "TICKZEN_SECRETS_KEY", "WTF_CSRF_TIME_LIMIT",
               "SESSION_COOKIE_HTTPONLY", "REMEMBER_COOKIE_SAMESITE", "TICKZEN_STORE")


def test_automations_get_a_narrow_read_only_settings_mapping(make_app) -> None:
    app = make_app(TICKZEN_SECRETS_KEY=Fernet.generate_key().decode(),
                   TICKZEN_LLM_MODEL="tiny", FINNHUB_API_KEY="fh-key",
                   TICKZEN_CSV_DIR="/data/prices", TICKZEN_GENERATION_PROCESSES=1)
    settings = automation_settings(app)
    for key in SECRET_KEYS:
        assert key in app.config and key not in settings, key
    assert settings["TICKZEN_LLM_MODEL"] == "tiny" and settings["FINNHUB_API_KEY"] == "fh-key"
    assert settings["TICKZEN_CSV_DIR"] == "/data/prices"
    assert settings["INSTANCE_PATH"] == app.instance_path
    assert "PROGRESS_MAX_PER_SECOND" in settings
    with pytest.raises(TypeError):
        settings["SECRET_KEY"] = "x"  # type: ignore[index]

    services = app.extensions["tickzen"]
    assert "settings" not in services.runs.services       # items are handed no settings
    assert services.runs.generation.settings == dict(settings)   # each process's create()
    for automation in services.automations.values():        # what each one was built with
        held = getattr(automation, "settings", {})
        assert "SECRET_KEY" not in held and "TICKZEN_SECRETS_KEY" not in held
    assert services.automations["stock"].settings["TICKZEN_CSV_DIR"] == "/data/prices"


def _member(app, email: str):
    client = app.test_client()
    user_id = AuthActions(client).signed_in(email)
    sock = socketio_of(app).test_client(app, flask_test_client=client)
    assert sock.is_connected()
    sock.get_received()
    return user_id, sock


def _got(sock, event: str) -> list[dict]:
    return [r["args"][0] for r in sock.get_received() if r["name"] == event]


def test_each_app_emits_through_its_own_socketio_server(make_app) -> None:
    first, second = make_app(), make_app()
    assert socketio_of(first) is not socketio_of(second)
    assert socketio_of(first).server is not socketio_of(second).server
    first_user, first_sock = _member(first, "one@example.com")
    second_user, second_sock = _member(second, "two@example.com")

    first.extensions["tickzen"].runs.emit("automation_progress", {"run_id": "from-first"},
                                          f"user_{first_user}")
    second.extensions["tickzen"].runs.emit("automation_progress", {"run_id": "from-second"},
                                           f"user_{second_user}")
    assert _got(first_sock, "automation_progress") == [{"run_id": "from-first"}]
    assert _got(second_sock, "automation_progress") == [{"run_id": "from-second"}]
    first_sock.disconnect()
    second_sock.disconnect()
