"""What a command prints besides its result: progress lines on stderr, by verbosity (-q / -v)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import click

from zsbench.errors import ZsbenchWarning

_DEFAULT_FORMAT = warnings.formatwarning


def _format_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
    """zsbench's warnings as one line (they say what was skipped and why); other libraries' as Python prints them."""
    if issubclass(category, ZsbenchWarning):
        return f"warning: {message}\n"
    return _DEFAULT_FORMAT(message, category, filename, lineno, line)


@dataclass(frozen=True)
class Console:
    """`log` prints progress lines unless quiet; `detail` only when verbose. Results go to stdout, the rest to stderr."""

    quiet: bool = False
    verbose: bool = False

    @classmethod
    def from_flags(cls, quiet: bool, verbose: bool) -> Console:
        """The console of `-q` / `-v`. zsbench's own warnings print as one `warning: ...` line on stderr;
        quiet hides every other library's warnings (torch's, the DataLoader's about worker counts)."""
        if quiet and verbose:
            raise click.UsageError("-q/--quiet and -v/--verbose contradict each other; pass one.")
        warnings.formatwarning = _format_warning
        if quiet:
            warnings.filterwarnings("ignore")
            warnings.filterwarnings("default", category=ZsbenchWarning)
        return cls(quiet, verbose)

    def log(self, message: str) -> None:
        """A progress line (stderr), hidden by --quiet."""
        if not self.quiet:
            click.echo(message, err=True)

    def detail(self, message: str) -> None:
        """A detail line (stderr), shown by --verbose."""
        if self.verbose:
            click.echo(message, err=True)

    def warn(self, message: str) -> None:
        """A warning (stderr), shown even under --quiet: something was skipped or is suspect."""
        click.echo(message, err=True)

    def result(self, message: str) -> None:
        """What the command produced (stdout), always shown."""
        click.echo(message)
