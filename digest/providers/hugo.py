"""Hugo: the issue as a page bundle `<content_dir>/<slug>/index.md` of the editor's site.

The page is issue.md with `draft = true` (a draft: `hugo` leaves it out unless run with
`--buildDrafts`) and `digest_issue = "<marker>"` in its front matter; `--send-now` sets
`draft = false`, `--schedule` also sets `publishDate` (Hugo builds it from then on). A later
publish keeps whatever the page was (draft, scheduled, published). Raw HTML in the text is
escaped, so nothing from a page or an LLM reaches the site as markup.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import ConfigError, PublishError
from digest.providers import Content, Remote, RemoteMissing
from digest.publish import split_front_matter
from digest.workspace import atomic_write

if TYPE_CHECKING:
    from digest.config import PublishSettings, Secrets

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DRAFT = re.compile(r"^draft\s*=\s*(true|false)\s*$", re.MULTILINE)
_PUBLISH_DATE = re.compile(r"^publishDate\s*=\s*(\S+)\s*$", re.MULTILINE)


def make(settings: PublishSettings, secrets: Secrets, root: Path) -> HugoPlatform:
    """Hugo from [publish.hugo]; content_dir is relative to the workspace."""
    s = settings.hugo
    if not s.content_dir.strip():
        raise ConfigError(
            "publish.hugo.content_dir is not set: name the Hugo site's content folder, e.g. "
            'content_dir = "../site/content/posts" in digest.toml'
        )
    folder = (root / Path(s.content_dir).expanduser()).resolve()
    if not folder.is_dir():
        raise ConfigError(
            f"publish.hugo.content_dir = {s.content_dir!r}: {folder} is not a folder; create it "
            "or fix the setting"
        )
    return HugoPlatform(folder, s.slug)


class HugoPlatform:
    """One page bundle per issue in the site's content folder."""

    name = "hugo"
    unsubscribe_placeholder = ""  # a web page has no unsubscribe link

    def __init__(self, content_dir: Path, slug: str) -> None:
        self.content_dir = content_dir
        self.slug_template = slug

    def describe(self) -> str:
        """The content folder, for the confirmation prompt."""
        return f"the Hugo site at {self.content_dir}"

    def close(self) -> None:
        """Nothing to close."""

    def slug(self, content: Content) -> str:
        """The bundle's folder name from publish.hugo.slug."""
        try:
            slug = self.slug_template.format(
                number=content.number, date=content.date.date().isoformat()
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"publish.hugo.slug = {self.slug_template!r}: cannot fill it ({exc}); use "
                "{number} and {date}"
            ) from None
        if not _SLUG.match(slug) or ".." in slug:
            raise ConfigError(
                f"publish.hugo.slug gives {slug!r}: use letters, digits, '.', '_' and '-' only, "
                'e.g. "issue-{number}"'
            )
        return slug

    def page(self, content: Content) -> Path:
        """content_dir/<slug>/index.md."""
        return self.content_dir / self.slug(content) / "index.md"

    def _remote(self, content: Content, text: str) -> Remote:
        draft = _DRAFT.search(text)
        scheduled = _PUBLISH_DATE.search(text)
        if draft is None or draft.group(1) == "true":
            state = "draft"
        elif scheduled and dt.datetime.fromisoformat(scheduled.group(1)) > dt.datetime.now(dt.UTC):
            state = "scheduled"
        else:
            state = "published"
        page = self.page(content)
        return Remote(
            id=str(page.relative_to(self.content_dir)),
            state=state,
            url=content.web_url or str(page),
        )

    def find(self, content: Content) -> Remote | None:
        """The page when it exists and carries the issue's marker."""
        page = self.page(content)
        if not page.is_file():
            return None
        text = page.read_text(encoding="utf-8")
        if f'digest_issue = "{content.marker}"' not in text:
            raise PublishError(
                f"{page} exists and was not written by digest for this issue; move it away or "
                "set another publish.hugo.slug"
            )
        return self._remote(content, text)

    def read(self, remote: Remote, content: Content) -> Remote | None:
        """The page as it is now."""
        return self.find(content)

    def _write(self, content: Content, draft: bool, publish_date: str | None) -> Remote:

        front, _ = split_front_matter(content.issue_md)
        lines = [front.rstrip("\n"), f"draft = {'true' if draft else 'false'}"]
        if publish_date:
            lines.append(f"publishDate = {publish_date}")
        lines.append(f'digest_issue = "{content.marker}"')
        text = "+++\n" + "\n".join(lines) + "\n+++\n\n" + content.markdown
        atomic_write(self.page(content), text)
        return self._remote(content, text)

    def save(self, content: Content, remote_id: str | None) -> Remote:
        """Write the page, keeping its draft flag and publishDate when it exists."""
        page = self.page(content)
        if remote_id is not None and not page.is_file():
            raise RemoteMissing(f"{page} is gone")
        existing = self.find(content)
        if existing is None:
            return self._write(content, draft=True, publish_date=None)
        text = page.read_text(encoding="utf-8")
        draft = _DRAFT.search(text)
        scheduled = _PUBLISH_DATE.search(text)
        return self._write(
            content,
            draft=draft is None or draft.group(1) == "true",
            publish_date=scheduled.group(1) if scheduled else None,
        )

    def release(self, remote: Remote, content: Content, when: dt.datetime | None) -> Remote:
        """Publish the page (draft = false), from `when` on when given."""
        return self._write(content, draft=False, publish_date=when.isoformat() if when else None)
