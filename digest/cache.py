"""A small persistent JSON cache under the workspace's .digest/cache/."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from digest.workspace import atomic_write


def stable_hash(*parts: str) -> str:
    """A hex digest of the parts, stable across runs."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


class JsonCache:
    """Key -> JSON value, one file per key, in one folder."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path | None:
        if self.folder is None:
            return None
        name = stable_hash(key)
        return self.folder / name[:2] / f"{name}.json"

    def get(self, key: str) -> Any | None:
        """The stored value, or None."""
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def set(self, key: str, value: Any) -> None:
        """Store a value (atomically)."""
        path = self._path(key)
        if path is not None:
            atomic_write(path, json.dumps(value, ensure_ascii=False))

    def delete(self, key: str) -> None:
        """Forget a key."""
        path = self._path(key)
        if path is not None and path.exists():
            path.unlink()
