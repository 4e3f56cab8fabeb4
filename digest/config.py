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

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from digest.errors import ConfigError

ENV_PREFIX = "DIGEST_"


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NewsletterSettings(_Table):
    """[newsletter]"""

    name: str = Field(
        default="Article Weekly",
        description='the newsletter\'s name; an issue is titled "{name}, Issue {number}"',
    )
    language: str = Field(
        default="ko",
        description="language of the summaries (ko, en, ...); other sources are translated",
    )
    authors: list[str] = Field(
        default_factory=list, description="authors named in each issue's front matter"
    )
    tags: list[str] = Field(
        default_factory=lambda: ["Article", "Weekly"],
        description="tags written into each issue's front matter",
    )
    timezone: str = Field(
        default="Asia/Seoul",
        description='time zone of issue dates and of the Period (an IANA name like "Asia/Seoul")',
    )
    week_starts_on: Literal["sunday", "monday"] = Field(
        default="sunday", description="first day of the week the Period covers: sunday | monday"
    )
    conclusion: bool = Field(
        default=False, description='add a closing "takeaways" section written from all items'
    )
    web_url: str = Field(
        default="",
        description='where issues are published, for "view online" ({number} is replaced)',
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """An IANA time zone name that this machine knows."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'unknown time zone {value!r}; use an IANA name like "Asia/Seoul" or "Europe/Berlin"'
            ) from None
        return value


class SectionSettings(_Table):
    """One [[sections]] entry."""

    name: str
    description: str = ""
    max_items: int = Field(default=0, ge=0)


class LLMSettings(_Table):
    """[llm]"""

    provider: Literal["auto", "openai", "offline"] = Field(
        default="auto",
        description="auto | openai | offline; auto = openai when a key or base_url is set",
    )
    model: str = Field(
        default="gpt-4o-mini", description="model name sent to the OpenAI-compatible endpoint"
    )
    base_url: str = Field(
        default="",
        description="an OpenAI-compatible endpoint (Ollama, vLLM, ...); empty = OPENAI_BASE_URL",
    )
    concurrency: int = Field(default=8, ge=1, le=256, description="LLM requests in flight at once")
    max_input_chars: int = Field(
        default=24000,
        ge=500,
        description="article text per request; a longer one is summarized in parts, then merged",
    )
    max_parts: int = Field(
        default=6,
        ge=1,
        le=50,
        description="at most this many parts per long article; the rest is cut (and reported)",
    )
    max_retries: int = Field(default=4, ge=0, le=20, description="retries of a failed LLM request")
    timeout: float = Field(default=60, gt=0, description="seconds to wait for one LLM reply")
    embedding_model: str = Field(
        default="text-embedding-3-small",
        description="embeddings model for triage's story grouping (same endpoint)",
    )
    price_input_per_mtok: float | None = Field(
        default=None, description="USD per million input tokens; set it for a cost estimate"
    )
    price_output_per_mtok: float | None = Field(
        default=None, description="USD per million output tokens; set it for a cost estimate"
    )


class TriageSettings(_Table):
    """[triage]"""

    max_items: int = Field(
        default=0,
        ge=0,
        description="0: no triage; N: at most N stories from imported links per issue",
    )
    focus: str = Field(
        default="",
        description="a few sentences on what the newsletter is about (scores candidates)",
    )
    prefer_domains: list[str] = Field(
        default_factory=list,
        description="primary source of a story several sites report (when no original)",
    )
    llm_scoring: bool = Field(
        default=True,
        description="let the LLM score candidates in batches when one is configured",
    )


class FetchSettings(_Table):
    """[fetch]"""

    concurrency: int = Field(default=16, ge=1, le=512, description="pages fetched at once")
    per_host: int = Field(
        default=4, ge=1, le=128, description="pages fetched at once from one host"
    )
    timeout: float = Field(
        default=20,
        gt=0,
        description="deadline in seconds for one link: every request, retry and redirect",
    )
    max_bytes: int = Field(
        default=5_000_000, ge=1024, description="larger bodies are cut off and reported"
    )
    allow_private_hosts: bool = Field(
        default=False, description="fetch loopback, private and link-local addresses too"
    )
    max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="retries of a request that failed with a timeout or HTTP 429/5xx",
    )
    max_redirects: int = Field(default=10, ge=0, le=50, description="redirects followed per link")
    backoff_base: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="seconds before the first retry; doubled (with jitter) per retry",
    )
    user_agent: str = Field(default="", description="User-Agent header; empty = digest's own")


class ExtractSettings(_Table):
    """[extract]"""

    min_chars: int = Field(
        default=200,
        ge=0,
        description='less extracted text than this fails the link ("too little text"), unless '
        "links.yaml gives it a note or title",
    )


DEFAULT_STRIP_PARAMS = ["utm_*", "fbclid", "gclid", "mc_eid", "mkt_tok"]


class IntakeSettings(_Table):
    """[intake]"""

    strip_params: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STRIP_PARAMS),
        description="tracking parameters dropped by add/import (glob patterns, any case); "
        "ref is dropped only as a referral (see the README)",
    )


class EmailSettings(_Table):
    """[email]"""

    from_: str = Field(
        default="Editor <editor@example.com>", alias="from", description="sender of the email"
    )
    reply_to: str = Field(default="", description="Reply-To address; empty = none")
    subject: str = Field(default="{title}", description="subject line; {title} is the issue title")
    preheader: str = Field(
        default="",
        description="preview text shown by mail clients; empty = the intro's first paragraph, "
        "else the first three items' titles",
    )
    unsubscribe: str = Field(
        default="", description="List-Unsubscribe target (mailto: or https:); empty = none"
    )


class SendSettings(_Table):
    """[send]"""

    provider: str = Field(default="smtp", description="smtp, or an HTTP email API (e.g. postmark)")
    smtp_host: str = Field(default="localhost", description="SMTP server")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls | ssl | none"
    )
    smtp_user: str = Field(
        default="", description="SMTP login; the password comes from DIGEST_SMTP_PASSWORD"
    )
    smtp_timeout: float = Field(default=30, gt=0, description="seconds to wait for the SMTP server")
    rate_per_second: float = Field(default=5, gt=0, description="messages sent per second at most")
    api_url: str = Field(
        default="", description="endpoint of the HTTP provider; empty = its default"
    )


class ButtondownSettings(_Table):
    """[publish.buttondown]"""

    url: str = Field(default="https://api.buttondown.com", description="Buttondown's API base")


class ListmonkSettings(_Table):
    """[publish.listmonk]"""

    url: str = Field(default="", description='your listmonk, e.g. "https://lists.example.com"')
    list_ids: list[int] = Field(
        default_factory=list, description="ids of the listmonk lists the campaign goes to"
    )
    template_id: int = Field(
        default=0, ge=0, description="listmonk template id; 0 = the platform's default"
    )


class GhostSettings(_Table):
    """[publish.ghost]"""

    url: str = Field(default="", description='your Ghost site, e.g. "https://blog.example.com"')
    newsletter: str = Field(
        default="", description="slug of the Ghost newsletter used when sending"
    )


class HugoSettings(_Table):
    """[publish.hugo]"""

    content_dir: str = Field(
        default="",
        description='the Hugo site\'s content folder, e.g. "../site/content/posts"',
    )
    slug: str = Field(
        default="issue-{number}",
        description="folder of the page bundle; {number} is the issue number",
    )


class PublishSettings(_Table):
    """[publish] and a table per platform."""

    platform: str = Field(
        default="",
        description="default of `digest publish --to`: buttondown | listmonk | ghost | hugo",
    )
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
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
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

    def revealed(self) -> list[str]:
        """Every secret's value; only for masking them in log lines."""
        values = [self.openai_api_key, self.smtp_password, *self.provider_keys.values()]
        return [v.get_secret_value() for v in values if v is not None]

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


def _expects_text(path: list[str]) -> bool:
    """True when the setting at path (table, [sub-table, …] key) is a plain string, so an
    override is taken verbatim."""
    model: Any = Settings
    for name in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return False
        field = model.model_fields.get(name) or next(
            (f for f in model.model_fields.values() if f.alias == name), None
        )
        if field is None:
            return False
        model = field.annotation
    return model is str


def _parse_env_value(raw: str, text: bool = False) -> Any:
    """Turn an environment string into a TOML value when it reads as one (not for strings)."""
    if text:
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Merge DIGEST_<TABLE>__<KEY> variables into data (DIGEST_PUBLISH__GHOST__URL reaches
    [publish.ghost]); return dotted key -> variable name."""
    origin: dict[str, str] = {}
    for var, raw in env.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        path = [part.lower() for part in var[len(ENV_PREFIX) :].split("__")]
        if len(path) < 2 or not all(path):
            continue  # not DIGEST_<TABLE>__<KEY> (e.g. DIGEST__X): not a setting
        target = data
        for depth, name in enumerate(path[:-1]):
            target = target.setdefault(name, {})
            if not isinstance(target, dict):
                table = ".".join(path[: depth + 1])
                raise ConfigError(f"{var}: [{table}] is not a table of settings; unset {var}")
        target[path[-1]] = _parse_env_value(raw, _expects_text(path))
        origin[".".join(path)] = var
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
    if kind == "value_error" and error.get("ctx", {}).get("error") is not None:
        return str(error["ctx"]["error"])  # our own validators' sentences, without "Value error, "
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
        source = next(
            (
                var
                for name, var in origin.items()
                if f"{name}.".startswith(f"{key}.") or f"{key}.".startswith(f"{name}.")
            ),
            where,
        )
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


def setting_sources(
    toml_path: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """Where overrides and secrets come from: setting -> "VAR (environment|.env)", and each
    secret variable that is set -> "environment" or ".env" (never its value)."""
    dotenv = read_dotenv(toml_path.parent / ".env") if toml_path is not None else {}
    process = os.environ if environ is None else environ
    overrides: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for origin, env in ((".env", dotenv), ("environment", process)):
        for key, var in _apply_overrides({}, env).items():
            overrides[key] = f"{var} ({origin})"
        secrets.update({name: origin for name in SECRET_VARIABLES if env.get(name)})
    return overrides, secrets
