"""Errors a user causes, and the one place that turns them into a one-line message.

Every entry point runs through :func:`user_errors_exit`: an input error exits
with status 2 and one line on stderr (file, row and field where it has them); a
bug still shows its traceback. No entry point catches errors on its own. SIGTERM
unwinds like Ctrl-C, so a stage ends its LlamaFactory child and removes its
temporary output before the process exits (status 143).
"""

from __future__ import annotations

import functools
import os
import re
import signal
import sys
import threading
from collections.abc import Callable


class UserError(Exception):
    """Something the user can fix: a bad file, flag or order of commands."""


class BadInputError(UserError, ValueError):
    """An input the pipeline cannot use, located by file, row and field."""

    def __init__(self, path: str | os.PathLike, message: str, row: int | None = None, field: str | None = None):
        self.path, self.row, self.field = str(path), row, field
        where = self.path
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class MissingStageError(UserError):
    """A stage needs the output of one that has not run."""

    def __init__(self, needed: str, path: os.PathLike, command: str):
        super().__init__(f"{needed} has not run yet ({path} is missing); run it first: {command}")


def _stop(signum, frame) -> None:
    """SIGTERM as an exception in the main thread: ``finally`` and cleanup handlers run, as for Ctrl-C."""
    print(f"error: stopped by {signal.Signals(signum).name}; nothing half-written is kept, rerun the command to resume",
          file=sys.stderr)
    raise SystemExit(128 + signum)


def user_errors_exit(main: Callable) -> Callable:
    """Wrap a ``main(argv)``: a :class:`UserError`, or a path the OS refuses (not writable, a folder where a file
    should be), becomes ``error: ...`` on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _stop)
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except (PermissionError, IsADirectoryError, NotADirectoryError) as err:  # a folder the user cannot write
            # named as the output it was to become: the temporary sibling (atomic_output's) is gone already
            print(f"error: {re.sub(r'[.]tmp-[0-9]+', '', str(err.filename))}: {err.strerror}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:  # Ctrl-C: the cleanup handlers have run on the way out
            print("error: stopped by SIGINT; nothing half-written is kept, rerun the command to resume", file=sys.stderr)
            raise SystemExit(128 + signal.SIGINT) from None
        except FileExistsError as err:  # most often a file where an output folder goes
            what = "a file is where an output folder goes; move it away" if os.path.isfile(err.filename or "") else err.strerror
            print(f"error: {err.filename}: {what}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapped
