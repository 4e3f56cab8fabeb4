"""`digest publish`: hand the rendered issue to a newsletter platform as its one draft.

The platform's id for the draft is recorded in `issues/<id>/published.json` (one entry per
platform: id, state, URL, time, marker), written atomically right after each answer. A
second publish updates that draft; a draft deleted on the platform (404) is made again,
with a note. Before creating, the draft is looked up by the issue's marker, so a run killed
between the platform's answer and our write does not leave two drafts behind.
Sending or scheduling (`--send-now`, `--schedule`) is gated by `digest check` and a
confirmation, like `digest send`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.draft import read_draft
from digest.errors import DigestError, PublishError
from digest.providers import (
    Content,
    Platform,
    Remote,
    RemoteMissing,
    check_platform_name,
    make_platform,
)
from digest.providers.api import MAX_WAIT, MaybeDone, NoAnswer, Tries
from digest.render import Renderer, block_html
from digest.send import Notify, confirm_or_refuse, gate_on_check, require_fresh_render
from digest.workspace import IssueFolder, Workspace, atomic_write

PUBLISHED_NAME = "published.json"
# Rendered in place of email.unsubscribe, then replaced by the platform's placeholder.
UNSUBSCRIBE_SENTINEL = "https://digest.invalid/unsubscribe-placeholder"
_STYLE = re.compile(r"(<style\b.*?</style>)", re.IGNORECASE | re.DOTALL)
_BARE_URL = re.compile(r"(?m)^(\s*- )(https?://\S+)$")  # References: Hugo links them, so do we
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# Template syntax of the platforms (Django/Jinja, Go templates, Ghost's replacement strings).
_TEMPLATE_OPENERS = {"{{": "&#123;&#123;", "{%": "&#123;%", "%%{": "&#37;&#37;{"}


@dataclass
class PublishRequest:
    """What `digest publish` was asked to do."""

    platform: str = ""
    schedule: str | None = None
    send_now: bool = False
    yes: bool = False


# ---------------------------------------------------------------- published.json


def published_path(folder: IssueFolder) -> Path:
    """issues/<id>/published.json."""
    return folder.path / PUBLISHED_NAME


def read_published(folder: IssueFolder) -> dict[str, dict[str, Any]]:
    """The records per platform; {} when there are none or the file cannot be read."""
    try:
        data = json.loads(published_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and isinstance(v.get("id"), str)}


def _record(folder: IssueFolder, platform: str, remote: Remote, content: Content) -> None:
    records = read_published(folder)
    records[platform] = {
        "id": remote.id,
        "state": remote.state,
        "url": remote.url,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "marker": content.marker,
        "subject": content.subject,
    }
    text = json.dumps(records, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    atomic_write(published_path(folder), text)


def published_lines(folder: IssueFolder) -> list[str]:
    """One line per platform the issue was published to, for `digest status`."""
    lines = []
    for platform, record in sorted(read_published(folder).items()):
        url = f" {record['url']}" if record.get("url") else ""
        lines.append(
            f"published: {platform} {record.get('state', '?')} {record['id']}{url} "
            f"({record.get('time', '?')})"
        )
    return lines


# ---------------------------------------------------------------- content


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def neutralize_html(html: str) -> str:
    """HTML whose text cannot open a platform template tag (style blocks left alone)."""
    parts = _STYLE.split(html)
    for index in range(0, len(parts), 2):  # odd indexes are <style> blocks
        for opener, inert in _TEMPLATE_OPENERS.items():
            parts[index] = parts[index].replace(opener, inert)
    return "".join(parts)


def neutralize_text(text: str) -> str:
    """Plain text whose template openers are broken up by a space."""
    for opener in _TEMPLATE_OPENERS:
        text = text.replace(opener, " ".join(opener))
    return text


def safe_markdown(markdown: str) -> str:
    """Markdown with raw HTML and template openers escaped outside code spans."""
    out = []
    last = 0
    for match in _CODE_SPAN.finditer(markdown):
        out.append(_escape_markdown_text(markdown[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_escape_markdown_text(markdown[last:]))
    return "".join(out)


def _escape_markdown_text(text: str) -> str:
    text = text.replace("<", "&lt;")
    for opener, inert in _TEMPLATE_OPENERS.items():
        text = text.replace(opener, inert)
    return text


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter lines without the +++ fences, body) of a Hugo post with TOML front matter."""
    if text.startswith("+++\n"):
        end = text.find("\n+++\n", 3)
        if end != -1:
            return text[4 : end + 1], text[end + 5 :]
    return "", text


def build_content(ws: Workspace, folder: IssueFolder, placeholder: str) -> Content:
    """Render the issue for a platform: our unsubscribe link becomes `placeholder`."""

    settings = ws.settings
    issue = read_draft(folder.draft, sections=settings.section_names() or None)
    email = settings.email.model_copy(update={"unsubscribe": UNSUBSCRIBE_SENTINEL})
    renderer = Renderer(settings.model_copy(update={"email": email}), ws.templates_dir)
    rendered = renderer.render(issue)
    html = neutralize_html(rendered.email_html)
    text = neutralize_text(rendered.email_txt)
    html = html.replace(UNSUBSCRIBE_SENTINEL, placeholder)
    text = text.replace(UNSUBSCRIBE_SENTINEL, placeholder)
    _, body = split_front_matter(rendered.issue_md)
    name = _slug(settings.newsletter.name) or "newsletter"
    return Content(
        marker=f"digest-{name}-{folder.id}",
        number=issue.number,
        title=issue.title,
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=html,
        text=text,
        markdown=safe_markdown(body.strip() + "\n"),
        issue_md=rendered.issue_md,
        date=issue.date,
        language=settings.newsletter.language,
        web_url=renderer.web_url(issue),
        post_html=neutralize_html(str(block_html(_BARE_URL.sub(r"\1<\2>", body)))),
    )


# ---------------------------------------------------------------- the command


def parse_schedule(value: str, ws: Workspace) -> dt.datetime:
    """--schedule as an aware datetime in the future (a naive one is in newsletter.timezone)."""
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise PublishError(
            f"--schedule {value!r}: not an ISO date and time; write it like 2026-11-23T09:00 "
            "(newsletter.timezone) or 2026-11-23T09:00+09:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ws.tz)
    if when <= dt.datetime.now(dt.UTC):
        raise PublishError(f"--schedule {value!r} is in the past; give a time to come")
    return when


def publish_issue(
    ws: Workspace,
    folder: IssueFolder,
    request: PublishRequest,
    *,
    notify: Notify,
    confirm: Callable[..., bool],
    interactive: bool | None = None,
    platform: Platform | None = None,
) -> Remote:
    """Create or update the issue's draft on the platform; schedule or send it when asked."""

    name = check_platform_name(request.platform or ws.settings.publish.platform)
    if request.schedule and request.send_now:
        raise PublishError("give either --schedule or --send-now, not both")
    when = parse_schedule(request.schedule, ws) if request.schedule else None
    releasing = request.send_now or when is not None
    require_fresh_render(folder)
    platform = platform or make_platform(name, ws.settings.publish, ws.secrets, ws.root)
    try:
        content = build_content(ws, folder, platform.unsubscribe_placeholder)
        record = read_published(folder).get(name)
        if record and record.get("state") == "sent":
            raise PublishError(
                f"issue {folder.id} was already sent on {name} ({record['id']}, "
                f"{record.get('time')}); nothing to update"
            )
        if releasing:
            gate_on_check(ws, folder, notify, retry_hint="publish it as a draft only")
            action = f"at {when.isoformat()}" if when else "now"
            confirm_or_refuse(
                f"Send {content.subject!r} {action} to the readers of {platform.describe()}?",
                yes=request.yes,
                confirm=confirm,
                interactive=sys.stdin.isatty() if interactive is None else interactive,
            )
        remote = _save(platform, name, content, record, notify)
        _record(folder, name, remote, content)
        if releasing and remote.state != "sent":
            remote = _release(platform, name, remote, content, when, notify)
            _record(folder, name, remote, content)
    finally:
        platform.close()
    verb = {"draft": "draft saved", "scheduled": "scheduled", "sent": "sent"}.get(
        remote.state, remote.state
    )
    notify(f"{name}: {verb} ({remote.id}) {remote.url}".rstrip())
    return remote


def _save(
    platform: Platform,
    name: str,
    content: Content,
    record: dict[str, Any] | None,
    notify: Notify,
) -> Remote:

    unchanged = f"{PUBLISHED_NAME} was not changed"
    if record is not None:
        try:
            return platform.save(content, record["id"])
        except RemoteMissing as exc:
            notify(
                f"note: the {name} draft {record['id']} recorded in {PUBLISHED_NAME} is gone "
                f"there ({exc}); making a new one"
            )
        except NoAnswer as exc:
            raise PublishError(
                f"{exc}; the draft {record['id']} may or may not have been updated; {unchanged}: "
                "run the same command again"
            ) from None
    found = _find(platform, content, f"nothing was created; {unchanged}")
    if found is not None:
        return _adopt(platform, name, content, found, notify)
    return _create(platform, name, content, notify)


def _find(platform: Platform, content: Content, outcome: str) -> Remote | None:
    """The draft carrying the issue's marker, if the platform has one."""
    try:
        return platform.find(content)
    except NoAnswer as exc:
        raise PublishError(f"{exc}; {outcome}") from None


def _adopt(
    platform: Platform, name: str, content: Content, found: Remote, notify: Notify
) -> Remote:
    """Update a draft found by its marker (made by a run that did not record it)."""
    notify(
        f"note: found the {name} draft {found.id} by its marker {content.marker} (an earlier "
        "attempt stopped before recording it); updating it"
    )
    if found.state == "sent":
        return found
    try:
        return platform.save(content, found.id)
    except NoAnswer as exc:
        raise PublishError(
            f"{exc}; {PUBLISHED_NAME} was not changed: run the same command again"
        ) from None


def _create(
    platform: Platform,
    name: str,
    content: Content,
    notify: Notify,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Remote:
    """Create the draft. A 5xx answer may hide a draft made all the same, so before each
    new try the draft is looked up by its marker (never two drafts for one issue)."""
    again = (
        f"{PUBLISHED_NAME} was not changed: run the same command again and it finds that draft "
        f"by its marker {content.marker} instead of making a second"
    )
    tries = Tries(clock)
    while True:
        try:
            return platform.save(content, None)
        except MaybeDone as exc:
            wait = tries.next_wait(exc.retry_after)
            if wait is None:
                raise PublishError(
                    f"{exc}, {tries}; it may be down, or the draft may have been created all "
                    f"the same; {again}"
                ) from None
            sleep(wait)
            found = _find(platform, content, f"the draft may have been created there; {again}")
            if found is not None:
                return _adopt(platform, name, content, found, notify)
        except NoAnswer as exc:
            raise PublishError(f"{exc}; the draft may have been created there; {again}") from None


def _release(
    platform: Platform,
    name: str,
    remote: Remote,
    content: Content,
    when: dt.datetime | None,
    notify: Notify,
    sleep: Callable[[float], None] = time.sleep,
) -> Remote:
    """Send or schedule the saved draft. A send cannot be taken back, so it is never
    repeated on its own: after a 5xx the platform is asked where the issue is; a changed
    state means it was done, an unchanged one is said plainly (the platform may still be
    working on it) and left to the editor."""
    verb = "scheduled" if when else "sending"
    look = f"look at {remote.url or name} before trying again"
    try:
        return platform.release(remote, content, when)
    except MaybeDone as exc:
        wait = Tries().next_wait(exc.retry_after)
        sleep(MAX_WAIT if wait is None else wait)  # a moment for the platform to settle
        try:
            found = platform.read(remote, content)
        except DigestError as failed:
            raise PublishError(
                f"{exc}; the draft {remote.id} is saved, but it may or may not be {verb}, and "
                f"reading its state failed ({failed}): {look}"
            ) from None
        if found is not None and found.state != remote.state:
            notify(
                f"note: {name} did not confirm, but the issue is {found.state} there now "
                f"({found.id})"
            )
            return found
        raise PublishError(
            f"{exc}; {name} still shows the issue as {remote.state}, but it may still be "
            f"{verb}: {look} (digest never sends twice on its own; run the same command "
            "again to try once more)"
        ) from None
    except NoAnswer as exc:
        raise PublishError(
            f"{exc}; the draft {remote.id} is saved, but it may or may not be {verb}: {look}"
        ) from None
