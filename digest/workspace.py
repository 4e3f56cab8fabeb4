"""The workspace on disk: finding it, its issue folders, their files, atomic writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli_w

from digest.config import Secrets, Settings, load_settings
from digest.errors import ConfigError, WorkspaceError
from digest.models import Report
from digest.urls import is_local_entry, local_key

CONFIG_NAME = "digest.toml"
META_NAME = "meta.toml"
STATE_NAME = "state.json"


def _temp_path(path: Path, kind: str = "") -> tuple[int, Path]:
    """A new temporary file beside path, named so that a later run can tell whose it is."""
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.{kind}", suffix=".tmp", dir=path.parent
    )
    return fd, Path(tmp)


@dataclass
class StagedWrite:
    """New content for a file, written and synced beside it, waiting for `commit()`."""

    path: Path
    tmp: Path
    backup: bool

    def commit(self) -> None:
        """Rename the staged content over the file (keeping `<name>.bak` first if asked)."""
        try:
            if self.backup and self.path.exists():
                _keep_backup(self.path)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Drop the staged content."""
        self.tmp.unlink(missing_ok=True)


def stage_write(path: Path, data: str | bytes, *, backup: bool = False) -> StagedWrite | None:
    """The first half of an atomic write; None when the file already holds exactly data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if backup and path.is_file() and path.read_bytes() == raw:
        return None
    fd, tmp = _temp_path(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; keep the file's mode or the umask's
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return StagedWrite(path, tmp, backup)


def atomic_write(path: Path, data: str | bytes, *, backup: bool = False) -> None:
    """Write through a temporary file and rename; keep `<name>.bak` first when asked."""
    staged = stage_write(path, data, backup=backup)
    if staged is not None:
        staged.commit()


def _keep_backup(path: Path) -> None:
    """Make `<name>.bak` the current version while `path` itself never disappears."""
    fd, staged = _temp_path(path, "bak.")
    os.close(fd)
    staged.unlink()
    try:
        os.link(path, staged)  # the old content keeps its inode; the rename below replaces path
    except OSError:
        shutil.copy2(path, staged)
    os.replace(staged, path.with_name(path.name + ".bak"))


_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[\w.]+\.tmp$")
_OLD_TEMP_NAME = re.compile(r"^\..+\.tmp$")
_OLD_TEMP_AGE = 3600.0  # temporary files named before pids were in names: stale after an hour


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def clean_stale_temps(*folders: Path, recursive: bool = False) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes (their process is gone)."""
    removed: list[Path] = []
    now = time.time()
    for folder in folders:
        if not folder.is_dir():
            continue
        paths = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
        for path in paths:
            match = _TEMP_NAME.match(path.name)
            try:
                if match:
                    if int(match.group("pid")) == os.getpid() or pid_alive(int(match["pid"])):
                        continue
                elif not _OLD_TEMP_NAME.match(path.name) or (
                    now - path.stat().st_mtime < _OLD_TEMP_AGE
                ):
                    continue
                if path.is_file():
                    path.unlink()
                    removed.append(path)
            except OSError:
                continue
    return removed


def _file_mode(path: Path) -> int:
    """The mode a rewritten file gets: the existing file's, else 0666 minus the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def _read_umask() -> int:
    """The process umask (read once, at import, while no other thread creates files)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


LOCK_NAME = ".lock"


@dataclass
class IssueLock:
    """The lock one compose or render holds on an issue; `note` tells of a stale lock taken over."""

    path: Path
    holder: dict[str, object]
    note: str | None = None

    def release(self) -> None:
        """Remove the lock file if it is still this run's."""
        if _read_lock(self.path) == self.holder:
            self.path.unlink(missing_ok=True)


def _read_lock(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict[str, object]) -> str:
    what = holder.get("command") or "digest"
    return (
        f"`digest {what}` (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')})"
    )


def lock_issue(folder: IssueFolder, command: str, *, wait: float = 0.0) -> IssueLock:
    """Take the issue's lock (one compose or render at a time); WorkspaceError naming the holder
    when it is still busy after `wait` seconds.

    The lock file is created whole (a hard link of a finished file), so it never exists half
    written. A lock whose process is gone on this host is stale and is taken over, with a note.
    """
    deadline = time.monotonic() + wait
    path = folder.path / LOCK_NAME
    holder: dict[str, object] = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "command": command,
    }
    fd, tmp = _temp_path(path)
    note = None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(holder, handle)
        retries = 0  # the lock vanished, or a stale one was taken over, under our feet
        while retries < 5:
            try:
                os.link(tmp, path)
                return IssueLock(path, holder, note)
            except FileExistsError:
                pass
            found = _read_lock(path)
            if found is None:
                retries += 1
                continue  # released meanwhile: try again
            pid = found.get("pid")
            same_host = found.get("host") == holder["host"]
            if not (same_host and isinstance(pid, int) and not pid_alive(pid)):
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                fix = (
                    "wait for it to finish"
                    if found
                    else f"if no digest runs on this issue, delete {path}"
                )
                if found and not same_host:
                    fix += f"; if it no longer runs, delete {path}"
                raise WorkspaceError(
                    f"issue {folder.id} is busy: {_describe(found) if found else 'held'} holds "
                    f"{path}; {fix}"
                )
            if _read_lock(path) == found:  # still the same stale lock: take it over
                path.unlink(missing_ok=True)
                retries += 1
                note = f"took over a stale lock: {_describe(found)} is no longer running"
        raise WorkspaceError(f"{path}: cannot take the issue's lock; try again")
    finally:
        tmp.unlink(missing_ok=True)


def find_workspace_root(start: Path | None = None, explicit: Path | None = None) -> Path:
    """The folder holding digest.toml: explicit, DIGEST_WORKSPACE, or upwards from start."""
    chosen = explicit or (
        Path(os.environ["DIGEST_WORKSPACE"]) if os.environ.get("DIGEST_WORKSPACE") else None
    )
    if chosen is not None:
        chosen = chosen.expanduser().resolve()
        if not (chosen / CONFIG_NAME).is_file():
            raise WorkspaceError(
                f"{chosen}: no {CONFIG_NAME} here; run `digest init {chosen}` to create a workspace"
            )
        return chosen
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise WorkspaceError(
        f"no {CONFIG_NAME} in {here} or any folder above it; run `digest init` to create a "
        "workspace, or pass --workspace DIR"
    )


@dataclass
class IssueMeta:
    """What `digest new` (or the first compose) records about an issue."""

    number: int
    date: dt.datetime
    period_start: dt.date
    period_end: dt.date


def period_for(day: dt.date, week_starts_on: str) -> tuple[dt.date, dt.date]:
    """The 7-day week before `day`'s week: first day per week_starts_on."""
    # Python weekday(): Monday 0 .. Sunday 6.
    first = 6 if week_starts_on == "sunday" else 0
    since_start = (day.weekday() - first) % 7
    this_week_start = day - dt.timedelta(days=since_start)
    start = this_week_start - dt.timedelta(days=7)
    return start, start + dt.timedelta(days=6)


@dataclass
class IssueFolder:
    """One issues/<id>/ folder and the paths of its files."""

    path: Path
    id: str

    @property
    def links(self) -> Path:
        return self.path / "links.yaml"

    @property
    def draft(self) -> Path:
        return self.path / "draft.md"

    @property
    def issue_md(self) -> Path:
        return self.path / "issue.md"

    @property
    def email_html(self) -> Path:
        return self.path / "email.html"

    @property
    def email_txt(self) -> Path:
        return self.path / "email.txt"

    @property
    def report(self) -> Path:
        return self.path / "report.json"

    @property
    def sent_log(self) -> Path:
        return self.path / "sent.jsonl"

    @property
    def outbox(self) -> Path:
        return self.path / "outbox"

    @property
    def meta_path(self) -> Path:
        return self.path / META_NAME

    @property
    def state_path(self) -> Path:
        return self.path / STATE_NAME

    def number_from_name(self) -> int | None:
        """The issue number the folder name gives, if it is a number."""
        return int(self.id) if self.id.isdigit() else None

    def read_meta(self) -> IssueMeta | None:
        """meta.toml, or None when the folder has none yet."""
        if not self.meta_path.is_file():
            return None
        try:
            data = tomllib.loads(self.meta_path.read_text(encoding="utf-8"))
            date = data["date"]
            if isinstance(date, dt.date) and not isinstance(date, dt.datetime):
                date = dt.datetime.combine(date, dt.time())
            return IssueMeta(
                number=int(data["number"]),
                date=date,
                period_start=data["period_start"],
                period_end=data["period_end"],
            )
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise WorkspaceError(
                f"{self.meta_path}: cannot read ({exc}); it needs number, date, period_start "
                "and period_end"
            ) from None

    def write_meta(self, meta: IssueMeta) -> None:
        """Record number, date and Period so every later render shows the same ones."""
        text = (
            "# Written by digest: the issue number, date and Period every render uses.\n"
            + tomli_w.dumps(
                {
                    "number": meta.number,
                    "date": meta.date,
                    "period_start": meta.period_start,
                    "period_end": meta.period_end,
                }
            )
        )
        atomic_write(self.meta_path, text)


ISSUE_ID = re.compile(r"^\d{3,}$")


@dataclass
class Workspace:
    """A folder with digest.toml; its settings are resolved once, here."""

    root: Path
    settings: Settings
    secrets: Secrets = field(repr=False)

    @classmethod
    def load(cls, start: Path | None = None, explicit: Path | None = None) -> Workspace:
        """Find and load the workspace."""
        root = find_workspace_root(start, explicit)
        settings, secrets = load_settings(root / CONFIG_NAME)
        return cls(root=root, settings=settings, secrets=secrets)

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def cache_dir(self) -> Path:
        return self.root / ".digest" / "cache"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def tz(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.settings.newsletter.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{self.root / CONFIG_NAME}: newsletter.timezone: unknown time zone "
                f'{self.settings.newsletter.timezone!r}; use a name like "Asia/Seoul"'
            ) from None

    def now(self) -> dt.datetime:
        """The current time in the newsletter's time zone."""
        return dt.datetime.now(self.tz).replace(microsecond=0)

    def issue_folders(self) -> list[IssueFolder]:
        """Numbered issue folders, lowest number first."""
        if not self.issues_dir.is_dir():
            return []
        found = [
            IssueFolder(p, p.name)
            for p in self.issues_dir.iterdir()
            if p.is_dir() and ISSUE_ID.match(p.name)
        ]
        return sorted(found, key=lambda f: int(f.id))

    def issue(self, ref: str | None = None) -> IssueFolder:
        """Resolve an issue: folder name, a path to it, or None for the latest."""
        if ref is None:
            folders = self.issue_folders()
            if not folders:
                raise WorkspaceError(
                    f"no issues in {self.issues_dir}; run `digest new` to create one"
                )
            return folders[-1]
        candidate = Path(ref)
        if candidate.is_dir() and (candidate.is_absolute() or os.sep in ref or ref in (".", "..")):
            path = candidate.resolve()
            return IssueFolder(path, path.name)
        path = self.issues_dir / ref
        if not path.is_dir() and ref.isdigit():
            path = self.issues_dir / f"{int(ref):03d}"
        if not path.is_dir():
            raise WorkspaceError(
                f"no issue {ref!r} in {self.issues_dir}; `digest new` creates one, "
                "`ls issues/` lists them"
            )
        return IssueFolder(path, path.name)

    def ensure_meta(self, folder: IssueFolder) -> IssueMeta:
        """The issue's meta; a hand-made folder gets one on first use (today's date)."""
        meta = folder.read_meta()
        if meta is not None:
            return meta
        now = self.now()
        start, end = period_for(now.date(), self.settings.newsletter.week_starts_on)
        number = folder.number_from_name()
        if number is None:
            number = (max((int(f.id) for f in self.issue_folders()), default=0)) + 1
        meta = IssueMeta(number=number, date=now, period_start=start, period_end=end)
        folder.write_meta(meta)
        return meta


def new_issue(
    workspace: Workspace, date: dt.date | None = None, *, force: bool = False
) -> tuple[IssueFolder, IssueMeta]:
    """Create the next issue folder (last number + 1) with its number, date and Period;
    refuse when an issue already covers that Period, unless force."""
    folders = workspace.issue_folders()
    number = (int(folders[-1].id) + 1) if folders else 1
    now = workspace.now()
    when = now if date is None else dt.datetime.combine(date, now.timetz())
    start, end = period_for(when.date(), workspace.settings.newsletter.week_starts_on)
    if not force:
        for other in folders:
            meta = other.read_meta()
            if meta is not None and (meta.period_start, meta.period_end) == (start, end):
                raise WorkspaceError(
                    f"issue {other.id} ({other.path}) already covers the Period {start} ~ {end}; "
                    f"add links to it (`digest add --issue {other.id} URL`), or pass --force to "
                    "create another issue for the same week"
                )
    folder = IssueFolder(workspace.issues_dir / f"{number:03d}", f"{number:03d}")
    try:
        folder.path.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise WorkspaceError(f"{folder.path}: cannot create the issue folder ({exc})") from None
    meta = IssueMeta(number=number, date=when, period_start=start, period_end=end)
    folder.write_meta(meta)
    atomic_write(
        folder.links,
        "# Links for this issue: a URL per line, or a mapping {url, note, section, title}.\n"
        "# `digest add URL` appends here; hand edits and comments are kept.\n",
    )
    return folder, meta


# ---------------------------------------------------------------- state.json and report.json


@dataclass
class Fallback:
    """An item compose wrote with the offline fallback: its URL, a hash of its text, why."""

    url: str
    hash: str
    reason: str


@dataclass
class ComposeState:
    """state.json: what compose put into the draft, so that deleted things stay deleted."""

    composed: dict[str, str] = field(default_factory=dict)  # link key -> the item's URL
    closing: bool = False  # compose wrote the closing section once
    fallbacks: dict[str, Fallback] = field(default_factory=dict)  # link key -> fallback item
    recovered: bool = False  # a compose was interrupted while writing draft.md

    def copy(self) -> ComposeState:
        """A copy that later changes to this one do not touch."""
        return ComposeState(
            dict(self.composed),
            self.closing,
            {k: Fallback(f.url, f.hash, f.reason) for k, f in self.fallbacks.items()},
        )


def _state_fields(data: Any, folder: IssueFolder) -> ComposeState:
    if not isinstance(data, dict):
        return ComposeState()
    composed = data.get("composed", {})
    if not isinstance(composed, dict):
        composed = {}
    # Local files get one `file:` key each (older state.json wrote them as spelled).
    composed = {
        (local_key(str(k), folder.path) if is_local_entry(str(k)) else str(k)): str(v)
        for k, v in composed.items()
    }
    fallbacks: dict[str, Fallback] = {}
    records = data.get("fallbacks", {})
    for key, record in records.items() if isinstance(records, dict) else []:
        try:
            fallbacks[str(key)] = Fallback(
                str(record["url"]), str(record["hash"]), str(record["reason"])
            )
        except (KeyError, TypeError):
            continue
    return ComposeState(composed, bool(data.get("closing", False)), fallbacks)


def load_state(folder: IssueFolder) -> ComposeState:
    """state.json, with a draft write that a kill interrupted resolved.

    Before draft.md is replaced, state.json records the state that follows (`next`) and the
    name of the temporary file holding the new draft; the rename of that file is the commit.
    The file still there means draft.md was not replaced: the earlier state holds.
    """
    try:
        data = json.loads(folder.state_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ComposeState()
    if not isinstance(data, dict):
        return ComposeState()
    pending = data.get("next")
    tmp = data.get("draft_tmp")
    if isinstance(pending, dict) and isinstance(tmp, str):
        written = not (folder.path / Path(tmp).name).exists()
        state = _state_fields(pending if written else data, folder)
        state.recovered = True
        return state
    return _state_fields(data, folder)


def read_state(folder: IssueFolder) -> dict[str, str]:
    """state.json: link key -> the URL of the item compose made for it."""
    return load_state(folder).composed


def state_dict(state: ComposeState) -> dict[str, Any]:
    """state.json's content for a state (what load_state reads back)."""
    data: dict[str, Any] = {"composed": state.composed, "closing": state.closing}
    if state.fallbacks:
        data["fallbacks"] = {
            key: {"url": f.url, "hash": f.hash, "reason": f.reason}
            for key, f in state.fallbacks.items()
        }
    return data


def read_report(folder: IssueFolder) -> Report | None:
    """The last compose's report.json; None when there is none or it cannot be read."""
    if not folder.report.is_file():
        return None
    try:
        data = json.loads(folder.report.read_bytes())
        if not isinstance(data, dict):
            return None
        data.setdefault("issue", folder.id)  # hand-made or partial reports still count
        data.setdefault("started_at", "1970-01-01T00:00:00+00:00")
        return Report.model_validate(data)
    except ValueError:
        return None
