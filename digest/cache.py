"""A small persistent JSON cache under the workspace's .digest/cache/.

Every key is stored under a format version: when the shape of what a cache holds changes,
its version changes and older entries are simply never found again. An entry that cannot be
read or no longer validates is a cache miss, and the caller's next `set` rewrites it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from digest.workspace import atomic_write

M = TypeVar("M", bound=BaseModel)

ARTICLE_FORMAT = "article-2"  # change when digest.models.Article changes shape


def stable_hash(*parts: str) -> str:
    """A hex digest of the parts, stable across runs."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


class JsonCache:
    """Key -> JSON value, one file per key, in one folder.

    The file name hashes the format version with the key (version None: the key names its own
    version, as the summary cache's keys do).
    """

    def __init__(self, folder: Path | None, version: str | None = None) -> None:
        self.folder = folder
        self.version = version

    def _path(self, key: str) -> Path | None:
        if self.folder is None:
            return None
        name = stable_hash(key) if self.version is None else stable_hash(self.version, key)
        return self.folder / name[:2] / f"{name}.json"

    def get(self, key: str) -> Any | None:
        """The stored value, or None (also for an entry that cannot be read)."""
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def get_model(self, key: str, model: type[M]) -> M | None:
        """The stored value as a model, or None when missing, unreadable or outdated."""
        value = self.get(key)
        if value is None:
            return None
        try:
            return model.model_validate(value)
        except ValidationError:
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


def article_cache(cache_dir: Path) -> JsonCache:
    """The cache of extracted articles (digest.models.Article), by link key."""
    return JsonCache(cache_dir / "articles", ARTICLE_FORMAT)
