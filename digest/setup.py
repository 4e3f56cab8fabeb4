"""`digest init`: a new workspace with a commented digest.toml, .env.example and issues/.

The comments of digest.toml are the settings model's own field descriptions (digest/config.py),
so the file and the code cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel

from digest.config import SECRET_VARIABLES, Settings
from digest.errors import WorkspaceError
from digest.workspace import CONFIG_NAME, atomic_write

HEADER = """\
# digest settings. Every key is optional: the values below are the defaults.
# Any key can be overridden by an environment variable DIGEST_<TABLE>__<KEY>,
# e.g. DIGEST_LLM__MODEL=gpt-4.1-mini. Secrets (API keys, the SMTP password) go in .env,
# never here: see .env.example.
"""

SECTIONS_EXAMPLE = """\
# Sections group the items; the LLM picks one per article from its description.
# None configured: one unnamed section (the reference layout). To add some, uncomment:
# [[sections]]
# name = "AI"
# description = "models, research and AI products"
# max_items = 0        # a quota for imported stories under triage (0: none)
"""

GITIGNORE = """\
# Secrets and caches of digest; never commit them.
.env
.digest/
"""


# Settings without a default are written commented out, with an example value.
EXAMPLES: dict[str, Any] = {
    "llm.price_input_per_mtok": 0.15,
    "llm.price_output_per_mtok": 0.6,
}


def _toml_value(value: Any) -> str:
    """A value in TOML; lists inline."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).strip().removeprefix("v = ")


def _table(name: str, model: BaseModel) -> list[str]:
    """Commented lines of one settings table (nested tables follow it)."""
    lines = [f"[{name}]"]
    values = model.model_dump(by_alias=True)
    nested: list[str] = []
    for field_name, info in type(model).model_fields.items():
        key = info.alias or field_name
        if isinstance(getattr(model, field_name), BaseModel):
            nested += ["", *_table(f"{name}.{key}", getattr(model, field_name))]
            continue
        if not info.description:  # pragma: no cover - a test checks every setting has one
            raise KeyError(f"setting {name}.{key} has no description in digest/config.py")
        lines.append(f"# {info.description}")
        value = values[key]
        if value is None:
            lines.append(f"# {key} = {_toml_value(EXAMPLES.get(f'{name}.{key}', ''))}")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return lines + nested


def settings_toml(settings: Settings | None = None) -> str:
    """digest.toml text listing every setting with its value and one line on what it does."""
    settings = settings or Settings()
    blocks = [HEADER.rstrip("\n")]
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            blocks.append("\n".join(_table(name, value)))
        elif name == "sections":
            blocks.append(SECTIONS_EXAMPLE.rstrip("\n"))
        else:  # pragma: no cover - a new kind of top-level setting
            raise KeyError(f"setting {name} ({info.annotation}) is not written by digest init")
    return "\n\n".join(blocks) + "\n"


def env_example() -> str:
    """.env.example text: every secret variable, commented, with an empty value."""
    lines = [
        "# Secrets for digest: copy this file to .env and fill in what you use.",
        "# .env is read from the workspace folder; never commit it.",
    ]
    for name, description in SECRET_VARIABLES.items():
        lines += ["", f"# {description}", f"{name}="]
    return "\n".join(lines) + "\n"


def init_workspace(directory: Path) -> list[Path]:
    """Create a workspace in directory; refuse when it already holds one. Returns what was made."""

    root = directory.expanduser()
    config = root / CONFIG_NAME
    if config.exists():
        raise WorkspaceError(
            f"{config}: a workspace is already here; edit it, or `digest init` another folder"
        )
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root}: is a file, not a folder; give a folder for the workspace")
    created: list[Path] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
        files = {
            config: settings_toml(),
            root / ".env.example": env_example(),
            root / ".gitignore": GITIGNORE,
        }
        for path, text in files.items():
            if path.exists():
                continue
            atomic_write(path, text)
            created.append(path)
        issues = root / "issues"
        if not issues.is_dir():
            issues.mkdir()
            created.append(issues)
    except OSError as exc:
        reason = exc.strerror or exc
        raise WorkspaceError(f"{root}: cannot create the workspace ({reason})") from None
    return created
