"""Golden files for the example issue. Regenerate with `make goldens` after an intended change."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "example"
UPDATE = os.environ.get("DIGEST_UPDATE_GOLDENS") == "1"


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("golden")
    shutil.copytree(
        REPO / "issues" / "example",
        root / "issues" / "example",
        ignore=shutil.ignore_patterns(
            "draft.md*", "issue.md", "email.*", "report.json", "state.json", "outbox", "sent.jsonl"
        ),
    )
    shutil.copy(REPO / "digest.toml", root / "digest.toml")
    result = CliRunner().invoke(app, ["compose", "example", "--offline", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    return root / "issues" / "example"


@pytest.mark.parametrize("name", ["draft.md", "issue.md", "email.html", "email.txt"])
def test_example_matches_golden(composed: Path, name: str) -> None:
    produced = (composed / name).read_text(encoding="utf-8")
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(produced, encoding="utf-8")
    assert golden.is_file(), f"no golden {golden}; run `make goldens`"
    assert produced == golden.read_text(encoding="utf-8"), (
        f"{name} differs from {golden}; if intended, run `make goldens`"
    )
