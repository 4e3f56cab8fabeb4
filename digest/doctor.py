"""`digest doctor`: check everything the week's run will need, before it runs.

Each check gives one line, ok / warn / fail, saying what was found and what to fix. The
network checks (the LLM endpoint with one tiny request, the embeddings model when triage
uses it, the sending path without sending anything) are skipped with `offline`. Secrets are
named with where they come from, never shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from digest.config import Secrets, Settings, load_settings, setting_sources
from digest.draft import read_draft
from digest.endpoint import format_refused, public_endpoint
from digest.errors import ConfigError, DigestError
from digest.links import read_links
from digest.models import Bullet, Issue, Item, Section
from digest.providers import Content, make_platform, make_provider
from digest.render import Renderer, builtin_templates_dir
from digest.summarize import make_summarizer
from digest.workspace import CONFIG_NAME, Workspace, find_workspace_root

Status = Literal["ok", "warn", "fail"]
PROBE_TIMEOUT = 15.0  # seconds for each network check
_PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


@dataclass
class Check:
    """One line of the doctor's report."""

    name: str
    status: Status
    message: str

    def __str__(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.message}"


def doctor_json(checks: list[Check]) -> dict[str, Any]:
    """The checks as `doctor --json` prints them (shape in the README)."""
    return {"ok": all(c.status != "fail" for c in checks), "checks": [asdict(c) for c in checks]}


def run_doctor(
    explicit: Path | None = None, *, offline: bool = False, start: Path | None = None
) -> list[Check]:
    """Every check, in the order of the week's run; stops early only when nothing loads."""
    try:
        root = find_workspace_root(start, explicit)
    except DigestError as exc:
        return [Check("workspace", "fail", str(exc))]
    try:
        settings, secrets = load_settings(root / CONFIG_NAME)
        ws = Workspace(root=root, settings=settings, secrets=secrets)
        ws.tz  # noqa: B018 - validates newsletter.timezone
    except DigestError as exc:
        return [Check("settings", "fail", str(exc))]
    checks = [_settings(ws), _issue(ws), _llm(ws, offline)]
    embeddings = _embeddings(ws, offline)
    if embeddings is not None:
        checks.append(embeddings)
    checks += [_fetch(settings), _send(ws, offline)]
    if settings.publish.platform.strip():
        checks.append(_publish(ws, offline))
    checks.append(_templates(ws))
    return checks


# ---------------------------------------------------------------- settings and workspace


def _settings(ws: Workspace) -> Check:
    overrides, secrets = setting_sources(ws.root / CONFIG_NAME)
    parts = [f"{ws.root / CONFIG_NAME} loaded"]
    if overrides:
        shown = [
            f"{key} = {_value(ws.settings, key)!r} from {where}" for key, where in overrides.items()
        ]
        parts.append("overridden: " + "; ".join(shown))
    if secrets:
        parts.append("secrets set: " + ", ".join(f"{k} ({v})" for k, v in sorted(secrets.items())))
    else:
        parts.append("no secrets set")
    return Check("settings", "ok", "; ".join(parts))


def _value(settings: Settings, key: str) -> Any:
    """The loaded value of `table.key` or `table.sub.key` (aliases work too)."""
    data: Any = settings.model_dump(by_alias=True)
    for name in key.split("."):
        data = data.get(name) if isinstance(data, dict) else None
    return data


def _issue(ws: Workspace) -> Check:

    folders = ws.issue_folders()
    if not folders:
        named = sorted(
            p.name
            for p in (ws.issues_dir.iterdir() if ws.issues_dir.is_dir() else [])
            if p.is_dir() and (p / "links.yaml").is_file()
        )
        also = (
            f" (named ones are not counted: {', '.join(named)}; commands take them by name)"
            if named
            else ""
        )
        return Check(
            "issue", "warn", f"no numbered issue in {ws.issues_dir} yet{also}; run `digest new`"
        )
    folder = folders[-1]
    try:
        links = read_links(folder.links)
        meta = folder.read_meta()
        if folder.draft.is_file():
            read_draft(folder.draft, sections=ws.settings.section_names() or None)
    except DigestError as exc:
        return Check("issue", "fail", f"latest issue {folder.id}: {exc}")
    period = f", Period {meta.period_start} ~ {meta.period_end}" if meta else ""
    draft = "draft.md reads" if folder.draft.is_file() else "no draft yet"
    status: Status = "ok" if links else "warn"
    hint = "" if links else "; add some with `digest add URL`"
    return Check(
        "issue",
        status,
        f"latest issue {folder.id}{period}: {len(links)} link(s), {draft}{hint}",
    )


# ---------------------------------------------------------------- the LLM endpoint


@dataclass
class _Endpoint:
    """Where summaries would be requested."""

    base_url: str | None
    key: str | None

    @property
    def shown(self) -> str:
        """The URL as it may be printed (no credentials, query or fragment)."""

        return public_endpoint(self.base_url).rstrip("/")


def _endpoint(settings: Settings, secrets: Secrets) -> _Endpoint | None:
    """The LLM endpoint the settings choose, or None for the offline summarizer."""
    base_url = settings.llm.base_url or secrets.openai_base_url
    provider = settings.llm.provider
    if provider == "offline" or (provider == "auto" and not (secrets.openai_api_key or base_url)):
        return None
    key = secrets.openai_api_key.get_secret_value() if secrets.openai_api_key else None
    return _Endpoint(base_url or None, key)


def _llm(ws: Workspace, offline: bool) -> Check:

    try:
        make_summarizer(ws.settings, ws.secrets)  # the same choice and errors as compose
    except DigestError as exc:
        return Check("llm", "fail", str(exc))
    endpoint = _endpoint(ws.settings, ws.secrets)
    model = ws.settings.llm.model
    if endpoint is None:
        return Check(
            "llm",
            "ok",
            "offline summarizer (no OPENAI_API_KEY or llm.base_url): bullets quote the source "
            "and are not translated",
        )
    where = f"model {model!r} at {endpoint.shown}"
    if offline:
        return Check("llm", "ok", f"{where}; not contacted (--offline)")
    try:
        mode = _probe_chat(endpoint, model, ws.settings.llm.timeout)
    except _ProbeFailed as exc:
        return Check("llm", "fail", f"{where}: {exc}")
    if mode == "json_schema":
        return Check(
            "llm", "ok", f"{where}: reachable, key accepted, structured output (json_schema)"
        )
    if mode == "json_object":
        return Check(
            "llm",
            "ok",
            f"{where}: reachable, key accepted; json_schema refused, so digest uses its "
            "json_object fallback (JSON validated against the schema)",
        )
    return Check(
        "llm",
        "warn",
        f"{where}: reachable, key accepted, but no structured output: digest falls back to "
        "reading Markdown bullets from plain text (less reliable; a repair request when needed)",
    )


class _ProbeFailed(Exception):
    """A network check failed; the message says why and what to check."""


def _client(endpoint: _Endpoint, timeout: float) -> Any:
    import openai

    return openai.OpenAI(
        api_key=endpoint.key or "not-needed",
        base_url=endpoint.base_url,
        max_retries=0,
        timeout=min(timeout, PROBE_TIMEOUT),
    )


def _call(endpoint: _Endpoint, what: str, request: Callable[[], Any]) -> Any:
    """Run one request; turn every failure into a _ProbeFailed with a plain reason."""
    import openai

    try:
        return request()
    except openai.APITimeoutError:
        raise _ProbeFailed(f"no answer within {PROBE_TIMEOUT:g} s; is the server up?") from None
    except openai.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        raise _ProbeFailed(
            f"cannot connect ({_redact(str(cause) or type(cause).__name__, endpoint)}); is the "
            "server running? check llm.base_url or OPENAI_BASE_URL"
        ) from None
    except openai.APIStatusError as exc:
        status = exc.status_code
        message = _redact(str(getattr(exc, "message", "") or ""), endpoint)[:200]
        if status in (401, 403):
            raise _ProbeFailed(
                f"the endpoint refused the API key (HTTP {status}); check OPENAI_API_KEY"
            ) from None
        if status == 404:
            raise _ProbeFailed(
                f"HTTP 404: {what} not found ({message}); check the model name, or llm.base_url "
                "if the address is wrong"
            ) from None
        raise _StatusError(status, message) from None


class _StatusError(_ProbeFailed):
    """Any other HTTP error status (the caller may know what it means)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status} from the endpoint: {message}")
        self.status = status
        self.message = message


def _redact(text: str, endpoint: _Endpoint) -> str:
    return text.replace(endpoint.key, "***") if endpoint.key else text


def _probe_chat(endpoint: _Endpoint, model: str, timeout: float) -> str:
    """One tiny chat completion per response format until one works; the mode digest will use."""

    client = _client(endpoint, timeout)
    messages = [
        {"role": "system", "content": 'Answer with the JSON object {"ok": true} and nothing else.'},
        {"role": "user", "content": "Are you there?"},
    ]
    formats: list[tuple[str, dict[str, Any] | None]] = [
        (
            "json_schema",
            {
                "type": "json_schema",
                "json_schema": {"name": "probe", "strict": True, "schema": _PROBE_SCHEMA},
            },
        ),
        ("json_object", {"type": "json_object", "schema": _PROBE_SCHEMA}),
        ("text", None),
    ]
    try:
        for mode, response_format in formats:
            extra = {"response_format": response_format} if response_format else {}
            try:
                response = _call(
                    endpoint,
                    f"model {model!r}",
                    lambda extra=extra: client.chat.completions.create(  # type: ignore[misc]
                        model=model, messages=messages, **extra
                    ),
                )
            except _StatusError as exc:
                if response_format and format_refused(exc.status, exc.message):
                    continue
                raise
            content = (response.choices[0].message.content or "") if response.choices else ""
            if mode != "text" and not content.lstrip().startswith(("{", "```")):
                return "text"  # answered, but ignores response_format
            return mode
        return "text"
    finally:
        client.close()


def _embeddings(ws: Workspace, offline: bool) -> Check | None:
    """The embeddings model, checked only when triage is on and an LLM endpoint is set."""
    triage = getattr(ws.settings, "triage", None)
    if triage is None or not getattr(triage, "max_items", 0):
        return None
    model = getattr(ws.settings.llm, "embedding_model", "")
    endpoint = _endpoint(ws.settings, ws.secrets)
    if endpoint is None:
        return Check(
            "embeddings", "ok", "triage groups stories by their words (no LLM endpoint set)"
        )
    where = f"model {model!r} at {endpoint.shown}"
    if offline:
        return Check("embeddings", "ok", f"{where}; not contacted (--offline)")
    client = _client(endpoint, ws.settings.llm.timeout)
    try:
        reply = _call(
            endpoint,
            f"embedding model {model!r}",
            lambda: client.embeddings.create(model=model, input=["digest doctor"]),
        )
    except _ProbeFailed as exc:
        return Check("embeddings", "fail", f"{where}: {exc}; triage needs it (llm.embedding_model)")
    finally:
        client.close()
    size = len(reply.data[0].embedding) if reply.data else 0
    return Check("embeddings", "ok", f"{where}: answered ({size} dimensions)")


# ---------------------------------------------------------------- fetching and sending


def _fetch(settings: Settings) -> Check:
    fetch = settings.fetch
    summary = (
        f"{fetch.concurrency} at once, {fetch.per_host} per host, {fetch.timeout:g} s per link, "
        f"{fetch.max_bytes / 1e6:g} MB per page, {fetch.max_retries} retries"
    )
    problems = []
    if fetch.timeout < 5:
        problems.append(f"fetch.timeout = {fetch.timeout:g} s fails slow sites; 20 is the default")
    if fetch.max_bytes < 500_000:
        problems.append(f"fetch.max_bytes = {fetch.max_bytes} cuts many article pages short")
    if fetch.per_host > fetch.concurrency:
        problems.append(
            f"fetch.per_host ({fetch.per_host}) above fetch.concurrency ({fetch.concurrency}) "
            "has no effect"
        )
    if fetch.allow_private_hosts:
        problems.append(
            "fetch.allow_private_hosts = true: links may reach machines on your own network"
        )
    if problems:
        return Check("fetch", "warn", f"{summary}; " + "; ".join(problems))
    return Check("fetch", "ok", summary)


def _send(ws: Workspace, offline: bool) -> Check:

    send = ws.settings.send
    configured = send != type(send)() or ws.secrets.smtp_password is not None
    if not configured:
        return Check(
            "send",
            "warn",
            f"[send] is not configured: `digest send` would use SMTP at {send.smtp_host}:"
            f"{send.smtp_port}; set send.* in {CONFIG_NAME} before sending",
        )
    try:
        provider = make_provider(send, ws.secrets)
    except DigestError as exc:
        return Check("send", "fail", str(exc))
    if offline:
        return Check("send", "ok", f"{provider.describe()}; not contacted (--offline)")
    try:
        return Check("send", "ok", provider.verify())
    except DigestError as exc:
        return Check("send", "fail", str(exc))


def _publish(ws: Workspace, offline: bool) -> Check:
    """publish.platform: its key, and a read-only look-up (a draft that cannot exist)."""

    try:
        platform = make_platform(
            ws.settings.publish.platform, ws.settings.publish, ws.secrets, ws.root
        )
    except DigestError as exc:
        return Check("publish", "fail", str(exc))
    try:
        if offline:
            return Check("publish", "ok", f"{platform.describe()}; not contacted (--offline)")
        probe = Content(
            marker="digest-doctor-probe",
            number=0,
            title="digest doctor",
            subject="digest doctor",
            preheader="",
            html="",
            text="",
            markdown="",
            issue_md="",
            date=dt.datetime.now(dt.UTC),
        )
        platform.find(probe)
    except DigestError as exc:
        return Check("publish", "fail", str(exc))
    finally:
        platform.close()
    return Check("publish", "ok", f"{platform.describe()}: key accepted (a read-only look-up)")


# ---------------------------------------------------------------- template overrides


def _templates(ws: Workspace) -> Check:
    """Each override in the workspace's templates/ still renders."""
    folder = ws.templates_dir
    builtin = builtin_templates_dir()
    if not folder.is_dir() or folder.resolve() == builtin.resolve():
        return Check("templates", "ok", "built-in theme (no templates/ overrides)")
    names = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    if not names:
        return Check("templates", "ok", "built-in theme (templates/ is empty)")
    unknown = [n for n in names if not (builtin / n).is_file()]
    overrides = [n for n in names if n not in unknown]
    try:
        _render_sample(ws)
        _check_prompts(ws, [n for n in overrides if n.startswith("prompts/")])
    except DigestError as exc:
        return Check("templates", "fail", f"an override in {folder} does not render: {exc}")
    message = f"{len(overrides)} override(s) render: {', '.join(overrides) or 'none'}"
    if unknown:
        return Check(
            "templates",
            "warn",
            f"{message}; {', '.join(unknown)} override(s) nothing (built-in names are in "
            f"{builtin})",
        )
    return Check("templates", "ok", message)


def _render_sample(ws: Workspace) -> None:
    """Render a small made-up issue through the workspace's templates (RenderError if not)."""

    names: list[str | None] = [*ws.settings.section_names()] or [None]
    item = Item(
        title="A sample article",
        url="https://example.com/sample",
        site_name="Example",
        bullets=[Bullet(text="A first point", children=[Bullet(text="a detail")])],
        note="An editor's note",
    )
    today = dt.date(2026, 1, 4)
    issue = Issue(
        title=f"{ws.settings.newsletter.name}, Issue 1",
        number=1,
        date=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC),
        period_start=today - dt.timedelta(days=6),
        period_end=today,
        authors=ws.settings.newsletter.authors,
        tags=ws.settings.newsletter.tags,
        intro="An intro.",
        sections=[Section(name=name, items=[item]) for name in names],
    )
    Renderer(ws.settings, ws.templates_dir).render(issue)


def _check_prompts(ws: Workspace, names: list[str]) -> None:
    """Prompt overrides parse and use only variables the built-in prompt is given."""
    from jinja2 import Environment, FileSystemLoader, TemplateSyntaxError, meta

    def variables(folder: Path, name: str) -> set[str]:
        source = (folder / name).read_text(encoding="utf-8")
        env = Environment(loader=FileSystemLoader(str(folder)))
        return set(meta.find_undeclared_variables(env.parse(source)))

    for name in names:
        try:
            used = variables(ws.templates_dir, name)
        except TemplateSyntaxError as exc:
            raise ConfigError(f"templates/{name}:{exc.lineno}: {exc.message}") from None
        known = {"output", "shared"} | {
            var
            for builtin in (builtin_templates_dir() / "prompts").glob("*.j2")
            for var in variables(builtin.parent, builtin.name)
        }
        extra = sorted(used - known)
        if extra:
            raise ConfigError(
                f"templates/{name} uses {', '.join(extra)}, which digest does not pass to it "
                f"(it passes: {', '.join(sorted(known))})"
            )
