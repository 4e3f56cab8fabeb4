"""Rendering an Issue: issue.md (Hugo post), email.html (MJML), email.txt.

One Jinja2 environment: the workspace's templates/ first, the built-in theme second.
Every output is rendered in memory first and written only when all succeeded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import TemplateError
from markupsafe import Markup

from digest.config import Settings
from digest.draft import CONTROL_CHARACTERS, control_name, read_draft
from digest.errors import DigestError, RenderError
from digest.models import Bullet, Issue, Item
from digest.templates import builtin_templates_dir, make_environment
from digest.text import display_width, shorten
from digest.workspace import (
    IssueFolder,
    Workspace,
    atomic_write,
    clean_stale_temps,
    lock_issue,
)

GMAIL_CLIP_BYTES = 102 * 1024
SAFE_SCHEMES = ("http:", "https:", "mailto:")
WEB_SCHEMES = ("http://", "https://")
TEXT_WIDTH = 78
PREHEADER_CHARS = 150
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]`]+[^\s<>()\[\]`.,;:!?'\"]")
_ANY_URL = re.compile(r"(?:https?|mailto|ftp|file):\S", re.IGNORECASE)

# Words of the email around the content, per newsletter.language (its first subtag).
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "issue": "Issue {number}",
        "period": "Period",
        "note": "Note",
        "view_online": "View online",
        "unsubscribe": "Unsubscribe",
        "also": "Also covered by",
    },
    "ko": {
        "issue": "제{number}호",
        "period": "기간",
        "note": "편집자 메모",
        "view_online": "웹에서 보기",
        "unsubscribe": "수신 거부",
        "also": "함께 보도한 곳",
    },
}


def labels_for(language: str) -> dict[str, str]:
    """The email's own words in the newsletter's language (English when unknown)."""
    return LABELS.get(language.split("-")[0].lower(), LABELS["en"])


def _is_safe_link(url: str) -> bool:
    return url.strip().lower().startswith(SAFE_SCHEMES)


def _markdown(*, links: bool = True) -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.validateLink = _is_safe_link  # type: ignore[method-assign]
    md.disable(["image"] if links else ["image", "link", "autolink"])
    return md


_PARSERS: dict[bool, Any] = {}


def _md(links: bool = True) -> Any:
    if links not in _PARSERS:
        _PARSERS[links] = _markdown(links=links)
    return _PARSERS[links]


def inline_html(text: str | None) -> Markup:
    """Markdown inline source as safe HTML: raw HTML escaped, only http(s)/mailto links."""
    return Markup(_md().renderInline(text or ""))


def title_html(text: str | None) -> Markup:
    """A title as safe HTML: Markdown emphasis and code, no links (it sits inside a link)."""
    return Markup(_md(links=False).renderInline(" ".join((text or "").split())))


def block_html(text: str | None) -> Markup:
    """Markdown paragraphs and lists (intro, notes) as safe HTML, with only safe links."""
    return Markup(_md().render(text or "").strip())


def web_href(url: str | None) -> str:
    """The URL when a reader's client can open it (http/https), else ''."""
    url = (url or "").strip()
    return url if url.lower().startswith(WEB_SCHEMES) else ""


def plain_text(text: str | None) -> str:
    """Markdown inline source as plain text, with safe link targets written out."""
    tokens = _md().parseInline(text or "")
    out: list[str] = []
    link: list[Any] = []  # [href, index in out where the link text starts]
    children = tokens[0].children if tokens and tokens[0].children else []
    for token in children:
        kind = token.type
        if kind in ("text", "code_inline"):
            out.append(token.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append(" ")
        elif kind == "link_open":
            link = [str(token.attrGet("href") or ""), len(out)]
        elif kind == "link_close" and link:
            href, start = link
            label = "".join(out[start:]).strip()
            if label not in (href, href.removeprefix("mailto:")):
                out.append(f" ({href})")
            link = []
    return "".join(out)


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


def host_of(url: str) -> str:
    """The host of a URL without `www.`, to name a source briefly."""
    match = re.match(r"https?://(?:www\.)?([^/:?#]+)", url or "")
    return match.group(1) if match else url


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
        self.env = make_environment(workspace_templates)
        self.env.filters["inline"] = inline_html
        self.env.filters["title"] = title_html
        self.env.filters["markdown"] = block_html
        self.env.filters["href"] = web_href
        self.env.filters["plain"] = plain_text
        self.env.filters["site"] = site_of
        self.env.filters["bullet_urls"] = bullet_urls
        self.env.filters["host"] = host_of

    def _context(self, issue: Issue) -> dict[str, Any]:
        newsletter = self.settings.newsletter
        sections = [s for s in issue.sections if s.items]
        labels = labels_for(newsletter.language)
        return {
            "issue": issue,
            "sections": sections,
            "items": issue.items(),
            "newsletter": newsletter,
            "settings": self.settings,
            "web_url": self.web_url(issue),
            "unsubscribe": self.unsubscribe_url(),
            "sectioned": bool(self.settings.sections),
            "period": f"{issue.period_start.isoformat()} ~ {issue.period_end.isoformat()}",
            "labels": labels,
            "issue_label": labels["issue"].format(number=issue.number),
        }

    def web_url(self, issue: Issue) -> str:
        """The issue's "view online" address from newsletter.web_url, or ''."""
        template = self.settings.newsletter.web_url.strip()
        if not template:
            return ""
        url = _fill(template, issue, "newsletter.web_url")
        if not url.lower().startswith(WEB_SCHEMES):
            raise RenderError(
                f"newsletter.web_url = {template!r} is not an http(s) URL; "
                'set it like "https://blog.example/posts/issue-{number}/" in digest.toml'
            )
        return url

    def unsubscribe_url(self) -> str:
        """The unsubscribe target from email.unsubscribe (mailto: or http(s):), or ''."""
        url = self.settings.email.unsubscribe.strip()
        if url and not url.lower().startswith(SAFE_SCHEMES):
            raise RenderError(
                f"email.unsubscribe = {url!r} is not a mailto: or https: URL; "
                'set it like "mailto:leave@example.com" or "https://example.com/unsubscribe"'
            )
        return url

    def subject(self, issue: Issue) -> str:
        """The subject line from email.subject."""
        return " ".join(_fill(self.settings.email.subject, issue, "email.subject").split())

    def preheader(self, issue: Issue) -> str:
        """Inbox preview text: the configured template, the intro, or the first items' titles."""
        if self.settings.email.preheader:
            text = _fill(self.settings.email.preheader, issue, "email.preheader")
        elif issue.intro:
            text = plain_text(issue.intro.strip().split("\n\n")[0])
        else:
            text = " · ".join(plain_text(i.translated_title or i.title) for i in issue.items()[:3])
        return shorten(" ".join(text.split()), PREHEADER_CHARS)

    def render(self, issue: Issue) -> Rendered:
        """Render all outputs in memory; raise RenderError on any template problem, and one
        that blames the content (not the template) when the draft's text is at fault."""
        _refuse_controls(issue)
        try:
            return self._render(issue)
        except RenderError as exc:
            if not issue.items() and not issue.intro and not issue.closing:
                raise
            try:
                self._render(
                    issue.model_copy(update={"sections": [], "intro": None, "closing": None})
                )
            except RenderError:
                raise exc from None
            raise RenderError(
                "the draft's content, not the template, made the email fail "
                f"({str(exc).split('; fix the template')[0]}); look in draft.md for unusual "
                "characters or markup"
            ) from None

    def _render(self, issue: Issue) -> Rendered:
        context = self._context(issue)
        subject = self.subject(issue)
        preheader = self.preheader(issue)
        context.update(subject=subject, preheader=preheader)
        name = "issue.md.j2"
        try:
            issue_md = self.env.get_template(name).render(context)
            name = "email.mjml.j2"
            mjml_source = self.env.get_template(name).render(context)
        except TemplateError as exc:
            where = getattr(exc, "filename", None) or getattr(exc, "name", None) or name
            line = getattr(exc, "lineno", None)
            at = f"{where}:{line}" if line else where
            raise RenderError(f"{at}: {exc}; fix the template") from None
        email_html = self.compile_mjml(mjml_source, context)
        email_txt = render_text(issue, self.settings, web_url=context["web_url"])
        return Rendered(_tidy(issue_md), email_html, email_txt, subject, preheader)

    def compile_mjml(self, source: str, context: dict[str, Any] | None = None) -> str:
        """MJML to HTML with mjml-python; `mj-include` partials come through the Jinja loaders.

        A partial ending in `.j2` is rendered with `context` first. MRML drops the inherited
        attributes (width, padding) of included body content, so the built-in theme includes
        only its head this way and assembles the body with Jinja includes.
        """
        from mjml import mjml2html

        failures: list[str] = []

        def loader(path: str) -> str:
            name = path.removeprefix("./")
            try:
                if name.endswith(".j2"):
                    return self.env.get_template(name).render(context or {})
                return str(self.env.loader.get_source(self.env, name)[0])  # type: ignore[union-attr]
            except TemplateError as exc:
                failures.append(f"mj-include {path!r}: {exc or type(exc).__name__}")
                raise

        try:
            return str(mjml2html(source, disable_comments=True, fonts={}, include_loader=loader))
        except ValueError as exc:
            reason = failures[0] if failures else f"invalid MJML: {exc}"
            theme = builtin_templates_dir()
            message = f"email.mjml.j2: {reason}; fix the template (built-in theme: {theme})"
            raise RenderError(message) from None


def _refuse_controls(issue: Issue) -> None:
    """RenderError naming the item whose text holds a control character (it breaks MJML)."""

    def find(value: object) -> str | None:
        if isinstance(value, str):
            found = CONTROL_CHARACTERS.search(value)
            return found.group() if found else None
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            return next((c for c in map(find, value) if c), None)
        return None

    where = [("the intro", issue.intro), ("the closing section", issue.model_dump()["closing"])]
    where += [(f"item {item.title!r}", item.model_dump()) for item in issue.items()]
    where.insert(0, ("the front matter", [issue.title, issue.authors, issue.tags]))
    for name, value in where:
        char = find(value)
        if char:
            raise RenderError(
                f"draft content: {name} holds an invisible control character, "
                f"{control_name(char)}; delete it from draft.md (the template is not at fault)"
            )


def _fill(template: str, issue: Issue, setting: str = "email.subject") -> str:
    values = {
        "title": issue.title,
        "number": issue.number,
        "date": issue.date.date().isoformat(),
        "period_start": issue.period_start.isoformat(),
        "period_end": issue.period_end.isoformat(),
    }
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise RenderError(
            f"{setting} = {template!r}: cannot fill it ({type(exc).__name__}: {exc}); use only "
            "{title}, {number}, {date}, {period_start} and {period_end}, and write a literal "
            "brace as {{ or }}"
        ) from None


def _tidy(text: str) -> str:
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


def _chunks(word: str, width: int) -> list[str]:
    """A word too long for a line, cut into pieces of at most `width` columns."""
    pieces, piece, used = [], "", 0
    for char in word:
        size = display_width(char)
        if piece and used + size > width:
            pieces.append(piece)
            piece, used = "", 0
        piece, used = piece + char, used + size
    return pieces + [piece] if piece else pieces


def wrap_text(text: str, indent: str = "", hanging: str = "", width: int = TEXT_WIDTH) -> list[str]:
    """Wrap at `width` display columns; a word holding a URL is never broken, others may be."""
    room = max(width - max(display_width(indent), display_width(hanging)), 10)
    lines: list[str] = []
    parts, used = [indent], display_width(indent)
    for word in text.split():
        size = display_width(word)
        keep = size <= room or _ANY_URL.search(word)
        for piece in [word] if keep else _chunks(word, room):
            size = size if keep else display_width(piece)
            if len(parts) == 1 or used + 1 + size <= width:
                parts.append(piece if len(parts) == 1 else " " + piece)
                used += size + (len(parts) > 2)
            else:
                lines.append("".join(parts))
                parts, used = [hanging, piece], display_width(hanging) + size
    lines.append("".join(parts))
    return [line.rstrip() for line in lines]


def _rule(title: str, char: str) -> str:
    return char * min(TEXT_WIDTH, max(display_width(title), 3))


def _text_bullets(bullets: list[Bullet], depth: int = 0) -> list[str]:
    lines: list[str] = []
    marker = "-" if depth == 0 else "·"
    indent = "  " + "  " * depth
    for bullet in bullets:
        lines += wrap_text(plain_text(bullet.text), f"{indent}{marker} ", f"{indent}  ")
        lines += _text_bullets(bullet.children, depth + 1)
    return lines


def _text_paragraphs(text: str, indent: str = "") -> list[str]:
    lines: list[str] = []
    for number, paragraph in enumerate(p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()):
        if number:
            lines.append(indent.rstrip())
        lines += wrap_text(plain_text(" ".join(paragraph.split())), indent, indent)
    return lines


def render_text(issue: Issue, settings: Settings, *, web_url: str = "") -> str:
    """The plain-text edition: title, Period, sections, items with bullets, URLs written out.

    Lines are wrapped at 78 display columns (a Korean syllable takes two); only a line
    holding a URL may run longer, since a broken URL cannot be clicked.
    """
    labels = labels_for(settings.newsletter.language)
    lines = wrap_text(issue.title) + [_rule(issue.title, "="), ""]
    period = f"{issue.period_start.isoformat()} ~ {issue.period_end.isoformat()}"
    lines.append(f"{labels['period']}: {period}")
    if web_url:
        lines.append(f"{labels['view_online']}: {web_url}")
    if issue.intro:
        lines += [""] + _text_paragraphs(issue.intro)
    for section in issue.sections:
        if not section.items:
            continue
        if section.name:
            name = section.name.upper() if section.name.isascii() else section.name
            lines += ["", ""] + wrap_text(name) + [_rule(name, "-")]
        for item in section.items:
            lines.append("")
            lines += wrap_text(plain_text(item.title), "* ", "  ")
            if item.translated_title:
                lines += wrap_text(plain_text(item.translated_title), "  ", "  ")
            if web_href(item.url):
                lines.append(f"  {item.url.strip()}")
            elif item.site_name:
                lines.append(f"  ({item.site_name})")
            also = [web_href(url) for url in item.also if web_href(url)]
            if also:
                lines += wrap_text(f"{labels['also']}: " + ", ".join(also), "  ", "  ")
            lines += _text_bullets(item.bullets)
            if item.note:
                note = f"{labels['note']}: {item.note.strip()}"
                lines += _text_paragraphs(note, "  | ")
    if issue.closing:
        lines += ["", ""] + wrap_text(issue.closing.title) + [_rule(issue.closing.title, "-")]
        lines += _text_bullets(issue.closing.bullets)
    unsubscribe = settings.email.unsubscribe.strip()
    if unsubscribe:
        lines += ["", "--", f"{labels['unsubscribe']}: {unsubscribe}"]
    return "\n".join(line.rstrip() for line in lines).strip() + "\n"


def write_outputs(folder: IssueFolder, rendered: Rendered) -> None:
    """Write issue.md, email.html, email.txt (each atomically)."""
    atomic_write(folder.issue_md, rendered.issue_md)
    atomic_write(folder.email_html, rendered.email_html)
    atomic_write(folder.email_txt, rendered.email_txt)


def render_issue(
    workspace: Workspace,
    folder: IssueFolder,
    *,
    wait: float = 0.0,
    notify: Callable[[str], None] | None = None,
) -> Path:
    """draft.md -> issue.md, email.html, email.txt; no network. Returns the draft path.

    Holds the issue's lock (waiting up to `wait` seconds for a running compose or render);
    `notify` hears of a stale lock taken over."""
    sections = workspace.settings.section_names() or None
    lock = lock_issue(folder, "render", wait=wait)
    try:
        if not folder.draft.is_file():
            raise DigestError(
                f"{folder.draft}: no draft yet; run `digest compose {folder.id}` first"
            )
        if lock.note and notify is not None:
            notify(lock.note)
        clean_stale_temps(folder.path)
        issue = read_draft(folder.draft, sections=sections)
        rendered = Renderer(workspace.settings, workspace.templates_dir).render(issue)
        write_outputs(folder, rendered)
    finally:
        lock.release()
    return folder.draft
