"""The wheel works anywhere: built, installed into a fresh virtualenv outside the repository,
and used for a week offline in an empty folder (templates and defaults come from the wheel)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, article_html

PARAGRAPHS = [
    "The city council approved a plan to plant twelve thousand trees along its busiest roads.",
    "Planners expect the new shade to cut summer street temperatures by two degrees by 2030.",
    "Residents can ask for a tree in front of their building through a form on the city site.",
]


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_wheel_installs_and_runs_a_week_outside_the_repository(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DIGEST_"))}
    env.pop("PYTHONPATH", None)
    env["PIP_CACHE_DIR"] = os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".cache", "pip")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        tmp_path,
        env,
    )
    [wheel] = wheels.glob("digest-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python, digest = venv / "bin" / "python", venv / "bin" / "digest"
    _run([str(python), "-m", "pip", "install", "-q", str(wheel)], tmp_path, env, timeout=500)
    where = _run([str(python), "-c", "import digest; print(digest.__file__)"], tmp_path, env)
    assert Path(where.strip()).is_relative_to(venv), where  # not the repository's copy

    letter = tmp_path / "letter"
    letter.mkdir()
    version = _run([str(digest), "--version"], letter, env)
    assert version.startswith("digest ")
    _run([str(digest), "init"], letter, env)
    assert (letter / "digest.toml").is_file() and (letter / ".env.example").is_file()
    _run([str(digest), "new", "--date", "2026-11-23"], letter, env)
    issue = letter / "issues" / "001"
    for name in ("trees", "bikes"):
        html = article_html(f"The {name} plan", [p.replace("trees", name) for p in PARAGRAPHS])
        (issue / f"{name}.html").write_text(html, encoding="utf-8")
    _run([str(digest), "add", "issues/001/trees.html", "issues/001/bikes.html"], letter, env)
    composed = _run([str(digest), "compose", "--offline"], letter, env)
    assert "2 ok" in composed, composed
    _run([str(digest), "render"], letter, env)
    _run([str(digest), "check"], letter, env)
    draft = (issue / "draft.md").read_text(encoding="utf-8")
    assert "The trees plan" in draft and "The bikes plan" in draft
    html = (issue / "email.html").read_text(encoding="utf-8")
    assert "The bikes plan" in html and "<html" in html
    assert "+++" in (issue / "issue.md").read_text(encoding="utf-8")
