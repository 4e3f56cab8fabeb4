"""`digest init` and `digest new`: the generated settings file, numbering, the Period."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from digest.cli import app
from digest.config import SECRET_VARIABLES, Settings, load_settings
from digest.setup import settings_toml
from digest.workspace import IssueFolder, period_for

runner = CliRunner()


def _fields() -> list[tuple[str, str, str | None]]:
    """(table, key, description) for every setting of every table of Settings."""
    found: list[tuple[str, str, str | None]] = []

    def walk(table: str, model: Any) -> None:
        for name, field in model.model_fields.items():
            inner = field.annotation
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                walk(f"{table}.{field.alias or name}", inner)  # a nested table: [publish.hugo]
            else:
                found.append((table, field.alias or name, field.description))

    for table, info in Settings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            walk(table, model)
    return found


# ------------------------------------------------------------------ digest init


def test_init_creates_a_workspace(tmp_path: Path) -> None:
    root = tmp_path / "letters" / "weekly"
    result = runner.invoke(app, ["init", str(root)])
    assert result.exit_code == 0, result.output
    for name in ("digest.toml", ".env.example", ".gitignore", "issues"):
        assert (root / name).exists()
        assert f"created {root / name}" in result.output
    assert ".env" in (root / ".gitignore").read_text().split()


def test_generated_settings_load_as_the_defaults(tmp_path: Path) -> None:
    runner.invoke(app, ["init", str(tmp_path)])
    settings, _ = load_settings(tmp_path / "digest.toml", environ={})
    assert settings == Settings()
    assert tomllib.loads(settings_toml())  # valid TOML on its own


def test_every_setting_is_in_the_generated_file_with_a_comment() -> None:
    text = settings_toml()
    lines = text.splitlines()
    for table, key, description in _fields():
        assert description, f"give {table}.{key} a Field(description=...) in digest/config.py"
        start = text.index(f"[{table}]\n") + len(f"[{table}]\n")
        section = text[start:].split("\n[", 1)[0]
        match = re.search(rf"^(# )?{re.escape(key)} = ", section, re.MULTILINE)
        assert match, f"{table}.{key} is missing from the generated digest.toml"
        index = text[: start + match.start()].count("\n")  # equal lines repeat across tables
        assert lines[index - 1] == f"# {description}"
    assert "[[sections]]" in text  # the example of sections, commented out


def test_commented_settings_are_valid_when_uncommented() -> None:
    uncommented = re.sub(
        r"^# (\[\[sections\]\]|\w+ = .+)$", r"\1", settings_toml(), flags=re.MULTILINE
    )
    settings = Settings.model_validate(tomllib.loads(uncommented))
    assert settings.llm.price_input_per_mtok and settings.llm.price_input_per_mtok > 0
    assert settings.section_names() == ["AI"]


def test_env_example_lists_every_secret(tmp_path: Path) -> None:
    runner.invoke(app, ["init", str(tmp_path)])
    lines = (tmp_path / ".env.example").read_text().splitlines()
    for name, description in SECRET_VARIABLES.items():
        index = lines.index(f"{name}=")
        assert lines[index - 1] == f"# {description}"


def test_init_refuses_an_existing_workspace(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('[newsletter]\nname = "Mine"\n')
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "already" in result.output and str(tmp_path / "digest.toml") in result.output
    assert (tmp_path / "digest.toml").read_text() == '[newsletter]\nname = "Mine"\n'
    assert not (tmp_path / ".env.example").exists()


def test_init_keeps_files_it_finds(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/\n")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".gitignore").read_text() == "node_modules/\n"
    assert ".gitignore" not in result.output


def test_init_on_a_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 1 and "is a file" in result.output


def test_init_then_new_then_add(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["new", "-w", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["add", "-w", str(tmp_path), "https://a.example/x"])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ the Period


@pytest.mark.parametrize(
    ("day", "starts_on", "start", "end"),
    [
        # Monday 2024-07-29, weeks from Sunday: the Sunday-to-Saturday week before
        ("2024-07-29", "sunday", "2024-07-21", "2024-07-27"),
        ("2024-07-29", "monday", "2024-07-22", "2024-07-28"),
        # the first day of a week: the whole previous week
        ("2024-07-28", "sunday", "2024-07-21", "2024-07-27"),
        ("2024-07-28", "monday", "2024-07-15", "2024-07-21"),
        # the last day of a week
        ("2024-08-03", "sunday", "2024-07-21", "2024-07-27"),
        # across a year boundary
        ("2025-01-05", "sunday", "2024-12-29", "2025-01-04"),
        ("2025-01-02", "sunday", "2024-12-22", "2024-12-28"),
        ("2025-01-06", "monday", "2024-12-30", "2025-01-05"),
        ("2025-01-01", "monday", "2024-12-23", "2024-12-29"),
        # a leap day inside the week
        ("2024-03-04", "monday", "2024-02-26", "2024-03-03"),
    ],
)
def test_period_for(day: str, starts_on: str, start: str, end: str) -> None:
    got = period_for(dt.date.fromisoformat(day), starts_on)
    assert got == (dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    assert (got[1] - got[0]).days == 6


# ------------------------------------------------------------------ digest new


def _new(root: Path, *args: str):
    return runner.invoke(app, ["new", "-w", str(root), *args])


@pytest.mark.parametrize(
    ("starts_on", "date", "period"),
    [
        ("sunday", "2024-07-29", "2024-07-21 ~ 2024-07-27"),
        ("monday", "2024-07-29", "2024-07-22 ~ 2024-07-28"),
        ("sunday", "2025-01-02", "2024-12-22 ~ 2024-12-28"),
        ("monday", "2025-01-06", "2024-12-30 ~ 2025-01-05"),
    ],
)
def test_new_records_the_period(make_workspace, starts_on: str, date: str, period: str) -> None:
    root = make_workspace(f'[newsletter]\nweek_starts_on = "{starts_on}"\n')
    result = _new(root, "--date", date)
    assert result.exit_code == 0, result.output
    assert f"Period {period}" in result.output
    meta = IssueFolder(root / "issues" / "001", "001").read_meta()
    assert meta is not None and meta.number == 1
    assert f"{meta.period_start} ~ {meta.period_end}" == period
    assert meta.date.date() == dt.date.fromisoformat(date)
    assert (root / "issues" / "001" / "links.yaml").read_text().startswith("#")


def test_new_across_daylight_saving_changes(make_workspace) -> None:
    root = make_workspace('[newsletter]\ntimezone = "America/New_York"\n')
    # New York springs forward on Sunday 2024-03-10: the Period holds the change.
    assert "Period 2024-03-10 ~ 2024-03-16" in _new(root, "--date", "2024-03-17").output
    # ... and falls back on Sunday 2024-11-03.
    assert "Period 2024-11-03 ~ 2024-11-09" in _new(root, "--date", "2024-11-11").output
    spring = IssueFolder(root / "issues" / "001", "001").read_meta()
    autumn = IssueFolder(root / "issues" / "002", "002").read_meta()
    assert spring is not None and autumn is not None
    assert spring.date.utcoffset() == dt.timedelta(hours=-4)  # EDT
    assert autumn.date.utcoffset() == dt.timedelta(hours=-5)  # EST
    assert (spring.period_end - spring.period_start).days == 6


def test_new_numbers_after_the_highest_issue(make_workspace) -> None:
    root = make_workspace("")
    for name in ("001", "007", "example"):
        (root / "issues" / name).mkdir()
    result = _new(root, "--date", "2024-07-29")
    assert result.exit_code == 0, result.output
    assert "created issue 008" in result.output
    assert (root / "issues" / "008" / "meta.toml").is_file()
    assert "created issue 009" in _new(root).output


def test_new_in_an_empty_workspace_is_001(make_workspace) -> None:
    root = make_workspace("")
    (root / "issues").rmdir()
    result = _new(root, "--date", "2024-07-29")
    assert result.exit_code == 0, result.output
    assert (root / "issues" / "001").is_dir()


def test_new_beyond_999(make_workspace) -> None:
    root = make_workspace("")
    (root / "issues" / "999").mkdir()
    assert "created issue 1000" in _new(root).output


def test_new_with_a_bad_date_is_a_usage_error(make_workspace) -> None:
    root = make_workspace("")
    result = _new(root, "--date", "29/07/2024")
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output
    assert list((root / "issues").iterdir()) == []


def test_new_when_the_next_folder_name_is_taken_by_a_file(make_workspace) -> None:
    root = make_workspace("")
    (root / "issues" / "001").write_text("not a folder")
    result = _new(root)
    assert result.exit_code == 1
    assert "issues/001" in result.output and "Traceback" not in result.output


def test_new_refuses_a_second_issue_for_the_same_period(make_workspace) -> None:
    root = make_workspace("")
    assert _new(root, "--date", "2024-07-29").exit_code == 0
    # 2024-07-31 lies in the same week: its Period is the same 2024-07-21 ~ 2024-07-27.
    result = _new(root, "--date", "2024-07-31")
    assert result.exit_code == 1
    assert "issue 001" in result.output and "2024-07-21 ~ 2024-07-27" in result.output
    assert "--force" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in (root / "issues").iterdir()) == ["001"]
    # The next week is another Period; --force makes a second issue for the same one.
    assert "created issue 002" in _new(root, "--date", "2024-08-05").output
    forced = _new(root, "--date", "2024-07-29", "--force")
    assert forced.exit_code == 0, forced.output
    assert "created issue 003" in forced.output


# ------------------------------------------------------------------ settings describe themselves


def test_generated_settings_say_what_the_code_does() -> None:
    text = settings_toml()
    lines = text.splitlines()

    def comment_of(table: str, key: str) -> str:
        section = text.split(f"[{table}]\n", 1)[1]
        first = next(line for line in section.splitlines() if line.startswith(f"{key} = "))
        return lines[lines.index(first) - 1]

    assert "deadline" in comment_of("fetch", "timeout")
    assert "per request" not in comment_of("fetch", "timeout")
    # Long articles are summarized in parts (llm.max_parts); nothing "chunks".
    assert "chunk" not in text
    assert "in parts" in comment_of("llm", "max_input_chars")
    assert "cut" in comment_of("llm", "max_parts")
    assert "intro" in comment_of("email", "preheader")
    assert "min_chars = 200" in text and comment_of("extract", "min_chars")
    assert 'strip_params = ["utm_*", "fbclid", "gclid", "mc_eid", "mkt_tok"]' in text


def test_preheader_default_is_what_the_setting_says() -> None:
    from digest.models import Issue, Item, Section
    from digest.render import Renderer

    items = [Item(title=f"Title {n}", url=f"https://e.example/{n}") for n in range(5)]
    issue = Issue(
        title="T",
        number=1,
        date=dt.datetime(2024, 7, 29, tzinfo=dt.UTC),
        period_start=dt.date(2024, 7, 21),
        period_end=dt.date(2024, 7, 27),
        sections=[Section(items=items)],
    )
    renderer = Renderer(Settings())
    assert renderer.preheader(issue) == "Title 0 · Title 1 · Title 2"
    issue.intro = "The week in one line.\n\nA second paragraph."
    assert renderer.preheader(issue) == "The week in one line."


@pytest.mark.parametrize("command", [["status"], ["add", "https://a.example/x"], ["check"]])
def test_a_bad_timezone_stops_every_command(make_workspace, command: list[str]) -> None:
    root = make_workspace('[newsletter]\ntimezone = "Seoul"\n')
    (root / "issues" / "001").mkdir()
    (root / "issues" / "001" / "links.yaml").write_text("- https://a.example/y\n")
    result = runner.invoke(app, [*command, "-w", str(root)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "newsletter.timezone" in lines[0] and "'Seoul'" in lines[0]
    assert "digest.toml" in lines[0] and "Asia/Seoul" in lines[0]


def test_a_bad_timezone_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    from digest.errors import ConfigError

    with pytest.raises(ConfigError, match="DIGEST_NEWSLETTER__TIMEZONE: newsletter.timezone"):
        load_settings(None, environ={"DIGEST_NEWSLETTER__TIMEZONE": "Mars/Olympus"})
