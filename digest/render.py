"""Rendering an Issue: issue.md (Hugo post), email.html (MJML), email.txt.

One Jinja2 environment: the workspace's templates/ first, the built-in theme second.
Every output is rendered in memory first and written only when all succeeded.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
)
from markupsafe import Markup

from digest.config import Settings
from digest.errors import RenderError
from digest.models import Bullet, Issue, Item
from digest.workspace import IssueFolder, atomic_write

GMAIL_CLIP_BYTES = 102 * 1024
SAFE_SCHEMES = ("http:", "https:", "mailto:")
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]`]+[^\s<>()\[\]`.,;:!?'\"]")


def builtin_templates_dir() -> Path:
    """The built-in theme: shipped in the wheel, or the repository's templates/."""
    here = Path(__file__).resolve().parent
    packaged = here / "_templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


def _markdown() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = lambda url: url.strip().lower().startswith(SAFE_SCHEMES)
    md.disable(["image"])
    return md


_MD = None


def inline_html(text: str) -> Markup:
    """Markdown inline source as safe HTML: raw HTML escaped, only http(s)/mailto links."""
    global _MD
    if _MD is None:
        _MD = _markdown()
    return Markup(_MD.renderInline(text or ""))


def plain_text(text: str) -> str:
    """Markdown inline source as plain text, link targets written out."""
    text = re.sub(r"!?\[([^\]]*)\]\(([^)\s]+)[^)]*\)", lambda m: f"{m.group(1)} ({m.group(2)})", text or "")
    text = re.sub(r"<((?:https?|mailto):[^>]+)>", r"\1", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])[*_](\S.*?\S|\S)[*_](?![\w*])", r"\1", text)
    text = re.sub(r"`([^`]*)`", r"\1", text)
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!<>])", r"\1", text)


def bullet_urls(bullets: list[Bullet]) -> list[str]:
    """Bare URLs written in bullets, in order, once each."""
    seen: list[str] = []
    for bullet in bullets:
        for url in _BARE_URL.findall(bullet.text):
            if url not in seen:
                seen.append(url)
        for url in bullet_urls(bullet.children):
            if url not in seen:
                seen.append(url)
    return seen


def site_of(item: Item) -> str:
    """The site name shown next to an item: its own, else the URL's host."""
    if item.site_name:
        return item.site_name
    match = re.match(r"https?://(?:www\.)?([^/:]+)", item.url)
    return match.group(1) if match else ""


@dataclass
class Rendered:
    """The three outputs of a render, in memory."""

    issue_md: str
    email_html: str
    email_txt: str
    subject: str
    preheader: str


class Renderer:
    """Renders issues with the workspace's templates over the built-in theme."""

    def __init__(self, settings: Settings, workspace_templates: Path | None = None) -> None:
        self.settings = settings
        loaders = []
        if workspace_templates is not None and workspace_templates.is_dir():
            loaders.append(FileSystemLoader(str(workspace_templates)))
        loaders.append(FileSystemLoader(str(builtin_templates_dir())))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name) and name.endswith((".html.j2", ".mjml.j2", ".mjml")),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["inline"] = inline_html
        self.env.filters["plain"] = plain_text
        self.env.filters["site"] = site_of
        self.env.filters["bullet_urls"] = bullet_urls

    def _context(self, issue: Issue) -> dict[str, Any]:
        newsletter = self.settings.newsletter
        web_url = newsletter.web_url.format(number=issue.number) if newsletter.web_url else ""
        sections = [s for s in issue.sections if s.items]
        return {
            "issue": issue,
            "sections": sections,
            "items": issue.items(),
            "newsletter": newsletter,
            "settings": self.settings,
            "web_url": web_url,
            "unsubscribe": self.settings.email.unsubscribe,
            "sectioned": bool(self.settings.sections),
            "period": f"{issue.period_start.isoformat()} ~ {issue.period_end.isoformat()}",
        }

    def subject(self, issue: Issue) -> str:
        """The subject line from email.subject."""
        return _fill(self.settings.email.subject, issue)

    def preheader(self, issue: Issue) -> str:
        """Inbox preview text: the configured template, the intro, or the first items' titles."""
        if self.settings.email.preheader:
            return _fill(self.settings.email.preheader, issue)
        if issue.intro:
            text = plain_text(" ".join(issue.intro.split()))
        else:
            text = " · ".join(plain_text(i.translated_title or i.title) for i in issue.items()[:3])
        return text[:150]

    def render(self, issue: Issue) -> Rendered:
        """Render all outputs in memory; raise RenderError on any template problem."""
        context = self._context(issue)
        subject = self.subject(issue)
        preheader = self.preheader(issue)
        context.update(subject=subject, preheader=preheader)
        try:
            issue_md = self.env.get_template("issue.md.j2").render(context)
            mjml_source = self.env.get_template("email.mjml.j2").render(context)
        except TemplateError as exc:
            where = getattr(exc, "filename", None) or getattr(exc, "name", None) or "template"
            line = getattr(exc, "lineno", None)
            raise RenderError(f"{where}{':' + str(line) if line else ''}: {exc}; fix the template") from None
        email_html = self.compile_mjml(mjml_source)
        email_txt = render_text(issue, self.settings, web_url=context["web_url"])
        return Rendered(_tidy(issue_md), email_html, email_txt, subject, preheader)

    def compile_mjml(self, source: str) -> str:
        """MJML to HTML with mjml-python; partials through mj-include."""
        from mjml import mjml2html

        base = builtin_templates_dir()

        def loader(path: str) -> str:
            name = path.removeprefix("./")
            try:
                return self.env.get_template(name).render() if name.endswith(".j2") else (
                    self.env.loader.get_source(self.env, name)[0]  # type: ignore[union-attr]
                )
            except TemplateError as exc:
                raise RenderError(f"mj-include {path}: {exc}") from None

        try:
            return str(mjml2html(source, disable_comments=True, fonts={}, include_loader=loader))
        except ValueError as exc:
            raise RenderError(f"email.mjml.j2 produced invalid MJML: {exc} (theme in {base})") from None


def _fill(template: str, issue: Issue) -> str:
    values = {
        "title": issue.title,
        "number": issue.number,
        "date": issue.date.date().isoformat(),
        "period_start": issue.period_start.isoformat(),
        "period_end": issue.period_end.isoformat(),
    }
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise RenderError(
            f"email template {template!r}: unknown field {exc}; use {{title}}, {{number}}, {{date}}, "
            "{period_start} or {period_end}"
        ) from None


def _tidy(text: str) -> str:
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


def _wrap(text: str, width: int, indent: str, hanging: str) -> list[str]:
    """Wrap at width, never breaking a URL."""
    wrapper = textwrap.TextWrapper(
        width=width,
        initial_indent=indent,
        subsequent_indent=hanging,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return wrapper.wrap(text) or [indent.rstrip()]


def _text_bullets(bullets: list[Bullet], depth: int = 0) -> list[str]:
    lines: list[str] = []
    marker = "-" if depth == 0 else "·"
    for bullet in bullets:
        indent = "  " + "  " * depth
        lines += _wrap(plain_text(bullet.text), 78, f"{indent}{marker} ", f"{indent}  ")
        lines += _text_bullets(bullet.children, depth + 1)
    return lines


def render_text(issue: Issue, settings: Settings, *, web_url: str = "") -> str:
    """The plain-text edition: title, Period, sections, items with bullets, URLs written out."""
    lines = [issue.title, "=" * min(78, max(len(issue.title), 10)), ""]
    lines.append(f"{issue.period_start.isoformat()} ~ {issue.period_end.isoformat()}")
    if web_url:
        lines += ["", f"View online: {web_url}"]
    if issue.intro:
        lines.append("")
        for paragraph in issue.intro.split("\n\n"):
            lines += _wrap(plain_text(" ".join(paragraph.split())), 78, "", "")
    for section in issue.sections:
        if not section.items:
            continue
        if section.name:
            lines += ["", "", section.name.upper() if section.name.isascii() else section.name]
            lines.append("-" * min(78, max(len(section.name), 3)))
        for item in section.items:
            lines.append("")
            lines += _wrap(plain_text(item.title), 78, "* ", "  ")
            if item.translated_title:
                lines += _wrap(plain_text(item.translated_title), 78, "  ", "  ")
            lines.append(f"  {item.url}")
            lines += _text_bullets(item.bullets)
            if item.note:
                lines += _wrap("Note: " + plain_text(" ".join(item.note.split())), 78, "  | ", "  | ")
    if issue.closing:
        lines += ["", "", issue.closing.title, "-" * min(78, max(len(issue.closing.title), 3))]
        lines += _text_bullets(issue.closing.bullets)
    if settings.email.unsubscribe:
        lines += ["", "--", f"Unsubscribe: {settings.email.unsubscribe}"]
    return "\n".join(line.rstrip() for line in lines).strip() + "\n"


def write_outputs(folder: IssueFolder, rendered: Rendered) -> None:
    """Write issue.md, email.html, email.txt (each atomically)."""
    atomic_write(folder.issue_md, rendered.issue_md)
    atomic_write(folder.email_html, rendered.email_html)
    atomic_write(folder.email_txt, rendered.email_txt)
