"""Output files written whole or not at all, and the errors of an output path.

A report or an export file is written to a temporary file in its own directory, flushed to disk,
then renamed over its name: a reader sees the old file or the new one, never half of one, and an
error leaves nothing behind. A path that cannot be a file (through an existing file) is bad input,
a ConfigError; what the operating system refuses for an acceptable path (no permission, a
read-only or full disk, ``/proc``) is an OutputError.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import ConfigError, OutputError

__all__ = ["check_out", "output_errors", "write_whole"]


def write_whole(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` with a binary file that becomes ``path`` once ``write`` returns; on any
    error, ``path`` is left as it was and the temporary file is removed. Raises OSError."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 rather than mkstemp (0o600): the file gets the mode the umask gives.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # a no-op once renamed


def check_out(out: str | Path, *, directory: bool) -> Path:
    """``out`` as a Path, when it can be the output: a file for the HTML report, a directory
    (``directory``) for the exports; its missing parent directories will be created. Raises
    ConfigError when ``out`` leads through an existing file or is of the wrong kind, OutputError
    when the system refuses to write in the nearest directory that exists."""
    path = Path(out)
    if not directory and path.is_dir():
        raise ConfigError(f"out {str(out)!r} is a directory; the HTML report is one file")
    if directory and path.exists() and not path.is_dir():
        raise ConfigError(f"out {str(out)!r} is a file; exports go to a directory")
    nearest = path if directory and path.is_dir() else None
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"out={str(out)!r}: {parent} is a file, not a directory")
            nearest = nearest or parent
            break
    if nearest is not None:
        # Whether the system lets us write there, asked before a report is built (an HTML
        # report takes seconds): a file made and removed in the nearest existing directory.
        with output_errors(out):
            probe = nearest / f".uptimelab-probe-{secrets.token_hex(4)}"
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            probe.unlink()
    return path


@contextlib.contextmanager
def output_errors(out: str | Path) -> Iterator[None]:
    """Turn an OSError while writing ``out`` into one line: a ConfigError when a part of the
    path is not a directory (bad input), else an OutputError (the system refused)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOTDIR:
            raise ConfigError(f"out={str(out)!r}: {reason}") from exc
        raise OutputError(f"cannot write the report to {out}: {reason}") from exc
