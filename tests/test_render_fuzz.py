"""`digest render` on mutated drafts (hypothesis): never a traceback; a refused draft exits 1
naming the file and line, and the previous outputs stay exactly as they were."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from digest.cli import app
from digest.draft import render_draft
from digest.models import Bullet, Closing, Issue, Item, Section

runner = CliRunner()
OUTPUTS = ("issue.md", "email.html", "email.txt")


def sample_draft() -> bytes:
    items = [
        Item(
            title=f"Story {n} headline",
            url=f"https://news.example/{n}",
            site_name="News",
            translated_title=f"기사 {n}" if n % 2 else None,
            bullets=[
                Bullet(text=f"First point of story {n}", children=[Bullet(text="a detail")]),
                Bullet(text=f"Second point, **bold** and `code` {n}"),
            ],
            note="An editor's note." if n == 1 else None,
        )
        for n in range(4)
    ]
    issue = Issue(
        title="Fuzz Weekly, Issue 3",
        number=3,
        date=dt.datetime(2026, 11, 23, 9),
        period_start=dt.date(2026, 11, 15),
        period_end=dt.date(2026, 11, 21),
        authors=["Editor"],
        intro="An intro paragraph.",
        sections=[Section(name=None, items=items)],
        closing=Closing(title="Takeaways", bullets=[Bullet(text="One takeaway")]),
    )
    return render_draft(issue, sectioned=False, closing_title="Takeaways").encode("utf-8")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "digest.toml").write_text("[newsletter]\nlanguage = 'en'\n", encoding="utf-8")
    folder = root / "issues" / "003"
    folder.mkdir(parents=True)
    (folder / "draft.md").write_bytes(sample_draft())
    result = runner.invoke(app, ["render", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    return root, {name: (folder / name).read_bytes() for name in OUTPUTS}


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


@st.composite
def mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """One way an editor, a crash or a bad tool damages a draft."""
    lines = _lines(data)
    kind = draw(
        st.sampled_from(
            ["truncate", "delete", "duplicate", "garbage", "utf8", "indent", "front", "swap"]
        )
    )
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "delete":
        start = draw(st.integers(0, len(lines) - 1))
        stop = draw(st.integers(start + 1, min(len(lines), start + 6)))
        return b"\n".join(lines[:start] + lines[stop:])
    if kind == "duplicate":
        at = draw(st.integers(0, len(lines) - 1))
        return b"\n".join(lines[: at + 1] + [lines[at]] + lines[at + 1 :])
    if kind == "garbage":
        at = draw(st.integers(0, len(data)))
        junk = draw(
            st.one_of(
                st.binary(min_size=1, max_size=12),
                st.text(min_size=1, max_size=12).map(lambda t: t.encode("utf-8")),
                st.sampled_from(
                    [b"## ", b"- ", b"> ", b"+++", b"```", b"<div>", b"1. ", b"[x](", b"\t", b"#"]
                ),
            )
        )
        return data[:at] + junk + data[at:]
    if kind == "utf8":
        at = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x80"]))
        return data[:at] + bad + data[at:]
    if kind == "indent":
        at = draw(st.integers(0, len(lines) - 1))
        prefix = draw(st.sampled_from([b" ", b"  ", b"   ", b"    ", b"\t", b"        "]))
        if draw(st.booleans()):
            lines[at] = prefix + lines[at]
        else:
            lines[at] = lines[at].lstrip()
        return b"\n".join(lines)
    fences = [i for i, line in enumerate(lines) if line.strip() == b"+++"]
    if kind == "front" and fences:
        drop = draw(st.sampled_from(fences))
        return b"\n".join(lines[:drop] + lines[drop + 1 :])
    a = draw(st.integers(0, len(lines) - 1))
    b = draw(st.integers(0, len(lines) - 1))
    lines[a], lines[b] = lines[b], lines[a]
    return b"\n".join(lines)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = sample_draft()
    for _ in range(draw(st.integers(1, 3))):
        data = draw(mutation(data))
    return data


@settings(
    max_examples=int(__import__("os").environ.get("DIGEST_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(draft=damaged())
def test_render_of_a_damaged_draft_never_crashes(
    rendered: tuple[Path, dict[str, bytes]], draft: bytes
) -> None:
    root, good = rendered
    folder = root / "issues" / "003"
    for name, content in good.items():
        (folder / name).write_bytes(content)
    (folder / "draft.md").write_bytes(draft)

    result = runner.invoke(app, ["render", "--workspace", str(root)])

    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception,
        result.output,
    )
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 1:
        assert re.search(r"draft\.md:\d+: ", result.output), result.output
        assert {name: (folder / name).read_bytes() for name in OUTPUTS} == good
