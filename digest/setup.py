"""`digest init`: a new workspace with a commented digest.toml, .env.example and issues/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel

from digest.config import SECRET_VARIABLES, Settings
from digest.errors import WorkspaceError

# One line per setting: what it does. A test checks that every field of Settings has a line
# here and is written to digest.toml with its default, so the two cannot drift apart.
DESCRIPTIONS: dict[str, str] = {
    "newsletter.name": 'the newsletter\'s name; an issue is titled "{name}, Issue {number}"',
    "newsletter.language": "language of the summaries (ko, en, ...); other sources are translated",
    "newsletter.authors": "authors named in each issue's front matter",
    "newsletter.tags": "tags written into each issue's front matter",
    "newsletter.timezone": "time zone of issue dates and of the Period (an IANA name)",
    "newsletter.week_starts_on": "first day of the week the Period covers: sunday | monday",
    "newsletter.conclusion": 'add a closing "takeaways" section written from all items',
    "newsletter.web_url": 'where issues are published, for "view online" ({number} is replaced)',
    "llm.provider": "auto | openai | offline; auto = openai when a key or base_url is set",
    "llm.model": "model name sent to the OpenAI-compatible endpoint",
    "llm.base_url": "an OpenAI-compatible endpoint (Ollama, vLLM, ...); empty = OPENAI_BASE_URL",
    "llm.concurrency": "LLM requests in flight at once",
    "llm.max_input_chars": "article text per request; a longer one is summarized in parts, then merged",
    "llm.max_parts": "at most this many parts per long article; the rest is cut (and reported)",
    "llm.max_retries": "retries of a failed LLM request",
    "llm.timeout": "seconds to wait for one LLM reply",
    "llm.embedding_model": "embeddings model for triage's story grouping (same endpoint)",
    "llm.price_input_per_mtok": "USD per million input tokens; set it for a cost estimate",
    "llm.price_output_per_mtok": "USD per million output tokens; set it for a cost estimate",
    "fetch.concurrency": "pages fetched at once",
    "fetch.per_host": "pages fetched at once from one host",
    "fetch.timeout": "seconds per request",
    "fetch.max_bytes": "larger bodies are cut off and reported",
    "fetch.allow_private_hosts": "fetch loopback, private and link-local addresses too",
    "fetch.max_retries": "retries of a request that failed with a timeout or HTTP 429/5xx",
    "fetch.max_redirects": "redirects followed per link",
    "fetch.backoff_base": "seconds before the first retry; doubled (with jitter) per retry",
    "fetch.user_agent": "User-Agent header; empty = digest's own",
    "triage.max_items": "0: no triage; N: at most N stories from imported links per issue",
    "triage.focus": "a few sentences on what the newsletter is about (scores candidates)",
    "triage.prefer_domains": "primary source of a story several sites report (when no original)",
    "triage.llm_scoring": "let the LLM score candidates in batches when one is configured",
    "email.from": "sender of the email",
    "email.reply_to": "Reply-To address; empty = none",
    "email.subject": "subject line; {title} is the issue title",
    "email.preheader": "preview text shown by mail clients; empty = the first item's title",
    "email.unsubscribe": "List-Unsubscribe target (mailto: or https:); empty = none",
    "send.provider": "smtp, or an HTTP email API (e.g. postmark)",
    "send.smtp_host": "SMTP server",
    "send.smtp_port": "SMTP port",
    "send.smtp_security": "starttls | ssl | none",
    "send.smtp_user": "SMTP login; the password comes from DIGEST_SMTP_PASSWORD",
    "send.smtp_timeout": "seconds to wait for the SMTP server",
    "send.rate_per_second": "messages sent per second at most",
    "send.api_url": "endpoint of the HTTP provider; empty = its default",
    "publish.platform": "default of `digest publish --to`: buttondown | listmonk | ghost | hugo",
    "publish.buttondown.url": "Buttondown's API base",
    "publish.listmonk.url": 'your listmonk, e.g. "https://lists.example.com"',
    "publish.listmonk.list_ids": "ids of the listmonk lists the campaign goes to",
    "publish.listmonk.template_id": "listmonk template id; 0 = the platform's default",
    "publish.ghost.url": 'your Ghost site, e.g. "https://blog.example.com"',
    "publish.ghost.newsletter": "slug of the Ghost newsletter used when sending",
    "publish.hugo.content_dir": 'the Hugo site\'s content folder, e.g. "../site/content/posts"',
    "publish.hugo.slug": "folder of the page bundle; {number} is the issue number",
}

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
        description = DESCRIPTIONS.get(f"{name}.{key}") or info.description or "(undocumented)"
        lines.append(f"# {description}")
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
    from digest.workspace import CONFIG_NAME, atomic_write

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
