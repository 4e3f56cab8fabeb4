"""Errors raised by digest.

Every error the package raises on purpose is a `DigestError`; its message says what went
wrong and how to fix it, and the CLI prints it without a traceback and exits 1.

    DigestError
      ConfigError     digest.toml, .env or an environment variable is wrong
      WorkspaceError  no workspace, no such issue, a file that cannot be written
      LinksError      links.yaml or an import source cannot be read
      DraftError      draft.md cannot be parsed (carries file and line)
      FetchError      one link could not be fetched (per link; never stops a compose)
      ExtractError    a fetched page holds no article (per link)
      SummarizeError  the summarizer could not produce bullets (per link)
      RenderError     a template failed; previous outputs are left as they were
      SendError       sending was refused or interrupted
      PublishError    a newsletter platform refused or did not answer (`digest publish`)
      UsageError      a command-line value is wrong (the CLI exits 2, bad usage)
"""

from __future__ import annotations

from pathlib import Path


class DigestError(Exception):
    """Base of every error digest reports to the user."""


class ConfigError(DigestError):
    """A setting is missing or has the wrong type."""


class WorkspaceError(DigestError):
    """The workspace or an issue folder cannot be found or written."""


class LinksError(DigestError):
    """links.yaml or an import source cannot be read."""


class DraftError(DigestError):
    """draft.md cannot be parsed; names the file and line."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line else str(self.path)
        super().__init__(f"{where}: {message}")


class FetchError(DigestError):
    """One link could not be fetched; the message is the plain-word reason."""


class ExtractError(DigestError):
    """A fetched body holds no article text."""


class SummarizeError(DigestError):
    """The summarizer could not produce bullets for one article."""


class RenderError(DigestError):
    """A template or the MJML compiler failed."""


class SendError(DigestError):
    """Sending was refused, failed or was interrupted."""


class PublishError(DigestError):
    """A platform refused the issue or did not answer; local state is left as it was."""


class UsageError(DigestError):
    """A command-line option or argument has a bad value; the CLI exits 2 (bad usage)."""
