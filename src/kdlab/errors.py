"""The one base class for errors a user can fix (bad params, files, environment), and how entry points report them.

Every entry point (each stage's ``main``, the ``kdlab`` command) runs through :func:`report_errors`:
a :class:`KdlabError` becomes exactly one line on stderr, ``kdlab: error: <what>``, and exit
status 1; with ``KDLAB_DEBUG=1`` in the environment the traceback is printed above that line.
An ``OSError`` (a file that cannot be read or written: permissions, a full disk, a folder where
a file should be) is reported the same way, with the file and the system's reason. Anything else
is a bug and keeps its traceback. Command-line mistakes (an unknown option) are reported the
same way by :class:`ArgumentParser`, with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Callable, NoReturn

PREFIX = "kdlab: error: "
DEBUG_ENV = "KDLAB_DEBUG"


class KdlabError(ValueError):
    """An input or environment problem, with a message that says what to do."""


def debugging() -> bool:
    """Whether ``KDLAB_DEBUG`` asks for tracebacks (any value but empty or 0)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def one_line(message: str) -> str:
    """``message`` on a single line: line breaks (and the indentation after them) become "; "."""
    parts = [part.strip() for part in str(message).splitlines()]
    return "; ".join(part for part in parts if part)


def report_errors(run: Callable[[], int | None]) -> int:
    """Call ``run``; return its status (None counts as 0), or 1 after printing a user error as one line."""
    try:
        return int(run() or 0)
    except KdlabError as exc:
        error, message = exc, str(exc)
    except OSError as exc:  # the file system refused: say which file and why
        target = exc.filename2 or exc.filename  # a rename names its target second
        where = f"{target}: " if target else ""
        error = exc
        message = f"{where}{exc.strerror or exc} (a file-system problem; KDLAB_DEBUG=1 shows where it happened)"
    if debugging():
        traceback.print_exception(error, file=sys.stderr)
    print(PREFIX + one_line(message), file=sys.stderr)
    return 1


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with usage mistakes reported as one ``kdlab: error:`` line (status 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"{PREFIX}{self.prog}: {one_line(message)} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)
