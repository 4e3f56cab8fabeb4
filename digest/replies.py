"""The LLM's answers: the JSON schemas asked for, and reading what comes back.

A JSON answer is validated against its schema, leniently (bare strings where bullet objects
are wanted, raw newlines inside strings as llama.cpp's grammar lets through, a ```json fence);
a prose answer is read as a Markdown bullet list. An answer that cannot be used raises
`BadReply` with a sentence the model is shown in the one repair request.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from digest.draft import clean_bullets, clean_inline, strip_controls
from digest.models import Bullet
from digest.text import split_sentences

_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,|i can(?:'|no)t|i can not|i'?m unable|i am unable|"
    r"i won'?t|as an ai|죄송|요약할 수 없)",
    re.I,
)
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*•+]|\d{1,2}[.)])\s+(.*\S)\s*$")


def _bullet_dicts(value: Any) -> Any:
    """Accept bare strings where the schema wants {"text": ...} bullets."""
    if isinstance(value, list):
        return [{"text": v} if isinstance(v, str) else v for v in value]
    return value


class DraftBullet(BaseModel):
    """A bullet as the model writes it (a bare string is accepted too)."""

    text: str = Field(min_length=1)
    children: list[DraftBullet] = Field(default_factory=list)

    @field_validator("children", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        return [] if value is None else _bullet_dicts(value)


class SummaryDraft(BaseModel):
    """The structured answer for one article."""

    title: str = ""
    translated_title: str | None = None
    bullets: list[DraftBullet] = Field(min_length=1)
    section: str | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("bullets", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        return _bullet_dicts(value)


class ClosingDraft(BaseModel):
    """The structured answer for the closing section."""

    bullets: list[str] = Field(min_length=1)

    @field_validator("bullets", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [v.get("text", "") if isinstance(v, dict) else v for v in value]
        return value


class BadReply(Exception):
    """The reply cannot be used as it is (a repair request may fix it)."""


def _bullet_schema(depth: int) -> dict[str, Any]:
    properties: dict[str, Any] = {"text": {"type": "string"}}
    if depth > 1:
        properties["children"] = {"type": "array", "items": _bullet_schema(depth - 1)}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def summary_schema(section_names: list[str]) -> dict[str, Any]:
    """The strict JSON schema of one summary; `section` is an enum of the configured sections."""
    properties: dict[str, Any] = {
        "title": {"type": "string"},
        "translated_title": {"type": ["string", "null"]},
        "bullets": {"type": "array", "items": _bullet_schema(3)},
    }
    if section_names:
        properties["section"] = {"type": "string", "enum": list(section_names)}
    properties["tags"] = {"type": "array", "items": {"type": "string"}}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


CLOSING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"bullets": {"type": "array", "items": {"type": "string"}}},
    "required": ["bullets"],
    "additionalProperties": False,
}


def scores_schema(section_names: list[str]) -> dict[str, Any]:
    """The strict JSON schema of a triage batch: a score and a reason (and a section) per id."""
    row: dict[str, Any] = {
        "id": {"type": "integer"},
        "score": {"type": "integer"},
        "reason": {"type": "string"},
    }
    if section_names:
        row["section"] = {"type": "string", "enum": section_names}
    return {
        "type": "object",
        "properties": {
            "scores": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": row,
                    "required": list(row),
                    "additionalProperties": False,
                },
            }
        },
        "required": ["scores"],
        "additionalProperties": False,
    }


def clean_line(text: str) -> str:
    """One line of the model's text: no control characters, list marker or bold wrapper."""
    text = re.sub(r"\s+", " ", strip_controls(text or "")).strip()
    text = re.sub(r"^(?:[-*•+]|\d{1,2}[.)])\s+", "", text)
    return re.sub(r"^\*\*(.+)\*\*$", r"\1", text).strip()


def to_bullets(drafts: list[DraftBullet]) -> list[Bullet]:
    """The model's bullets as draft bullets: list markers stripped, four levels at most."""
    bullets = [Bullet.model_validate(d.model_dump()) for d in drafts]
    return clean_bullets(bullets, lambda text: clean_inline(clean_line(text)), max_depth=3)


def _strip_fence(content: str) -> str:
    fenced = re.match(r"^\s*```[\w-]*\s*\n(.*?)\n?```\s*$", content, re.S)
    return fenced.group(1) if fenced else content


def looks_json(content: str) -> bool:
    return content.lstrip().startswith(("{", "[", "```"))


def load_json(content: str) -> Any:
    text = _strip_fence(content).strip()
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        text = text[start : end + 1]
    try:
        return json.loads(text, strict=False)
    except ValueError as exc:
        raise BadReply(f"the answer is not valid JSON ({exc})") from None


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:4]:
        where = ".".join(str(p) for p in error["loc"]) or "the object"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_summary_json(content: str, section_names: list[str]) -> SummaryDraft:
    """Validate a JSON answer against the summary schema (lenient about bare strings)."""
    data = load_json(content)
    try:
        draft = SummaryDraft.model_validate(data)
    except ValidationError as exc:
        raise BadReply(f"it does not match the schema ({_validation_message(exc)})") from None
    if not to_bullets(draft.bullets):
        raise BadReply("it has no non-empty bullets")
    if section_names and draft.section not in section_names:
        raise BadReply(f"section must be one of {section_names}, got {draft.section!r}")
    return draft


def parse_markdown(content: str, section_names: list[str]) -> SummaryDraft:
    """Read a plain-text answer: an optional `# title`, `Section:` line and nested bullets."""
    title = ""
    section = None
    roots: list[DraftBullet] = []
    stack: list[tuple[int, DraftBullet]] = []
    prose: list[str] = []
    for line in _strip_fence(content).splitlines():
        if not line.strip():
            continue
        heading = re.match(r"^\s*#{1,6}\s+(.*\S)", line)
        if heading and not title and not roots:
            title = clean_line(heading.group(1))
            continue
        named = re.match(r"^\s*\**(?:section|섹션)\**\s*:\s*\**(.+?)\**\s*$", line, re.I)
        if named:
            section = named.group(1).strip()
            continue
        item = _LIST_ITEM.match(line.expandtabs(4))
        if not item:
            prose.append(line.strip())
            continue
        indent = len(item.group(1))
        bullet = DraftBullet(text=item.group(2))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        (stack[-1][1].children if stack else roots).append(bullet)
        stack.append((indent, bullet))
    if not roots:
        sentences = [s for p in prose for s in split_sentences(p) if not s.endswith(":")]
        roots = [DraftBullet(text=s) for s in sentences[:5]]
    if not roots:
        raise BadReply("the answer holds no bullets")
    if section not in section_names:
        section = section_names[0] if section_names else None
    return SummaryDraft(title=title, bullets=roots, section=section)


def parse_closing_json(content: str) -> ClosingDraft:
    """Validate the closing answer."""
    try:
        draft = ClosingDraft.model_validate(load_json(content))
    except ValidationError as exc:
        raise BadReply(f"it does not match the schema ({_validation_message(exc)})") from None
    if not [b for b in draft.bullets if clean_line(b)]:
        raise BadReply("it has no non-empty bullets")
    return draft


def parse_closing_markdown(content: str) -> ClosingDraft:
    """Read closing bullets from plain text."""
    lines = [m.group(2) for m in map(_LIST_ITEM.match, content.splitlines()) if m]
    if not lines:
        lines = [s for s in split_sentences(content) if s][:4]
    if not lines:
        raise BadReply("the answer holds no bullets")
    return ClosingDraft(bullets=lines)


def is_refusal(content: str) -> bool:
    """True when a prose answer opens like a refusal ("I'm sorry, I can't ...")."""
    return not looks_json(content) and bool(_REFUSAL.match(content))


def parse_scores(content: str) -> list[dict[str, Any]]:
    """Read the rows of a triage batch's answer (JSON or not, the rows must be JSON)."""
    data = load_json(content)
    rows = data.get("scores") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise BadReply("it has no `scores` list")
    return [r for r in rows if isinstance(r, dict)]
