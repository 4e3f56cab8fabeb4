"""The one Jinja environment: the workspace's `templates/` first, the built-in theme second.

Every template (the email, the Hugo post, the LLM prompts) is loaded through it, so an
override works the same everywhere: a file of the same name in the workspace's `templates/`
wins. Undefined names are errors (`StrictUndefined`), and HTML and MJML templates are
autoescaped, so nothing from a page or an LLM is inserted unescaped.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

ESCAPED_SUFFIXES = (".html.j2", ".mjml.j2", ".mjml")


def builtin_templates_dir() -> Path:
    """The built-in theme: shipped in the wheel, or the repository's templates/."""
    here = Path(__file__).resolve().parent
    packaged = here / "_templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


def _escaped(name: str | None) -> bool:
    return name is not None and name.endswith(ESCAPED_SUFFIXES)


def make_environment(workspace_templates: Path | None, *, trim_blocks: bool = True) -> Environment:
    """An environment over the workspace's templates and the built-in theme.

    `trim_blocks` drops the newline after a block tag (the theme relies on it); the prompts
    place their whitespace by hand with `{%-` and ask for it off.
    """
    loaders = []
    if workspace_templates is not None and workspace_templates.is_dir():
        loaders.append(FileSystemLoader(str(workspace_templates)))
    loaders.append(FileSystemLoader(str(builtin_templates_dir())))
    return Environment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=_escaped,
        trim_blocks=trim_blocks,
        lstrip_blocks=trim_blocks,
        keep_trailing_newline=True,
    )
