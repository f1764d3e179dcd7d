"""SecretBox: application passwords encrypted at rest with cryptography's Fernet.

The key comes from ``TICKZEN_SECRETS_KEY``; in development it is generated once and kept under
``instance/secrets_key`` (mode 600), so a restart can still read the stored passwords. A wrong
key is reported as a clear ``SecretsError``, never as a bare ``InvalidToken``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE_NAME = "secrets_key"


class SecretsError(Exception):
    """The key is malformed, or a stored secret cannot be decrypted with it."""


class SecretBox:
    """Encrypts and decrypts short secrets (application passwords) with one Fernet key."""

    def __init__(self, key: str | bytes) -> None:
        raw = key.encode() if isinstance(key, str) else key
        try:
            self._fernet = Fernet(raw.strip())
        except (ValueError, TypeError) as exc:
            raise SecretsError(
                "TICKZEN_SECRETS_KEY is not a valid Fernet key (32 url-safe base64-encoded "
                "bytes); generate one with: python -c \"from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())\"") from exc

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    @classmethod
    def from_environment(cls, key: str | None, instance_dir: str | os.PathLike[str] | None,
                         *, allow_generate: bool) -> SecretBox:
        """``key`` if given; else (development) the key kept under ``instance_dir``.

        ``allow_generate`` is False in production, where a missing key is an error: a key that
        silently changed would make every stored password unreadable.
        """
        if key:
            return cls(key)
        if not allow_generate or instance_dir is None:
            raise SecretsError("TICKZEN_SECRETS_KEY must be set (a Fernet key)")
        path = Path(instance_dir) / KEY_FILE_NAME
        if path.exists():
            return cls(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        generated = cls.generate_key()
        # Create with mode 600 from the start, so the key is never world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(generated)
        return cls(generated)

    def encrypt(self, plaintext: str) -> str:
        """Token (str) for ``plaintext``; the empty string stays empty (no password)."""
        if not plaintext:
            return ""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        if not token:
            return ""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretsError(
                "a stored secret cannot be decrypted: TICKZEN_SECRETS_KEY differs from the key "
                "it was encrypted with (re-enter the site's application password)") from exc

    def __repr__(self) -> str:        # never show the key
        return "SecretBox(<hidden>)"


def mask(secret: str) -> str:
    """What a page may show of a secret: its last four characters at most."""
    if not secret:
        return ""
    return "••••" + (secret[-4:] if len(secret) >= 12 else "")
