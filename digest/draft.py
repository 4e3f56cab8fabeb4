"""draft.md <-> Issue. The grammar of the draft lives here, and only here.

    +++                                  TOML front matter: title, number, date, period,
    title = "Article Weekly, Issue 31"   authors, tags, closing_title
    ...
    +++

    An optional intro paragraph.

    ## Section name                      only when [[sections]] are configured
    ### Source's own title               an item (## when there are no sections)
    <https://source.example/article>     the source URL, on its own line under the heading
    _번역된 제목_                           optional translated title, in one emphasis
    Also covered by: <https://b.example/x>, <https://c.example/y>
                                         optional: other sources of the same story
                                         (triage merges them), one line, comma-separated
    - bullet                             bullets; nested by two spaces
      - detail
    > Editor's note                      optional, a block quote

    ## 이번 호의 결론                      the closing section: the heading named by
    - takeaway                           closing_title, with bullets and no URL

Titles, bullets and notes are kept as Markdown source, exactly as written.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from digest.errors import DraftError
from digest.models import Bullet, Closing, Issue, Item, Section

FRONT = "+++"
CLOSING_TITLES = {"ko": "이번 호의 결론", "en": "Takeaways"}
_URL_LINE = re.compile(
    r"^(?:<(?P<a>(?:https?|file):[^>\s]+)>|(?P<b>(?:https?|file):[^\s<>]+))"
    r"(?:\s+·\s+(?P<site>\S.*))?$"
)
_TITLE_LINK = re.compile(r"^\[(?P<title>.+)\]\((?P<url>(?:https?|file):[^\s)]+)\)$")
ALSO_LABEL = "Also covered by:"
_ALSO_LINE = re.compile(r"^also covered by:\s*(?P<urls>\S.*)$", re.IGNORECASE)
_ALSO_URL = re.compile(r"^<?(?P<url>(?:https?|file):[^\s<>,]+)>?$")
_TRANSLATED = re.compile(r"^(?:_(?P<a>[^_].*?)_|\*(?P<b>[^*].*?)\*)$")


_BLOCK_NAMES = {
    "hr": "a horizontal rule",
    "html_block": "an HTML block",
    "fence": "a code block",
    "code_block": "an indented code block",
    "ordered_list_open": "a numbered list ('1. ')",
    "table_open": "a table",
}


def default_closing_title(language: str) -> str:
    """The closing section's heading for a language."""
    return CLOSING_TITLES.get(language, CLOSING_TITLES["en"])


# Control characters other than tab and line breaks: invisible, and they break the email.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
_CONTROL_NAMES = {
    "\x00": "NUL",
    "\x08": "backspace",
    "\x0b": "vertical tab",
    "\x0c": "form feed",
    "\x1b": "ESC",
    "\x7f": "DEL",
}


def strip_controls(text: str) -> str:
    """Text without control characters (terminal colour codes removed whole; others as spaces)."""
    return CONTROL_CHARACTERS.sub(" ", _ANSI.sub("", text))


def control_name(char: str) -> str:
    """A control character as people know it: `ESC (U+001B)`."""
    name = _CONTROL_NAMES.get(char)
    return f"{name} (U+{ord(char):04X})" if name else f"U+{ord(char):04X}"


def clean_inline(text: str) -> str:
    """Make one line of Markdown safe to hold in a heading, bullet or list item."""
    text = re.sub(r"\s+", " ", strip_controls(text or "")).strip()
    # A trailing run of '#' after a space would be read as a heading's closing sequence.
    text = re.sub(r"(\s)(#+)$", lambda m: m.group(1) + "\\" + m.group(2), text)
    if text and not _is_one_paragraph(text):
        text = "\\" + text  # it would start a block (heading, list, quote, HTML, fence, rule)
    return text


def _is_one_paragraph(text: str) -> bool:
    from markdown_it import MarkdownIt

    global _BLOCKS
    if _BLOCKS is None:
        _BLOCKS = MarkdownIt("commonmark")
    tokens = _BLOCKS.parse(text)
    return [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"] and (
        tokens[1].content == text
    )


_BLOCKS: Any = None


def clean_bullets(
    bullets: list[Bullet], clean: Callable[[str], str] = clean_inline, max_depth: int = 99
) -> list[Bullet]:
    """Bullets made safe for the draft: one line each, no empty ones, nesting bounded."""
    out = []
    for bullet in bullets:
        text = clean(bullet.text)
        children = clean_bullets(bullet.children, clean, max_depth - 1) if max_depth > 0 else []
        if text:
            out.append(Bullet(text=text, children=children))
        else:
            out.extend(children)
    return out


def escape_title(text: str) -> str:
    """A plain title from the web as Markdown that shows exactly that text."""
    text = re.sub(r"\s+", " ", text or "").strip()
    text = re.sub(r"([\\`*_<>\[\]])", r"\\\1", text)
    return clean_inline(text)


# ---------------------------------------------------------------- rendering


def _bullet_lines(bullets: list[Bullet], depth: int = 0) -> list[str]:
    lines: list[str] = []
    for bullet in bullets:
        lines.append(f"{'  ' * depth}- {bullet.text}")
        lines.extend(_bullet_lines(bullet.children, depth + 1))
    return lines


def bullets_markdown(bullets: list[Bullet]) -> str:
    """Bullets as a Markdown list, nested by two spaces."""
    return "\n".join(_bullet_lines(bullets))


def toml_value(value: Any) -> str:
    """One TOML value on one line (lists inline, dates in ISO form)."""
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return tomli_w.dumps({"v": value})[4:].strip()


def _front_matter(issue: Issue, closing_title: str | None) -> str:
    data: dict[str, Any] = {
        "title": issue.title,
        "number": issue.number,
        "date": issue.date,
        "period": [issue.period_start, issue.period_end],
        "authors": issue.authors,
        "tags": issue.tags,
    }
    if closing_title:
        data["closing_title"] = closing_title
    body = "".join(f"{key} = {toml_value(value)}\n" for key, value in data.items())
    return f"{FRONT}\n{body}{FRONT}\n"


def render_item(item: Item, level: int) -> str:
    """One item as draft Markdown."""
    source = f"<{item.url}>" + (f" · {item.site_name}" if item.site_name else "")
    parts = [f"{'#' * level} {item.title}", source]
    if item.translated_title:
        parts.append(f"_{item.translated_title}_")
    if item.also:
        parts.append(ALSO_LABEL + " " + ", ".join(f"<{url}>" for url in item.also))
    if item.bullets:
        parts.append(bullets_markdown(item.bullets))
    if item.note:
        parts.append("\n".join(f"> {line}" if line else ">" for line in item.note.split("\n")))
    return "\n\n".join(parts) + "\n"


def render_draft(issue: Issue, *, sectioned: bool, closing_title: str) -> str:
    """The Issue as draft.md text (the inverse of parse_draft)."""
    chunks = [_front_matter(issue, closing_title if issue.closing else None)]
    if issue.intro:
        chunks.append(issue.intro.strip() + "\n")
    for section in issue.sections:
        if sectioned:
            chunks.append(f"## {section.name}\n")
        for item in section.items:
            chunks.append(render_item(item, 3 if sectioned else 2))
    if issue.closing:
        chunks.append(f"## {issue.closing.title}\n\n{bullets_markdown(issue.closing.bullets)}\n")
    return "\n".join(chunks)


# ---------------------------------------------------------------- parsing


@dataclass
class _Cursor:
    path: Path
    offset: int  # lines before the Markdown body (front matter)

    def line(self, token_map: list[int] | None) -> int | None:
        return token_map[0] + 1 + self.offset if token_map else None

    def fail(self, token_map: list[int] | None, message: str) -> DraftError:
        return DraftError(self.path, self.line(token_map), message)


def _split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    lines = text.split("\n")
    if not lines or lines[0].strip() != FRONT:
        raise DraftError(
            path, 1, f"the draft must start with TOML front matter between '{FRONT}' lines"
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == FRONT)
    except StopIteration:
        raise DraftError(
            path, 1, f"the front matter is not closed: add a '{FRONT}' line after it"
        ) from None
    try:
        data = tomllib.loads("\n".join(lines[1:end]))
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) + 1 if match else 2
        raise DraftError(path, line, f"bad TOML in the front matter: {exc}") from None
    return data, "\n".join(lines[end + 1 :]), end + 1


def _as_date(value: Any, key: str, path: Path) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise DraftError(path, 2, f"front matter `{key}` must be a date like 2026-11-15, got {value!r}")


def _front_values(data: dict[str, Any], path: Path) -> dict[str, Any]:
    for key in ("title", "number", "date", "period"):
        if key not in data:
            raise DraftError(path, 2, f"front matter has no `{key}`; add it (see README: draft.md)")
    period = data["period"]
    if not isinstance(period, list) or len(period) != 2:
        raise DraftError(
            path, 2, 'front matter `period` must be two dates: ["2026-11-15", "2026-11-21"]'
        )
    date = data["date"]
    if isinstance(date, dt.date) and not isinstance(date, dt.datetime):
        date = dt.datetime.combine(date, dt.time())
    if not isinstance(date, dt.datetime):
        raise DraftError(path, 2, f"front matter `date` must be a TOML date-time, got {date!r}")
    if not isinstance(data["number"], int):
        raise DraftError(
            path, 2, f"front matter `number` must be an integer, got {data['number']!r}"
        )
    for key in ("authors", "tags"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DraftError(path, 2, f"front matter `{key}` must be a list of strings")
    return {
        "title": str(data["title"]),
        "number": data["number"],
        "date": date,
        "period_start": _as_date(period[0], "period", path),
        "period_end": _as_date(period[1], "period", path),
        "authors": list(data.get("authors", [])),
        "tags": list(data.get("tags", [])),
    }


def _inline_text(content: str) -> str:
    return " ".join(line.strip() for line in content.split("\n")).strip()


def _parse_bullets(tokens: list[Any], start: int, cur: _Cursor) -> tuple[list[Bullet], int]:
    """Parse a bullet_list starting at tokens[start]; return bullets and the index after it."""
    bullets: list[Bullet] = []
    i = start + 1
    while tokens[i].type != "bullet_list_close":
        token = tokens[i]
        if token.type != "list_item_open":
            i += 1
            continue
        i += 1
        text: str | None = None
        children: list[Bullet] = []
        while tokens[i].type != "list_item_close":
            t = tokens[i]
            if t.type == "inline":
                if text is not None:
                    raise cur.fail(
                        t.map,
                        "a bullet holds two paragraphs; keep one line per bullet or nest a '  - ' bullet",
                    )
                text = _inline_text(t.content)
                i += 1
            elif t.type == "bullet_list_open":
                nested, i = _parse_bullets(tokens, i, cur)
                children.extend(nested)
            elif t.type in ("paragraph_open", "paragraph_close"):
                i += 1
            else:
                raise cur.fail(
                    t.map or token.map,
                    f"unexpected {t.type.replace('_open', '')} inside a bullet; bullets hold one line of text and nested '  - ' bullets",
                )
        bullets.append(Bullet(text=text or "", children=children))
        i += 1
    return bullets, i + 1


def _blockquote_text(lines: list[str], token_map: list[int]) -> str:
    out = []
    for line in lines[token_map[0] : token_map[1]]:
        stripped = re.sub(r"^\s{0,3}>\s?", "", line)
        out.append(stripped.rstrip())
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _refuse_controls(text: str, path: Path) -> None:
    """DraftError at the first control character, with line, column and the fix."""
    found = CONTROL_CHARACTERS.search(text)
    if found is None:
        return
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    raise DraftError(
        path,
        line,
        f"an invisible control character, {control_name(found.group())}, at column {column}; "
        "delete it (it breaks the email; it often comes with text pasted from a terminal "
        "or a PDF)",
    )


def parse_draft(
    text: str,
    path: Path | str = "draft.md",
    *,
    sections: list[str] | None = None,
) -> Issue:
    """Parse draft.md into an Issue; raise DraftError naming the line and the fix."""
    return _parse(text, Path(path), sections)[0]


Heading = tuple[int, str, int]  # level, title, 0-based line in the whole text


def _parse(text: str, path: Path, sections: list[str] | None) -> tuple[Issue, list[Heading]]:
    """The Issue and every heading of the body, from one pass of the Markdown parser."""
    from markdown_it import MarkdownIt

    text = text.replace("\r\n", "\n")
    _refuse_controls(text, path)
    data, body, offset = _split_front_matter(text, path)
    values = _front_values(data, path)
    closing_title = str(data.get("closing_title") or "").strip() or None
    cur = _Cursor(path, offset)
    body_lines = body.split("\n")
    tokens = MarkdownIt("commonmark").parse(body)
    sectioned = bool(sections)
    item_level = 3 if sectioned else 2

    intro: list[str] = []
    result_sections: list[Section] = []
    closing: Closing | None = None
    current_section: Section | None = None if sectioned else Section(name=None)
    if current_section is not None:
        result_sections.append(current_section)
    item: Item | None = None
    item_map: list[int] | None = None
    in_closing = False

    def finish_item() -> None:
        nonlocal item
        if item is not None and not item.url:
            raise cur.fail(
                item_map,
                f"item {item.title!r} has no source URL: put it on its own line under the heading, like <https://example.com/article>",
            )
        item = None

    heads: list[Heading] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.type == "heading_open":
            level = int(t.tag[1])
            title = _inline_text(tokens[i + 1].content)
            heads.append((level, title, (t.map[0] if t.map else 0) + offset))
            finish_item()
            in_closing = False
            if level == 2 and closing_title and title == closing_title:
                closing = Closing(title=title)
                in_closing = True
            elif sectioned and level == 2:
                following = tokens[i + 4].content.strip() if i + 4 < len(tokens) else ""
                if title not in (sections or []) and (
                    _TITLE_LINK.match(title) or _URL_LINE.match(following)
                ):
                    raise cur.fail(
                        t.map,
                        f"'## {title}' looks like an item (it has a source URL), but [[sections]] "
                        "are configured: items are '### ' headings under a '## Section' heading; "
                        f"make it '### {title}' under one of: {', '.join(sections or [])}",
                    )
                if title not in (sections or []):
                    raise cur.fail(
                        t.map,
                        f"section {title!r} is not configured; add it to [[sections]] in digest.toml or move its items under one of: {', '.join(sections or [])}",
                    )
                current_section = Section(name=title)
                result_sections.append(current_section)
            elif level == item_level:
                if current_section is None:
                    raise cur.fail(
                        t.map,
                        f"item {title!r} is outside any section; put a '## Section' heading above it",
                    )
                match = _TITLE_LINK.match(title)
                item = Item(
                    title=match.group("title") if match else title,
                    url=match.group("url") if match else "",
                )
                item_map = t.map
                current_section.items.append(item)
            else:
                want = "'## Section' or '### Item'" if sectioned else "'## Item'"
                raise cur.fail(t.map, f"a level-{level} heading is not expected here; use {want}")
            i += 3
            continue
        if t.type == "bullet_list_open":
            bullets, i = _parse_bullets(tokens, i, cur)
            if in_closing and closing is not None:
                closing.bullets.extend(bullets)
            elif item is not None:
                item.bullets.extend(bullets)
            else:
                raise cur.fail(
                    t.map,
                    "a bullet list outside any item; put it under an item's heading or remove it",
                )
            continue
        if t.type == "blockquote_open":
            depth, j = 1, i + 1
            while depth:
                depth += {"blockquote_open": 1, "blockquote_close": -1}.get(tokens[j].type, 0)
                j += 1
            if item is None:
                raise cur.fail(t.map, "a note ('> …') outside any item; put it under an item")
            note = _blockquote_text(body_lines, t.map or [0, 0])
            item.note = f"{item.note}\n>\n{note}" if item.note else note
            i = j
            continue
        if t.type == "paragraph_open":
            content = tokens[i + 1].content.strip()
            if item is None and not in_closing:
                if current_section is None or not any(s.items for s in result_sections):
                    intro.append(
                        "\n".join(body_lines[t.map[0] : t.map[1]]).strip() if t.map else content
                    )
                    i += 3
                    continue
                raise cur.fail(
                    t.map, "text between items; make it a bullet ('- ') or a note ('> ') of an item"
                )
            if re.match(r"^#{1,6}[^\s#]", content):
                raise cur.fail(
                    t.map,
                    f"{content.splitlines()[0]!r} looks like a heading: put a space after the '#'",
                )
            if item is not None:
                url = _URL_LINE.match(content)
                translated = _TRANSLATED.match(content)
                also = _ALSO_LINE.match(" ".join(content.split()))
                if also and item.url:
                    item.also.extend(_also_urls(also.group("urls"), cur, t.map))
                elif url and not item.url:
                    item.url = url.group("a") or url.group("b")
                    item.site_name = url.group("site")
                elif translated and not item.translated_title and not item.bullets:
                    item.translated_title = translated.group("a") or translated.group("b")
                else:
                    raise cur.fail(
                        t.map,
                        f"unexpected text in item {item.title!r}; make it a bullet ('- ') or a note ('> ')",
                    )
                i += 3
                continue
            raise cur.fail(t.map, "text in the closing section; make it a bullet ('- ')")
        if t.type in _BLOCK_NAMES:
            raise cur.fail(
                t.map,
                f"{_BLOCK_NAMES[t.type]} is not part of the draft grammar; use bullets ('- ') or notes ('> ')",
            )
        i += 1
    finish_item()
    issue = Issue(
        **values,
        intro="\n\n".join(intro) or None,
        sections=result_sections,
        closing=closing,
    )
    return issue, heads


def _also_urls(text: str, cur: _Cursor, token_map: list[int] | None) -> list[str]:
    """The URLs of an "Also covered by:" line; anything else in it is an error."""
    urls = []
    for piece in (p.strip() for p in text.split(",")):
        match = _ALSO_URL.match(piece)
        if not match:
            raise cur.fail(
                token_map,
                f"{piece!r} in the 'Also covered by:' line is not a URL; write "
                "'Also covered by: <https://a.example/x>, <https://b.example/y>'",
            )
        urls.append(match.group("url"))
    return urls


def read_draft(path: Path, *, sections: list[str] | None = None) -> Issue:
    """Read and parse draft.md."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raw = exc.object
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise DraftError(
            path,
            line,
            f"not UTF-8 text at column {column}: byte 0x{raw[exc.start]:02x} ({exc.reason}); "
            "save the file as UTF-8 (your editor's encoding setting), or retype that character",
        ) from None
    except OSError as exc:
        raise DraftError(path, None, f"cannot read ({exc.strerror})") from None
    return parse_draft(text, path, sections=sections)


# ---------------------------------------------------------------- editing in place


@dataclass
class Placement:
    """A new or refreshed item for splice_items: its section, or the item it replaces."""

    item: Item
    section: str | None = None
    replace_url: str | None = None


def _closing_key_line(lines: list[str], end: int, title: str) -> tuple[int, str]:
    """Where `closing_title = …` goes in the front matter (lines[0] and lines[end] are +++)."""
    entry = f"closing_title = {toml_value(title)}"
    at = next((i for i in range(1, end) if lines[i].lstrip().startswith("[")), end)
    trial = lines[1:at] + [entry] + lines[at:end]
    try:
        if tomllib.loads("\n".join(trial)).get("closing_title") == title:
            return at, entry
    except tomllib.TOMLDecodeError:
        pass
    return 1, entry  # first key of the table: always at the top level


@dataclass
class _Edits:
    """Where new text goes, in the draft's own line numbers (0-based)."""

    insert: dict[int, list[list[str]]] = field(default_factory=dict)  # before line -> chunks
    replace: dict[int, tuple[int, list[str]]] = field(default_factory=dict)  # start -> stop, chunk
    key_line: tuple[int, str] | None = None  # a front matter line to add before that line

    def add(self, at: int, *chunks: list[str]) -> None:
        self.insert.setdefault(at, []).extend(chunks)


def _place_items(
    edits: _Edits,
    issue: Issue,
    heads: list[Heading],
    total: int,
    placements: list[Placement],
    sections: list[str] | None,
) -> None:
    """Plan every placement against one parse of the draft."""
    sectioned = bool(sections)
    level = 3 if sectioned else 2
    closing_name = issue.closing.title if issue.closing else None

    def end_of(index: int, max_level: int) -> int:
        later = (h[2] for h in heads[index + 1 :] if h[0] <= max_level)
        return next(later, total)

    item_heads = [
        i
        for i, h in enumerate(heads)
        if h[0] == level and not (level == 2 and h[1] == closing_name)
    ]
    by_url: dict[str, int] = {}
    if len(item_heads) == len(issue.items()):
        for index, existing in zip(item_heads, issue.items(), strict=True):
            by_url.setdefault(existing.url, index)
    closing_line = next((h[2] for h in heads if h[0] == 2 and h[1] == closing_name), total)
    names = sections or []
    rank = {name: n for n, name in enumerate(names)}
    section_heads = {h[1]: i for i, h in enumerate(heads) if sectioned and h[0] == 2}
    new_sections: dict[str, list[list[str]]] = {}
    for placed in placements:
        chunk = render_item(placed.item, level).rstrip("\n").split("\n")
        if placed.replace_url is not None and placed.replace_url in by_url:
            index = by_url[placed.replace_url]
            edits.replace[heads[index][2]] = (end_of(index, level), chunk)
        elif not sectioned:
            edits.add(closing_line, chunk)
        else:
            target = placed.section if placed.section in names else names[0]
            if target in section_heads:
                edits.add(end_of(section_heads[target], 2), chunk)
            else:
                new_sections.setdefault(target, []).append(chunk)
    for target in sorted(new_sections, key=rank.__getitem__):
        later = [h[2] for h in heads if h[0] == 2 and rank.get(h[1], -1) > rank[target]]
        first, *rest = new_sections[target]
        edits.add(min([*later, closing_line]), [f"## {target}", "", *first], *rest)


def _place_closing(edits: _Edits, lines: list[str], closing: Closing) -> None:
    """The closing section at the end; its title into the front matter unless already there."""
    end = next(i for i in range(1, len(lines)) if lines[i].strip() == FRONT)
    front = tomllib.loads("\n".join(lines[1:end]))
    title = str(front.get("closing_title") or "").strip() or closing.title
    if not front.get("closing_title"):
        edits.key_line = _closing_key_line(lines, end, title)
    edits.add(len(lines), [f"## {title}", "", *_bullet_lines(closing.bullets)])


def _apply(lines: list[str], edits: _Edits) -> list[str]:
    """The draft's lines with the edits made; one blank line around each new chunk."""
    out: list[str] = []
    blank_before_next = False

    def emit(chunk: list[str]) -> None:
        nonlocal blank_before_next
        while out and not out[-1].strip():
            out.pop()
        if out:
            out.append("")
        out.extend(chunk)
        blank_before_next = True

    i = 0
    while True:
        for chunk in edits.insert.get(i, []):
            emit(chunk)
        if i >= len(lines):
            return out
        if i in edits.replace:
            stop, chunk = edits.replace[i]
            emit(chunk)
            i = stop
            continue
        if edits.key_line is not None and i == edits.key_line[0]:
            out.append(edits.key_line[1])
        if blank_before_next and lines[i].strip():
            out.append("")
        blank_before_next = False
        out.append(lines[i])
        i += 1


def splice_items(
    text: str,
    placements: list[Placement],
    *,
    sections: list[str] | None = None,
    closing: Closing | None = None,
) -> str:
    """Put new items (and a first closing section) into draft text in one pass; every other
    line stays exactly as the editor wrote it.

    An item replaces the one whose URL is its replace_url, else goes at the end of its section
    (a new `## section` heading is added in the configured order when the draft has none).
    The closing goes last, its title into the front matter as `closing_title`.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    text = text.replace("\r\n", "\n")
    issue, heads = _parse(text, Path("draft.md"), sections)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    edits = _Edits()
    _place_items(edits, issue, heads, len(lines), placements, sections)
    if closing is not None and issue.closing is None:
        _place_closing(edits, lines, closing)
    return newline.join(_apply(lines, edits)) + newline


def splice_item(
    text: str,
    item: Item,
    *,
    sections: list[str] | None = None,
    section: str | None = None,
    replace_url: str | None = None,
) -> str:
    """Put one item into draft text (see splice_items)."""
    return splice_items(text, [Placement(item, section, replace_url)], sections=sections)
