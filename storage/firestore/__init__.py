"""Firestore backend (google-cloud-firestore), one module per aggregate."""

from storage.firestore.store import FirestoreStore

__all__ = ["FirestoreStore"]
