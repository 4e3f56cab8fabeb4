"""The HTML email and its plain-text part: safety, strict HTML, dark mode, size, footer, wrapping.

"Strict HTML" here means: libxml2's HTML parser accepts the document with recovery off, and
every element is written out explicitly — each non-void element closed in nesting order, no
stray or mismatched end tags, no duplicate attributes, only known HTML element names (MJML
passes unknown tags through silently), no bare `&` in text. Conditional comments for Outlook
are comments and are not parsed.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import lxml.html
import pytest

from digest.config import Settings
from digest.errors import RenderError
from digest.models import Bullet, Item
from digest.render import GMAIL_CLIP_BYTES, Renderer, plain_text, wrap_text
from digest.text import display_width
from tests.email_samples import LONG_URL, LONG_WORD, sample_issue, sample_settings

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
KNOWN = VOID | {
    "html",
    "head",
    "title",
    "style",
    "body",
    "div",
    "span",
    "table",
    "tbody",
    "thead",
    "tr",
    "td",
    "th",
    "p",
    "a",
    "ul",
    "ol",
    "li",
    "strong",
    "em",
    "b",
    "i",
    "code",
    "pre",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "center",
    "s",
    "del",
    "sup",
    "sub",
    "small",
}
URL_ATTRS = {"href", "src", "action", "formaction", "background", "poster", "xlink:href", "data"}


class StrictChecker(HTMLParser):
    """Collects every departure from the strict form described in the module docstring."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check(tag, attrs)
        if tag not in VOID:
            self.problems.append(f"<{tag}/> on a non-void element leaves it open")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"end tag for void element </{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.problems.append(
                f"</{tag}> does not close the open <{self.stack[-1] if self.stack else '-'}>"
            )
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "&" in data and self.stack and self.stack[-1] not in ("style", "title"):
            self.problems.append(f"bare & in text: {data[:40]!r}")

    def _check(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in KNOWN:
            self.problems.append(f"unknown element <{tag}>")
        names = [name for name, _ in attrs]
        if len(names) != len(set(names)):
            self.problems.append(f"duplicate attribute in <{tag}>: {names}")


def assert_strict_html(html: str) -> None:
    """Fail with every problem found when html is not strict HTML (see the module docstring)."""
    lxml.html.document_fromstring(html, parser=lxml.html.HTMLParser(recover=False))
    checker = StrictChecker()
    checker.feed(html)
    checker.close()
    assert not checker.problems, checker.problems[:10]
    assert not checker.stack, f"unclosed elements: {checker.stack}"


def assert_nothing_executable(html: str) -> None:
    """No script, no event handler, no javascript:/data:/vbscript: URL, no embedded objects."""
    doc = lxml.html.document_fromstring(html)
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag not in (
            "script",
            "iframe",
            "object",
            "embed",
            "form",
            "img",
            "svg",
            "math",
            "base",
        ), element.tag
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"<{element.tag} {name}={value!r}>"
            if name.lower() in URL_ATTRS:
                squeezed = re.sub(r"[\s\x00-\x1f]", "", value).lower()
                assert squeezed.startswith(("http://", "https://", "mailto:")), (
                    f"<{element.tag} {name}={value!r}>"
                )
    assert (
        "javascript:"
        not in " ".join(
            a for el in doc.iter() if isinstance(el.tag, str) for a in el.attrib.values()
        ).lower()
    )


def hostile_issue():
    """An issue whose every field tries to get markup or script into the email."""
    issue = sample_issue(3, sections=False)
    issue.title = 'Weekly <script>alert("title")</script>'
    issue.intro = 'Hello <iframe src="https://evil.example/"></iframe> [x](javascript:alert(1))'
    issue.sections[0].items = [
        Item(
            title='<script>alert("xss")</script> Big news',
            url="javascript:alert(1)",
            site_name='<b onmouseover="alert(1)">site</b>',
            translated_title='"><svg onload=alert(1)>',
            bullets=[
                Bullet(
                    text='<img src=x onerror="alert(1)"> pictures',
                    children=[
                        Bullet(
                            text="[click me](javascript:alert(document.cookie)) and [ok](https://ok.example/)"
                        ),
                        Bullet(
                            text="[data](data:text/html;base64,PHNjcmlwdD4=) [vb](vbscript:msgbox) "
                            "<a href=javascript:x>a</a>"
                        ),
                        Bullet(
                            text="![img](https://evil.example/pixel.gif) and <https://auto.example/link>"
                        ),
                    ],
                )
            ],
            note='<div onclick="steal()">raw html note</div>\n\n<script>alert(2)</script>',
        ),
        Item(
            title="Local sample",
            url="file:articles/small-models.md",
            bullets=[Bullet(text='A [mail](mailto:me@example.com) and "quotes" & ampersands')],
        ),
        Item(
            title="Quote in url",
            url='https://ok.example/a"onmouseover="alert(1)',
            bullets=[Bullet(text="x")],
        ),
    ]
    return issue


def test_hostile_input_reaches_the_html_only_as_text() -> None:
    rendered = Renderer(sample_settings()).render(hostile_issue())
    html = rendered.email_html
    assert_nothing_executable(html)
    assert_strict_html(html)
    doc = lxml.html.document_fromstring(html)
    text = doc.body.text_content()
    # Escaped, not dropped: the editor sees what came in.
    assert '<script>alert("xss")</script> Big news' in text
    assert '<img src=x onerror="alert(1)"> pictures' in text
    assert '<div onclick="steal()">raw html note</div>' in text
    hrefs = [a.get("href") for a in doc.iter("a")]
    assert "https://ok.example/" in hrefs and "mailto:me@example.com" in hrefs
    assert "https://auto.example/link" in hrefs
    # The iframe stays text; a Markdown image becomes a plain link (no remote pixel loads).
    assert "https://evil.example/" not in hrefs and "https://evil.example/pixel.gif" in hrefs
    # The javascript: and file: items are shown without a link; the quoted URL stays one attribute.
    titles = {a.text_content(): a.get("href") for a in doc.iter("a")}
    assert not any("Big news" in t for t in titles) and "Local sample" not in titles
    assert titles["Quote in url"] == 'https://ok.example/a"onmouseover="alert(1)'
    assert "<script>" not in rendered.email_html.split("<body", 1)[1].replace("&lt;script&gt;", "")


def test_the_example_like_issue_is_strict_html_with_dark_mode_and_lang() -> None:
    html = Renderer(sample_settings()).render(sample_issue(12, long_parts=True)).email_html
    assert_strict_html(html)
    doc = lxml.html.document_fromstring(html)
    assert doc.get("lang") == "ko"
    metas = {m.get("name"): m.get("content") for m in doc.iter("meta")}
    assert metas.get("color-scheme") == "light dark"
    assert metas.get("supported-color-schemes") == "light dark"
    styles = " ".join(s.text_content() for s in doc.iter("style"))
    assert re.search(r":root\s*{\s*color-scheme:\s*light dark", styles)
    assert "@media (prefers-color-scheme: dark)" in styles
    assert "Apple SD Gothic Neo" in html and "Malgun Gothic" in html and "line-height:1.7" in html
    # 600 px layout that stacks: MJML's fluid column and the 600 px container.
    assert "max-width:600px" in html and "mj-column-per-100" in html
    english = Settings.model_validate({"newsletter": {"language": "en"}})
    assert (
        lxml.html.document_fromstring(Renderer(english).render(sample_issue(2)).email_html).get(
            "lang"
        )
        == "en"
    )


def test_structure_header_items_sections_closing_and_preheader() -> None:
    issue = sample_issue(6, long_parts=True)
    rendered = Renderer(sample_settings()).render(issue)
    doc = lxml.html.document_fromstring(rendered.email_html)
    text = " ".join(doc.body.text_content().split())
    assert (
        "Article Weekly, Issue 7" in text and "제7호" in text and "2026-11-15 ~ 2026-11-21" in text
    )
    for name in ("AI", "개발", "Culture", "정리"):
        assert name in text
    first = issue.items()[0]
    link = next(a for a in doc.iter("a") if a.text_content() == first.title)
    assert link.get("href") == first.url
    assert first.site_name in text and first.translated_title in text
    assert "편집자 메모" in text and "한 번 읽어볼 만한 글입니다." in text
    nested = doc.xpath("//li/ul/li")
    assert nested, "detail bullets are nested lists"
    assert doc.xpath("//strong[text()='규칙']") and doc.xpath("//code[text()='Dispatchers.IO']")
    # The preheader is the first paragraph of the intro, hidden at the top of the body.
    assert rendered.preheader == "이번 호에서는 증분 뷰와 코루틴 도입기를 다룹니다."
    hidden = doc.body.xpath(".//div[contains(@style,'display:none')]")[0]
    assert hidden.text_content() == rendered.preheader


def test_footer_links_from_web_url_and_unsubscribe() -> None:
    doc = lxml.html.document_fromstring(
        Renderer(sample_settings()).render(sample_issue(2)).email_html
    )
    links = {a.text_content(): a.get("href") for a in doc.iter("a")}
    assert links["웹에서 보기"] == "https://blog.example/posts/issue-7/"
    assert links["수신 거부"] == "mailto:leave@example.com?subject=unsubscribe"
    plain = Renderer(Settings()).render(sample_issue(2)).email_html
    assert "웹에서 보기" not in plain and "수신 거부" not in plain


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"newsletter": {"web_url": "https://blog.example/{slug}/"}}, "newsletter.web_url"),
        ({"newsletter": {"web_url": "javascript:alert(1)//{number}"}}, "not an http(s) URL"),
        ({"email": {"unsubscribe": "javascript:alert(1)"}}, "email.unsubscribe"),
        ({"email": {"subject": "{title} {oops}"}}, "email.subject"),
        ({"email": {"preheader": "{number"}}, "email.preheader"),
    ],
)
def test_bad_email_settings_are_clear_errors(settings: dict, message: str) -> None:
    with pytest.raises(RenderError, match=re.escape(message)):
        Renderer(Settings.model_validate(settings)).render(sample_issue(2))


def test_subject_and_preheader_templates() -> None:
    settings = sample_settings(
        subject="[AW #{number}] {period_start}~{period_end}", preheader="{title} · {date}"
    )
    rendered = Renderer(settings).render(sample_issue(2))
    assert rendered.subject == "[AW #7] 2026-11-15~2026-11-21"
    assert rendered.preheader == "Article Weekly, Issue 7 · 2026-11-23"
    assert "<title>[AW #7] 2026-11-15~2026-11-21</title>" in rendered.email_html
    issue = sample_issue(4)
    issue.intro = None
    titles = Renderer(sample_settings()).preheader(issue)
    assert titles.startswith("포스트그레스 0, 증분 뷰를 내놓다 · 코루틴 도입 3년")
    issue.intro = "word " * 100
    clipped = Renderer(sample_settings()).preheader(issue)
    assert len(clipped) <= 150 and clipped.endswith("word…")


def test_fifty_items_stay_under_gmail_clipping() -> None:
    renderer = Renderer(sample_settings())
    sizes = {n: len(renderer.render(sample_issue(n)).email_html.encode("utf-8")) for n in (10, 50)}
    assert sizes[50] < GMAIL_CLIP_BYTES, sizes
    per_item = (sizes[50] - sizes[10]) / 40
    assert per_item < 1900, f"{per_item:.0f} bytes per item"


def test_workspace_overrides_partials_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "head.mjml").write_text(
        "<mj-style>.mine { color: red; }</mj-style>", encoding="utf-8"
    )
    (tmp_path / "email" / "footer.mjml.j2").write_text(
        "<mj-section><mj-column><mj-text>Bye from {{ newsletter.name }} &amp; co</mj-text>"
        "</mj-column></mj-section>",
        encoding="utf-8",
    )
    html = Renderer(sample_settings(), tmp_path).render(sample_issue(2)).email_html
    assert ".mine { color: red; }" in html and "prefers-color-scheme" not in html
    assert "Bye from Article Weekly &amp; co" in html and "수신 거부" not in html
    assert "Postgres 0 ships incremental views" in html  # the built-in item partial still applies


def test_broken_partials_are_render_errors(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "head.mjml").write_text("<mj-style>", encoding="utf-8")
    with pytest.raises(RenderError, match="email.mjml.j2"):
        Renderer(sample_settings(), tmp_path).render(sample_issue(2))
    (tmp_path / "email.mjml.j2").write_text(
        '<mjml><mj-head><mj-include path="email/missing.mjml" /></mj-head>'
        "<mj-body></mj-body></mjml>",
        encoding="utf-8",
    )
    with pytest.raises(RenderError, match="email/missing.mjml"):
        Renderer(sample_settings(), tmp_path).render(sample_issue(2))


# --- email.txt -------------------------------------------------------------------------------


def test_text_wraps_at_78_columns_except_urls() -> None:
    settings = sample_settings()
    issue = sample_issue(9, long_parts=True)
    issue.sections[0].items[0].note = "편집자의 긴 메모입니다. " * 12 + LONG_WORD
    text = Renderer(settings).render(issue).email_txt
    long_lines = [line for line in text.splitlines() if display_width(line) > 78]
    assert long_lines, "the sample must contain URLs longer than a line"
    for line in long_lines:
        assert re.search(r"(https?|mailto):\S", line), f"{display_width(line)} columns: {line!r}"
    assert any(line.strip() == LONG_URL or LONG_URL in line for line in text.splitlines())
    assert LONG_WORD not in text and LONG_WORD[:60] in text  # a long non-URL word is cut
    # Korean counts two columns a syllable: a line of Korean must not run past 78 columns.
    korean = [
        line for line in text.splitlines() if re.search("[가-힣]", line) and "http" not in line
    ]
    assert max(display_width(line) for line in korean) <= 78
    assert max(display_width(line) for line in korean) > 70


def test_text_edition_layout() -> None:
    issue = sample_issue(4)
    issue.sections[0].items[0].url = "file:articles/local.md"
    text = Renderer(sample_settings()).render(issue).email_txt
    lines = text.splitlines()
    assert lines[0] == "Article Weekly, Issue 7" and set(lines[1]) == {"="}
    assert "기간: 2026-11-15 ~ 2026-11-21" in lines
    assert "웹에서 보기: https://blog.example/posts/issue-7/" in lines
    assert "file:" not in text
    assert "  https://tech.example.com/posts/001/incremental-views-and-coroutines" in lines
    assert "AI\n--" in text and "개발\n----" in text and "정리\n----" in text
    top = next(i for i, line in enumerate(lines) if line.startswith("  - 도입 후"))
    assert lines[top + 1].startswith("    · ") or lines[top + 2].startswith("    · ")
    assert "가이드 (https://kotlinlang.org/docs/coroutines-guide.html)" in " ".join(text.split())
    assert "**" not in text and "`" not in text and "<" not in text
    assert lines[-1] == "수신 거부: mailto:leave@example.com?subject=unsubscribe"
    assert text.endswith("\n") and not any(line != line.rstrip() for line in lines)


def test_plain_text_and_wrap_helpers() -> None:
    assert plain_text("**bold** _em_ `code` [a](https://x.example/) <https://y.example/>") == (
        "bold em code a (https://x.example/) https://y.example/"
    )
    assert (
        plain_text("[bad](javascript:alert(1)) \\*star\\*") == "[bad](javascript:alert(1)) *star*"
    )
    assert plain_text("[me](mailto:me@example.com) <me@example.com>") == (
        "me (mailto:me@example.com) me@example.com"
    )
    assert wrap_text("가나다 " * 30, "- ", "  ") == [
        "- " + "가나다 " * 10 + "가나다",
        "  " + "가나다 " * 10 + "가나다",
        "  " + "가나다 " * 7 + "가나다",
    ]
    assert all(display_width(line) <= 78 for line in wrap_text("가나다 " * 30, "- ", "  "))
    assert wrap_text("") == [""]


def test_the_example_golden_is_strict_and_safe() -> None:
    golden = Path(__file__).resolve().parent / "golden" / "example" / "email.html"
    html = golden.read_text(encoding="utf-8")
    assert_strict_html(html)
    assert_nothing_executable(html)
    assert len(html.encode("utf-8")) < GMAIL_CLIP_BYTES
