"""Sending the rendered email: readers, messages, the sent log, safety checks, the send loop.

`sent.jsonl` holds one JSON line per message a provider accepted, written (and fsynced) as
soon as it is accepted: a list send skips every reader already in it (test sends, marked
`"test": true`, do not count), so an interrupted send resumes with only the rest. The one
window for a duplicate: the process dies after the provider took a message and before its
line is written; that reader (one per interruption) receives it again on the next run.
Progress goes to a `SendProgress` and messages for people to a `Notify` callback (the CLI
prints both); the library never prints.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import quote

from markupsafe import escape

from digest.check import check_issue
from digest.draft import read_draft
from digest.errors import ConfigError, SendError
from digest.providers import Delivery, Outgoing, Provider, check_provider_name, make_provider
from digest.render import Renderer
from digest.urls import ascii_host
from digest.workspace import IssueFolder, Workspace

EMAIL_PLACEHOLDER = "{email}"
MAX_CONSECUTIVE_FAILURES = 5
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class _Stopped(SendError):
    """A send stopped part-way; the message already says how many were sent and remain."""


Notify = Callable[[str], None]  # receives the library's messages for people; the CLI prints them


class SendProgress(Protocol):
    """Where a list send reports progress (the CLI: a live bar, or a line every 100 readers)."""

    def start(self, total: int) -> None: ...

    def advance(self, sent: int, failed: int) -> None: ...

    def finish(self) -> None: ...


class NoSendProgress:
    """A send progress that shows nothing."""

    def start(self, total: int) -> None:
        """Ignore."""

    def advance(self, sent: int, failed: int) -> None:
        """Ignore."""

    def finish(self) -> None:
        """Ignore."""


@dataclass
class SendRequest:
    """What `digest send` was asked to do."""

    to: list[str] = field(default_factory=list)
    list_path: Path | None = None
    dry_run: bool = False
    yes: bool = False
    force: bool = False


@dataclass
class SendOutcome:
    """What a send did."""

    ok: bool
    sent: int = 0
    already: int = 0
    failed: list[Delivery] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)


@dataclass
class Reader:
    """One recipient: address, optional display name, and where it came from."""

    email: str
    name: str = ""
    line: int = 0

    @property
    def key(self) -> str:
        return self.email.lower()


# ---------------------------------------------------------------- addresses and lists


def normalize_email(text: str) -> str | None:
    """A plain address with an ASCII domain (IDN encoded), or None when it is not one."""
    text = text.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or len(text) > 254 or not _LOCAL.fullmatch(local):
        return None
    try:
        domain = ascii_host(domain)  # IDNA 2008 / UTS-46: a@faß.de stays at xn--fa-hia.de
    except UnicodeError:
        return None
    labels = domain.split(".")
    if len(labels) < 2 or not all(map(_LABEL.fullmatch, labels)) or labels[-1].isdigit():
        return None
    return f"{local}@{domain}"


def parse_recipient(text: str) -> Reader | None:
    """`addr` or `Name <addr>` as a Reader, or None when it is not an address."""
    pairs = getaddresses([text])
    if len(pairs) != 1:
        return None
    name, addr = pairs[0]
    email = normalize_email(addr)
    return Reader(email, _one_line(name)) if email else None


def _one_line(name: str) -> str:
    """A display name on one line (a line break in a header would start a new header)."""
    return " ".join(name.split())


def read_list(path: Path) -> tuple[list[Reader], list[str]]:
    """Readers from a CSV with an `email` column (and optional `name`); problems by line."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SendError(f"{path}: no such list; give a CSV with an `email` column") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SendError(f"{path}: cannot read the list ({exc}); save it as UTF-8 CSV") from None
    rows = csv.reader(io.StringIO(raw, newline=""))
    header = next(rows, None)
    columns = [c.strip().lower() for c in header or []]
    if "email" not in columns:
        raise SendError(
            f"{path}:1: no `email` column (found: {', '.join(columns) or 'nothing'}); the first "
            "row must name the columns, e.g. `email,name`"
        )
    at_email = columns.index("email")
    at_name = columns.index("name") if "name" in columns else None
    readers: list[Reader] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    next_line = rows.line_num + 1
    for row in rows:
        line, next_line = next_line, rows.line_num + 1  # a quoted cell may span lines
        if not any(cell.strip() for cell in row):
            continue
        value = row[at_email].strip() if at_email < len(row) else ""
        name = _one_line(row[at_name]) if at_name is not None and at_name < len(row) else ""
        email = normalize_email(value)
        if email is None:
            problems.append(f"{path}:{line}: {value!r} is not an email address; row skipped")
            continue
        if email.lower() in seen:
            problems.append(
                f"{path}:{line}: {email} repeats line {seen[email.lower()]}; row skipped"
            )
            continue
        seen[email.lower()] = line
        readers.append(Reader(email, name, line))
    return readers, problems


# ---------------------------------------------------------------- messages


def _address(value: str, setting: str) -> Address:
    try:
        pairs = getaddresses([value])
        ((name, addr),) = pairs
        email = normalize_email(addr)
        if email is None:
            raise ValueError(addr)
        local, _, domain = email.rpartition("@")
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, HeaderParseError):
        raise ConfigError(
            f'{setting}: {value!r} is not an address; write it like "Editor <editor@example.com>"'
        ) from None


def personal_link(template: str, email: str) -> str:
    """The unsubscribe target with the reader's address (URL-encoded) in place of {email}."""
    return template.replace(EMAIL_PLACEHOLDER, quote(email, safe=""))


@dataclass
class MessageFactory:
    """Builds each reader's Outgoing from the rendered editions and the [email] settings."""

    sender: Address
    reply_to: Address | None
    subject: str
    text: str
    html: str
    unsubscribe: str
    now: Callable[[], dt.datetime]

    def build(self, reader: Reader) -> Outgoing:
        """One reader's message: To naming only them, their unsubscribe link filled in."""
        local, _, domain = reader.email.rpartition("@")
        text, html, headers = self.text, self.html, {}
        if self.unsubscribe:
            link = personal_link(self.unsubscribe, reader.email)
            if link != self.unsubscribe:
                text = text.replace(self.unsubscribe, link)
                html = html.replace(str(escape(self.unsubscribe)), str(escape(link)))
            headers["List-Unsubscribe"] = f"<{link}>"
            if link.lower().startswith("https:"):
                headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return Outgoing(
            sender=self.sender,
            to=Address(display_name=reader.name, username=local, domain=domain),
            subject=self.subject,
            text=text,
            html=html,
            message_id=make_msgid(domain=self.sender.domain),
            date=format_datetime(self.now()),
            reply_to=self.reply_to,
            headers=headers,
        )


# ---------------------------------------------------------------- the sent log


class SentLog:
    """issues/<id>/sent.jsonl: one line per accepted message, fsynced; locked while sending."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def entries(self) -> list[dict[str, Any]]:
        """Every readable line; a line cut short by a crash is ignored."""
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("email"), str):
                found.append(entry)
        return found

    def delivered(self) -> set[str]:
        """Lower-cased addresses that received the list send (test sends excluded)."""
        return {e["email"].lower() for e in self.entries() if not e.get("test")}

    @contextmanager
    def opened(self) -> Iterator[SentLog]:
        """Open for appending under an exclusive lock (one `digest send` per issue at a time)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - closed below
        try:
            try:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except ImportError:  # pragma: no cover - Windows: no lock
                pass
            except OSError:
                raise SendError(
                    f"{self.path} is locked: another `digest send` is running for this issue; "
                    "wait for it to finish"
                ) from None
            handle.seek(0, os.SEEK_END)
            if handle.tell() > 0:
                handle.seek(handle.tell() - 1)
                if handle.read(1) != "\n":
                    handle.write("\n")  # a line cut short by a crash stays on its own line
            self._handle = handle
            yield self
        finally:
            self._handle = None
            handle.close()

    def record(self, entry: dict[str, Any]) -> None:
        """Append one line and make it durable before the next message goes out."""
        assert self._handle is not None, "SentLog.record outside opened()"
        self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())


# ---------------------------------------------------------------- pacing and stopping


class Pacer:
    """Keeps provider calls at most `rate` per second."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._last: float | None = None

    def wait(self) -> None:
        """Sleep until the next call is allowed, then mark it."""
        if self._last is not None:
            delay = self._last + self.interval - self.clock()
            if delay > 0:
                self.sleep(delay)
        self._last = self.clock()


class StopRequested:
    """First Ctrl-C or SIGTERM: finish the message in flight, then stop; a second one: now."""

    def __init__(self) -> None:
        self.signal_name = ""

    @contextmanager
    def installed(self, notify: Notify) -> Iterator[StopRequested]:
        """Install the handlers for the duration of the send (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum: int, _frame: Any) -> None:
            if self.signal_name:
                raise KeyboardInterrupt
            self.signal_name = signal.Signals(signum).name
            notify(f"{self.signal_name}: stopping after the message in flight (again to stop now)")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


# ---------------------------------------------------------------- the command


def require_fresh_render(folder: IssueFolder) -> None:
    """SendError unless email.html and email.txt exist and are newer than draft.md."""
    for path in (folder.email_html, folder.email_txt):
        if not path.is_file():
            raise SendError(f"{path}: not rendered yet; run `digest render {folder.id}` first")
    if (
        folder.draft.is_file()
        and folder.email_html.stat().st_mtime_ns < folder.draft.stat().st_mtime_ns
    ):
        raise SendError(
            f"{folder.draft} changed after {folder.email_html.name} was rendered; run "
            f"`digest render {folder.id}` (and look at it) before sending"
        )


def gate_on_check(
    ws: Workspace,
    folder: IssueFolder,
    notify: Notify,
    *,
    force: bool = False,
    dry_run: bool = False,
    retry_hint: str = "pass --force to send anyway",
) -> None:
    """Refuse (SendError) when `digest check` finds errors, unless forced or a dry run."""

    findings = check_issue(ws, folder, check_links=False)
    errors = [f for f in findings if f.level == "error"]
    if not errors:
        return
    for finding in errors:
        notify(str(finding))
    if dry_run:
        notify(
            f"warning: `digest check` finds {len(errors)} error(s); a real send needs them "
            "fixed, or --force"
        )
    elif force:
        notify(f"warning: sending despite {len(errors)} error(s) from `digest check` (--force)")
    else:
        raise SendError(
            f"`digest check {folder.id}` finds {len(errors)} error(s) (above); fix the draft and "
            f"render again, or {retry_hint}"
        )


def _readers(request: SendRequest, notify: Notify) -> list[Reader]:
    if request.to:
        readers: list[Reader] = []
        seen: set[str] = set()
        for value in request.to:
            reader = parse_recipient(value)
            if reader is None:
                raise SendError(
                    f"--to {value!r}: not an email address; write it like reader@example.com"
                )
            if reader.key not in seen:
                seen.add(reader.key)
                readers.append(reader)
        return readers
    assert request.list_path is not None
    readers, problems = read_list(request.list_path)
    for problem in problems:
        notify(f"warning: {problem}")
    if not readers:
        raise SendError(f"{request.list_path}: no valid addresses in the list")
    return readers


def _factory(ws: Workspace, folder: IssueFolder) -> MessageFactory:

    settings = ws.settings
    issue = read_draft(folder.draft, sections=settings.section_names() or None)
    subject = Renderer(settings, ws.templates_dir).subject(issue)
    html = folder.email_html.read_text(encoding="utf-8")
    text = folder.email_txt.read_text(encoding="utf-8")
    unsubscribe = settings.email.unsubscribe.strip()
    if unsubscribe and (unsubscribe not in text or str(escape(unsubscribe)) not in html):
        raise SendError(
            f"{folder.email_html.name} was rendered with another email.unsubscribe than "
            f"{unsubscribe!r}; run `digest render {folder.id}` again"
        )
    if unsubscribe and not unsubscribe.lower().startswith(("mailto:", "https:", "http:")):
        raise ConfigError(f"email.unsubscribe: {unsubscribe!r} must be a mailto: or https: link")
    return MessageFactory(
        sender=_address(settings.email.from_, "email.from"),
        reply_to=_address(settings.email.reply_to, "email.reply_to")
        if settings.email.reply_to
        else None,
        subject=subject,
        text=text,
        html=html,
        unsubscribe=unsubscribe,
        now=ws.now,
    )


def _write_outbox(
    folder: IssueFolder, factory: MessageFactory, readers: list[Reader]
) -> list[Path]:
    folder.outbox.mkdir(parents=True, exist_ok=True)
    for old in folder.outbox.glob("*.eml"):
        old.unlink()
    written = []
    for index, reader in enumerate(readers, start=1):
        safe = re.sub(r"[^A-Za-z0-9@._-]", "_", reader.email)
        path = folder.outbox / f"{index:04d}-{safe}.eml"
        path.write_bytes(factory.build(reader).to_mime().as_bytes())
        written.append(path)
    return written


def _chunks(
    provider: Provider, factory: MessageFactory, readers: list[Reader]
) -> Iterator[list[tuple[Reader, Outgoing]]]:
    chunk: list[tuple[Reader, Outgoing]] = []
    size = 0
    for reader in readers:
        out = factory.build(reader)
        full = len(chunk) >= provider.max_batch or (
            provider.max_batch_bytes and chunk and size + out.size > provider.max_batch_bytes
        )
        if full:
            yield chunk
            chunk, size = [], 0
        chunk.append((reader, out))
        size += out.size
    if chunk:
        yield chunk


def confirm_or_refuse(
    question: str, *, yes: bool, confirm: Callable[..., bool], interactive: bool
) -> None:
    """Ask `question` (default no); SendError when refused or when there is no terminal to ask."""
    if yes:
        return
    if not interactive:
        raise SendError(f"{question} needs a confirmation: run it in a terminal, or pass --yes")
    if not confirm(question, default=False):
        raise SendError("not sent: you answered no")


def _confirm(
    request: SendRequest,
    subject: str,
    count: int,
    provider: Provider,
    confirm: Callable[..., bool],
    interactive: bool,
) -> None:
    kind = "test message(s)" if request.to else "reader(s)"
    question = f"Send {subject!r} to {count} {kind} via {provider.describe()}?"
    confirm_or_refuse(question, yes=request.yes, confirm=confirm, interactive=interactive)


def send_issue(
    ws: Workspace,
    folder: IssueFolder,
    request: SendRequest,
    *,
    notify: Notify,
    confirm: Callable[..., bool],
    interactive: bool | None = None,
    provider: Provider | None = None,
    pacer: Pacer | None = None,
    progress: SendProgress | None = None,
) -> SendOutcome:
    """Send the rendered issue to test addresses or the list; see the module docstring."""
    if not request.to and request.list_path is None:
        raise SendError("nothing to send to: give --to ADDR… (a test send) or --list CSV")
    require_fresh_render(folder)
    check_provider_name(ws.settings.send.provider)
    factory = _factory(ws, folder)
    readers = _readers(request, notify)
    gate_on_check(ws, folder, notify, force=request.force, dry_run=request.dry_run)
    log = SentLog(folder.sent_log)
    if request.dry_run:
        return _dry_run(folder, factory, readers, set() if request.to else log.delivered(), notify)
    provider = provider or make_provider(ws.settings.send, ws.secrets)
    with log.opened():
        done = set() if request.to else log.delivered()
        pending = [r for r in readers if r.key not in done]
        already = len(readers) - len(pending)
        if not pending:
            notify(
                f"all {len(readers)} reader(s) on {request.list_path} already received issue "
                f"{folder.id} (see {folder.sent_log}); nothing to send"
            )
            return SendOutcome(ok=True, already=already)
        if already:
            notify(f"{already} reader(s) already received it (sent.jsonl); {len(pending)} to go")
        asking = sys.stdin.isatty() if interactive is None else interactive
        _confirm(request, factory.subject, len(pending), provider, confirm, asking)
        run = _Delivery(
            folder=folder,
            request=request,
            provider=provider,
            pacer=pacer or Pacer(ws.settings.send.rate_per_second),
            log=log,
            factory=factory,
            pending=pending,
            notify=notify,
            progress=NoSendProgress() if request.to or progress is None else progress,
            outcome=SendOutcome(ok=True, already=already),
        )
        return run.deliver()


def _dry_run(
    folder: IssueFolder,
    factory: MessageFactory,
    readers: list[Reader],
    done: set[str],
    notify: Notify,
) -> SendOutcome:
    """Write the messages of the readers still to send to the outbox; send nothing."""
    pending = [r for r in readers if r.key not in done]
    written = _write_outbox(folder, factory, pending)
    already = len(readers) - len(pending)
    notify(
        f"dry run: wrote {len(written)} message(s) to {folder.outbox}; nothing sent"
        + (f" ({already} already received it)" if already else "")
    )
    return SendOutcome(ok=True, already=already, written=written)


@dataclass
class _Delivery:
    """One send run: the readers still to send, the provider, and where each one is recorded."""

    folder: IssueFolder
    request: SendRequest
    provider: Provider
    pacer: Pacer
    log: SentLog
    factory: MessageFactory
    pending: list[Reader]
    notify: Notify
    progress: SendProgress
    outcome: SendOutcome
    consecutive: int = 0

    @property
    def test(self) -> bool:
        return bool(self.request.to)

    @property
    def again(self) -> str:
        return f"`digest send {self.folder.id} --list {self.request.list_path}`"

    def stopped(self, reason: str) -> SendError:
        """The error that ends the run part-way, saying what was sent and what remains."""
        sent, already = self.outcome.sent, self.outcome.already
        remain = len(self.pending) - sent - len(self.outcome.failed)
        if self.test:
            return _Stopped(f"{reason}; {sent} test message(s) sent, {remain} not sent")
        return _Stopped(
            f"{reason}; {sent} sent in this run ({sent + already} in all), "
            f"{remain} remain: run {self.again} again to send only the rest"
        )

    def deliver(self) -> SendOutcome:
        """Send every pending reader's message, chunk by chunk, paced; then say how it went."""
        stop = StopRequested()
        opened = False
        self.progress.start(len(self.pending))
        with stop.installed(self.notify):
            try:
                self.provider.open()
                opened = True
                for chunk in _chunks(self.provider, self.factory, self.pending):
                    if stop.signal_name:
                        raise self.stopped(f"stopped by {stop.signal_name}")
                    self._send(chunk)
            except _Stopped:
                raise
            except SendError as exc:
                if opened:
                    raise self.stopped(f"interrupted: {exc}") from None
                raise
            except KeyboardInterrupt:
                raise self.stopped(
                    f"interrupted by {stop.signal_name or 'Ctrl-C'}; the message in flight may "
                    "or may not have gone out"
                ) from None
            finally:
                self.progress.finish()
                self.provider.close()
        self._conclude()
        return self.outcome

    def _send(self, chunk: list[tuple[Reader, Outgoing]]) -> None:
        """One provider call; each accepted message is recorded before the next call."""
        self.pacer.wait()
        deliveries = self.provider.send([out for _, out in chunk])
        fatal = ""
        for (reader, _), delivery in zip(chunk, deliveries, strict=True):
            if delivery.ok:
                self._record(reader, delivery)
            else:
                self.outcome.failed.append(delivery)
                self.consecutive += 1
                line = f" (line {reader.line})" if reader.line else ""
                self.notify(f"failed: {reader.email}{line}: {delivery.error}")
                fatal = fatal or (delivery.error if delivery.fatal else "")
        if fatal:
            raise self.stopped(f"{self.provider.name} refused the message: {fatal}")
        if self.consecutive >= MAX_CONSECUTIVE_FAILURES:
            raise self.stopped(f"the last {self.consecutive} messages were all refused")
        self.progress.advance(self.outcome.sent, len(self.outcome.failed))

    def _record(self, reader: Reader, delivery: Delivery) -> None:
        entry: dict[str, Any] = {
            "email": reader.email,
            "message_id": delivery.message_id,
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "provider": self.provider.name,
        }
        if self.test:
            entry["test"] = True
        self.log.record(entry)
        self.outcome.sent += 1
        self.consecutive = 0
        if self.test:
            self.notify(f"sent test message to {reader.email}")

    def _conclude(self) -> None:
        outcome, name = self.outcome, self.provider.name
        if self.test:
            self.notify(
                f"test send: {outcome.sent} of {len(self.pending)} delivered via {name} "
                "(recorded as test in sent.jsonl; the list send is not affected)"
            )
        else:
            total = outcome.sent + outcome.already
            self.notify(
                f"sent {outcome.sent} message(s) via {name}; {total} of "
                f"{len(self.pending) + outcome.already} reader(s) on the list have received "
                f"issue {self.folder.id}"
            )
        if outcome.failed:
            outcome.ok = False
            self.notify(
                f"{len(outcome.failed)} reader(s) refused (above): fix or remove them in the "
                f"list; running {self.again} again retries only them"
            )
