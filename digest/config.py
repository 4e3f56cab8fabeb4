"""Settings: digest.toml, then DIGEST_<TABLE>__<KEY> environment overrides, resolved once.

Precedence, highest first: process environment, the workspace's `.env`, `digest.toml`,
built-in defaults. Secrets (API keys, the SMTP password) come only from the environment
or `.env` and live in `Secrets`, never in `Settings`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from digest.errors import ConfigError

ENV_PREFIX = "DIGEST_"


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NewsletterSettings(_Table):
    """[newsletter]"""

    name: str = "Article Weekly"
    language: str = "ko"
    authors: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=lambda: ["Article", "Weekly"])
    timezone: str = "Asia/Seoul"
    week_starts_on: Literal["sunday", "monday"] = "sunday"
    conclusion: bool = False
    web_url: str = ""


class SectionSettings(_Table):
    """One [[sections]] entry."""

    name: str
    description: str = ""
    max_items: int = Field(default=0, ge=0)


class LLMSettings(_Table):
    """[llm]"""

    provider: Literal["auto", "openai", "offline"] = "auto"
    model: str = "gpt-4o-mini"
    base_url: str = ""
    concurrency: int = Field(default=8, ge=1, le=256)
    max_input_chars: int = Field(default=24000, ge=500)
    max_parts: int = Field(default=6, ge=1, le=50)
    max_retries: int = Field(default=4, ge=0, le=20)
    timeout: float = Field(default=60, gt=0)
    embedding_model: str = "text-embedding-3-small"
    price_input_per_mtok: float | None = None
    price_output_per_mtok: float | None = None


class TriageSettings(_Table):
    """[triage]"""

    max_items: int = Field(default=0, ge=0)
    focus: str = ""
    prefer_domains: list[str] = Field(default_factory=list)
    llm_scoring: bool = True


class FetchSettings(_Table):
    """[fetch]"""

    concurrency: int = Field(default=16, ge=1, le=512)
    per_host: int = Field(default=4, ge=1, le=128)
    timeout: float = Field(default=20, gt=0)
    max_bytes: int = Field(default=5_000_000, ge=1024)
    allow_private_hosts: bool = False
    max_retries: int = Field(default=3, ge=0, le=10)
    max_redirects: int = Field(default=10, ge=0, le=50)
    backoff_base: float = Field(default=0.5, ge=0, le=60)
    user_agent: str = ""


class EmailSettings(_Table):
    """[email]"""

    from_: str = Field(default="Editor <editor@example.com>", alias="from")
    reply_to: str = ""
    subject: str = "{title}"
    preheader: str = ""
    unsubscribe: str = ""


class SendSettings(_Table):
    """[send]"""

    provider: str = "smtp"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_user: str = ""
    smtp_timeout: float = Field(default=30, gt=0)
    rate_per_second: float = Field(default=5, gt=0)
    api_url: str = ""


class ButtondownSettings(_Table):
    """[publish.buttondown]"""

    url: str = "https://api.buttondown.com"


class ListmonkSettings(_Table):
    """[publish.listmonk]"""

    url: str = ""
    list_ids: list[int] = Field(default_factory=list)
    template_id: int = Field(default=0, ge=0)


class GhostSettings(_Table):
    """[publish.ghost]"""

    url: str = ""
    newsletter: str = ""


class HugoSettings(_Table):
    """[publish.hugo]"""

    content_dir: str = ""
    slug: str = "issue-{number}"


class PublishSettings(_Table):
    """[publish] and a table per platform."""

    platform: str = ""
    buttondown: ButtondownSettings = Field(default_factory=ButtondownSettings)
    listmonk: ListmonkSettings = Field(default_factory=ListmonkSettings)
    ghost: GhostSettings = Field(default_factory=GhostSettings)
    hugo: HugoSettings = Field(default_factory=HugoSettings)


class Settings(_Table):
    """Every setting of a workspace; digest.toml keys, all optional."""

    newsletter: NewsletterSettings = Field(default_factory=NewsletterSettings)
    sections: list[SectionSettings] = Field(default_factory=list)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    send: SendSettings = Field(default_factory=SendSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)

    def section_names(self) -> list[str]:
        """Names of the configured sections, in order."""
        return [s.name for s in self.sections]


class Secrets(BaseModel):
    """Secrets read from the environment or .env; never printed."""

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    smtp_password: SecretStr | None = None
    provider_keys: dict[str, SecretStr] = Field(default_factory=dict)

    def __repr__(self) -> str:
        return "Secrets(<hidden>)"

    __str__ = __repr__


SECRET_VARIABLES = {
    "OPENAI_API_KEY": "API key of the OpenAI-compatible endpoint (enables LLM summaries)",
    "OPENAI_BASE_URL": "base URL of an OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp)",
    "DIGEST_SMTP_PASSWORD": "password for send.smtp_user",
    "POSTMARK_SERVER_TOKEN": 'server token when send.provider = "postmark"',
    "BUTTONDOWN_API_KEY": "API key of Buttondown, for `digest publish --to buttondown`",
    "LISTMONK_USER": "API user of listmonk, for `digest publish --to listmonk`",
    "LISTMONK_TOKEN": "API token of that listmonk user",
    "GHOST_ADMIN_API_KEY": "Admin API key of Ghost (id:secret), for `digest publish --to ghost`",
}


def read_dotenv(path: Path) -> dict[str, str]:
    """Read a .env file into a dict (does not touch os.environ)."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _expects_text(table: str, key: str) -> bool:
    """True when the setting is a plain string, so an override is taken verbatim."""
    field = Settings.model_fields.get(table)
    model = field.annotation if field else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return False
    target = model.model_fields.get(key) or next(
        (f for f in model.model_fields.values() if f.alias == key), None
    )
    return target is not None and target.annotation is str


def _parse_env_value(raw: str, text: bool = False) -> Any:
    """Turn an environment string into a TOML value when it reads as one (not for strings)."""
    if text:
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Merge DIGEST_<TABLE>__<KEY> variables into data; return key -> variable name."""
    origin: dict[str, str] = {}
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        table, _, key = var[len(ENV_PREFIX) :].partition("__")
        table, key = table.lower(), key.lower()
        if not table or not key:
            continue
        target = data.setdefault(table, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{var}: [{table}] is not a table of settings; unset {var}")
        target[key] = _parse_env_value(raw, _expects_text(table, key))
        origin[f"{table}.{key}"] = var
    return origin


def _describe(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    expected = {
        "int_parsing": "an integer",
        "int_type": "an integer",
        "float_parsing": "a number",
        "float_type": "a number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "extra_forbidden": "no such setting",
        "missing": "a value (it is required)",
    }.get(kind)
    if expected is None:
        return str(error.get("msg", "invalid value"))
    if kind in ("extra_forbidden", "missing"):
        return expected
    return f"expected {expected}, got {error.get('input')!r}"


def load_settings(
    toml_path: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, Secrets]:
    """Load settings and secrets; the one place precedence is decided."""
    env: dict[str, str] = {}
    if toml_path is not None:
        env.update(read_dotenv(toml_path.parent / ".env"))
    env.update(os.environ if environ is None else environ)

    data: dict[str, Any] = {}
    where = str(toml_path) if toml_path else "settings"
    if toml_path is not None and toml_path.is_file():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML ({exc}); fix the file") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read ({exc.strerror})") from None
    origin = _apply_overrides(data, env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        source = origin.get(key, where)
        raise ConfigError(f"{source}: {key}: {_describe(dict(err))}") from None

    secrets = Secrets(
        openai_api_key=SecretStr(env["OPENAI_API_KEY"]) if env.get("OPENAI_API_KEY") else None,
        openai_base_url=env.get("OPENAI_BASE_URL") or None,
        smtp_password=(
            SecretStr(env["DIGEST_SMTP_PASSWORD"]) if env.get("DIGEST_SMTP_PASSWORD") else None
        ),
        provider_keys={
            name: SecretStr(env[name])
            for name in SECRET_VARIABLES
            if name.endswith(("_TOKEN", "_KEY", "_USER")) and env.get(name)
        },
    )
    return settings, secrets
