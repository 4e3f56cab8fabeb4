"""The `digest` command line: parse options, call one library function, print, exit."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from digest.errors import DigestError, UsageError


class DigestGroup(TyperGroup):
    """typer's group, with help that shows metavars (ID, URL, DIR), never type tags (<bool>)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_help(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_help(command.get_params(ctx))
        return command


def _plain_help(params: list[Any]) -> list[Any]:
    """Make each parameter show its metavar (or nothing) in help instead of `<type>`."""
    for param in params:
        if getattr(param, "_digest_plain", False):
            continue
        if param.param_type_name == "argument" or getattr(param, "is_flag", False):
            shown = None if param.param_type_name == "argument" else param.metavar
        elif getattr(param, "count", False):
            shown = None
        else:
            shown = param.metavar or (param.name or "value").upper()
        setattr(param, "display_type_rich", lambda ctx, shown=shown: shown)  # noqa: B010
        param._digest_plain = True
    return params


app = typer.Typer(
    name="digest",
    cls=DigestGroup,
    help="Compose a weekly newsletter from links: fetch, summarize, draft, render, send.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
VERBOSITY = "digest.verbosity"


def _verbosity(ctx: typer.Context, param: Any, value: Any) -> Any:
    """Record -v (a count) or -q and configure logging (flags win over DIGEST_LOG)."""
    from digest.log import configure, level_for

    seen = ctx.meta.setdefault(VERBOSITY, {"verbose": 0, "quiet": False})
    if param.name == "verbose":
        seen["verbose"] = max(seen["verbose"], int(value or 0))
    else:
        seen["quiet"] = seen["quiet"] or bool(value)
    configure(level_for(seen["verbose"], seen["quiet"]))
    return value


def _version(value: bool) -> None:
    if value:
        from digest import __version__

        out.print(f"digest {__version__}", markup=False)
        raise typer.Exit()


Verbose = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        callback=_verbosity,
        show_default=False,
        help="More detail on stderr: -v info, -vv debug (or DIGEST_LOG=debug).",
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", callback=_verbosity, help="Only errors on stderr; no progress lines."
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout (messages go to stderr).")
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder (default: found upwards from here, or DIGEST_WORKSPACE).",
        show_default=False,
        metavar="DIR",
    ),
]
IssueArg = Annotated[
    str | None,
    typer.Argument(
        help="Issue: folder name (031), a path to it, or omitted for the latest.",
        show_default=False,
        metavar="ID",
    ),
]
IssueOpt = Annotated[
    str | None,
    typer.Option(
        "--issue",
        "-i",
        help="Issue to add to (default: the latest).",
        show_default=False,
        metavar="ID",
    ),
]


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Compose a weekly newsletter from links: fetch, summarize, draft, render, send."""


def say(message: str) -> None:
    """Print a message of the library's for people, verbatim."""
    out.print(message, markup=False)


def fail(message: str | DigestError) -> NoReturn:
    """Print an error without a traceback; exit 2 for bad usage, else 1."""
    err.print(f"error: {message}", markup=False)
    raise typer.Exit(2 if isinstance(message, UsageError) else 1)


def _load(workspace: Path | None) -> Any:
    from digest.log import mask_secrets
    from digest.workspace import Workspace

    ws = Workspace.load(explicit=workspace)
    mask_secrets(*ws.secrets.revealed())
    return ws


def print_json(data: Any) -> None:
    """One JSON object on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Folder for the new workspace.", metavar="[DIR]")
    ] = Path("."),
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Create a workspace: digest.toml, .env.example, issues/."""
    from digest.setup import init_workspace

    try:
        created = init_workspace(directory)
    except DigestError as exc:
        fail(exc)
    for path in created:
        out.print(f"created {path}", markup=False)


@app.command()
def new(
    date: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Issue date YYYY-MM-DD (default: today).",
            show_default=False,
            metavar="YYYY-MM-DD",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Create it even when an issue already covers that Period."),
    ] = False,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Create the next issue folder with its number, date and Period."""
    from digest.workspace import new_issue

    try:
        day = dt.date.fromisoformat(date) if date else None
    except ValueError:
        err.print(f"--date {date!r}: expected YYYY-MM-DD, e.g. 2026-11-23", markup=False)
        raise typer.Exit(2) from None
    try:
        ws = _load(workspace)
        folder, meta = new_issue(ws, day, force=force)
    except DigestError as exc:
        fail(exc)
    out.print(
        f"created issue {folder.id} in {folder.path} — Period "
        f"{meta.period_start} ~ {meta.period_end}; add links with `digest add URL`",
        markup=False,
    )


@app.command()
def add(
    urls: Annotated[
        list[str],
        typer.Argument(
            help="URLs (or files inside the workspace) to add; '-' reads them from standard input.",
            metavar="URL",
        ),
    ],
    issue: IssueOpt = None,
    section: Annotated[
        str | None, typer.Option("--section", help="Section for these links.", metavar="NAME")
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="Editor's note for these links.", metavar="TEXT")
    ] = None,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Append links or workspace files to the issue's links.yaml (normalized, deduplicated)."""
    from digest.links import add_links

    if "-" in urls:
        piped = [w for line in sys.stdin if not line.lstrip().startswith("#") for w in line.split()]
        urls = [u for arg in urls for u in (piped if arg == "-" else [arg])]
    try:
        ws = _load(workspace)
        result = add_links(ws, ws.issue(issue), urls, section=section, note=note)
    except DigestError as exc:
        fail(exc)
    for line in result.messages:
        out.print(line, markup=False)


@app.command("import")
def import_(
    source: Annotated[
        str,
        typer.Argument(
            help="A text/Markdown file, bookmarks HTML, OPML, or an RSS/Atom feed (file or URL).",
            metavar="SOURCE",
        ),
    ],
    issue: IssueOpt = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Keep feed entries from this date (YYYY-MM-DD) instead of the Period.",
            show_default=False,
            metavar="YYYY-MM-DD",
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Add links from a file, a bookmarks export, OPML or a feed."""
    from digest.sources import import_source

    try:
        since_day = dt.date.fromisoformat(since) if since else None
    except ValueError:
        err.print(f"--since {since!r}: expected YYYY-MM-DD", markup=False)
        raise typer.Exit(2) from None
    try:
        ws = _load(workspace)
        result = import_source(ws, ws.issue(issue), source, since=since_day)
    except DigestError as exc:
        fail(exc)
    for line in result.messages:
        out.print(line, markup=False)


RefreshOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--refresh",
        help="Re-summarize this link (repeatable).",
        show_default=False,
        metavar="URL",
    ),
]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Use the built-in offline summarizer.")]
RefreshFallbacksOpt = Annotated[
    bool,
    typer.Option(
        "--refresh-fallbacks",
        help="Summarize again every item the offline fallback wrote that you have not edited.",
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option("--strict", help="Exit 1 when any link failed or fell back to offline."),
]


@app.command()
def compose(
    issue: IssueArg = None,
    refresh: RefreshOpt = None,
    offline: OfflineOpt = False,
    refresh_fallbacks: RefreshFallbacksOpt = False,
    strict: StrictOpt = False,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Fetch, extract, summarize and merge new links into draft.md; then render."""
    import asyncio

    from digest.compose import ComposeOptions, Composer
    from digest.log import is_quiet
    from digest.progress import compose_summary, make_progress, print_summary

    caught: list[str] = []
    before: tuple[int, int] | None = None
    folder = None
    try:
        ws = _load(workspace)
        folder = ws.issue(issue)
        options = ComposeOptions(
            refresh=refresh or [],
            refresh_fallbacks=refresh_fallbacks,
            offline=offline,
            strict=strict,
        )
        composer = Composer(ws, folder, options, progress=make_progress(err, quiet=is_quiet()))
        before = _fingerprint(folder.draft)
        with _sigterm_as_interrupt(caught):
            result = asyncio.run(composer.run())
    except DigestError as exc:
        fail(exc)
    except KeyboardInterrupt:
        by = caught[0] if caught else "Ctrl-C"
        if folder is None or _fingerprint(folder.draft) == before:
            what = "draft.md was not changed by this run"
        else:
            what = "draft.md was already written; run `digest compose` again to finish"
        err.print(f"interrupted by {by}: {what}", markup=False)
        raise typer.Exit(1) from None
    print_summary(err if as_json else out, folder, result)
    if as_json:
        print_json(compose_summary(folder, result))
    if not result.draft_exists:
        fail("no draft: every link failed (reasons above)")
    if strict and (result.failed or result.fallback):
        raise typer.Exit(1)
    if result.render_error:
        fail(f"render failed, previous outputs kept: {result.render_error}")


def _fingerprint(path: Path) -> tuple[int, int] | None:
    """A file's modification time and size, or None when it does not exist."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@contextlib.contextmanager
def _sigterm_as_interrupt(caught: list[str]) -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt (a clean stop, like Ctrl-C), noting it in `caught`."""

    def handler(signum: int, frame: Any) -> None:
        caught.append(signal.Signals(signum).name)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def render(
    issue: IssueArg = None,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Turn draft.md into issue.md, email.html and email.txt (no network)."""
    from digest.render import render_issue

    try:
        ws = _load(workspace)
        folder = ws.issue(issue)
        render_issue(ws, folder, notify=lambda note: err.print(note, markup=False))
    except DigestError as exc:
        fail(exc)
    for path in (folder.issue_md, folder.email_html, folder.email_txt):
        out.print(f"wrote {path}", markup=False)


@app.command()
def preview(
    issue: IssueArg = None,
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1 (0 = any free port).", metavar="N")
    ] = 8000,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Serve the rendered email on 127.0.0.1 and reload it when the draft changes."""
    from digest.preview import serve

    try:
        ws = _load(workspace)
        serve(
            ws,
            ws.issue(issue),
            port=port,
            announce=lambda url: out.print(f"previewing at {url} (Ctrl-C to stop)", markup=False),
            report=lambda message: err.print(message, markup=False),
        )
    except DigestError as exc:
        fail(exc)
    except KeyboardInterrupt:
        pass


@app.command()
def check(
    issue: IssueArg = None,
    links: Annotated[
        bool, typer.Option("--links", help="Also check that each source URL still answers.")
    ] = False,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Lint the draft: empty items, missing URLs, placeholders, size, warnings."""
    from digest.check import check_issue, check_json

    try:
        ws = _load(workspace)
        folder = ws.issue(issue)
        findings = check_issue(ws, folder, check_links=links)
    except DigestError as exc:
        fail(exc)
    errors = [f for f in findings if f.level == "error"]
    if as_json:
        print_json(check_json(folder, findings))
    else:
        for finding in findings:
            out.print(str(finding), markup=False)
        summary = f"{len(errors)} error(s), {len(findings) - len(errors)} warning(s)"
        out.print(summary, markup=False)
    if errors:
        raise typer.Exit(1)


ToOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--to",
        help="Test send to this address (repeatable).",
        show_default=False,
        metavar="ADDR",
    ),
]
ListOpt = Annotated[
    Path | None,
    typer.Option("--list", help="CSV of readers (email, name).", show_default=False, metavar="CSV"),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Write .eml files to outbox/, send nothing.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Send even when `digest check` finds errors.")
]


@app.command()
def send(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="Issue (031, a path, or omitted for the latest); with --to, further "
            "addresses may follow: `--to a@x.com b@y.com`.",
            show_default=False,
            metavar="[ID] [ADDR]...",
        ),
    ] = None,
    to: ToOpt = None,
    list_: ListOpt = None,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Send the rendered email to test addresses or a list, exactly once per reader."""
    from digest.progress import make_send_progress
    from digest.send import SendRequest, send_issue

    extra = [a for a in args or [] if "@" in a and not Path(a).exists()]
    ids = [a for a in args or [] if a not in extra]
    if extra and not to:
        err.print(f"{extra[0]}: an address needs --to before it (a test send)", markup=False)
        raise typer.Exit(2)
    if len(ids) > 1:
        err.print(f"one issue at a time: got {', '.join(ids)}", markup=False)
        raise typer.Exit(2)
    to = [*(to or []), *extra]
    issue = ids[0] if ids else None
    if bool(to) == bool(list_):
        err.print("give either --to ADDR… (a test send) or --list CSV (the readers)", markup=False)
        raise typer.Exit(2)
    try:
        ws = _load(workspace)
        request = SendRequest(to=to or [], list_path=list_, dry_run=dry_run, yes=yes, force=force)
        outcome = send_issue(
            ws,
            ws.issue(issue),
            request,
            notify=say,
            confirm=typer.confirm,
            progress=make_send_progress(out),
        )
    except DigestError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        raise typer.Exit(1) from None
    if not outcome.ok:
        raise typer.Exit(1)


@app.command()
def promote(
    urls: Annotated[
        list[str],
        typer.Argument(help="Candidates' URLs (from candidates.md).", metavar="URL"),
    ],
    issue: IssueOpt = None,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Move triaged-out candidates into the issue; the next compose summarizes them."""
    from digest.triage import promote as promote_links

    try:
        ws = _load(workspace)
        messages = promote_links(ws, ws.issue(issue), urls)
    except DigestError as exc:
        fail(exc)
    for line in messages:
        out.print(line, markup=False)


@app.command()
def publish(
    issue: IssueArg = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="buttondown | listmonk | ghost | hugo (default: publish.platform).",
            show_default=False,
            metavar="PLATFORM",
        ),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help="Schedule the send at this ISO date and time.",
            show_default=False,
            metavar="ISO-DATETIME",
        ),
    ] = None,
    send_now: Annotated[
        bool, typer.Option("--send-now", help="Send it to the platform's readers now.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Create or update the issue's one draft on a newsletter platform (or a Hugo site)."""
    from digest.publish import PublishRequest, publish_issue

    if schedule and send_now:
        err.print("give either --schedule or --send-now, not both", markup=False)
        raise typer.Exit(2)
    try:
        ws = _load(workspace)
        request = PublishRequest(platform=to or "", schedule=schedule, send_now=send_now, yes=yes)
        publish_issue(ws, ws.issue(issue), request, notify=say, confirm=typer.confirm)
    except DigestError as exc:
        fail(exc)


@app.command()
def status(
    issue: IssueArg = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """A table of the issue's links: fetched, summarized, failed (why), in the draft."""
    from digest.progress import print_status
    from digest.status import issue_status, status_json

    try:
        ws = _load(workspace)
        if as_json:
            print_json(status_json(ws, ws.issue(issue)))
        else:
            print_status(out, issue_status(ws, ws.issue(issue)))
    except DigestError as exc:
        fail(exc)


@app.command()
def doctor(
    offline: Annotated[
        bool, typer.Option("--offline", help="Skip the checks that use the network.")
    ] = False,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
    verbose: Verbose = 0,
    quiet: Quiet = False,
) -> None:
    """Check settings, the LLM endpoint, keys, sending and templates before the week's run."""
    from digest.doctor import doctor_json, run_doctor

    checks = run_doctor(workspace, offline=offline)
    report = doctor_json(checks)
    if as_json:
        print_json(report)
    else:
        for check in checks:
            out.print(str(check), markup=False)
    if not report["ok"]:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except DigestError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
