"""How a sweeper process imports and ends: the cyclic collector paused while a large stack loads; an error its
command raises becomes one `error:` line and an exit code (a person fixes a full disk or a wrong path; a traceback
would not help), and the process leaves without the interpreter's teardown. Shared by the `sweeper` command
(`cli.py`) and a sweep's hand-off helper (`hand_off.py`)."""

from __future__ import annotations

import atexit
import errno
import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from .config import ConfigError

# A full disk, a read-only folder or missing permissions: a person fixes them; the traceback would not help.
_FULL_OR_READ_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


@contextmanager
def collector_paused(freeze: bool = True) -> Iterator[None]:
    """Around a block that imports a large stack (the training stack: ~0.5M objects that live as long as the process),
    or, with `freeze=False`, one that builds many short-lived objects without cycles (a bulk read).

    The cyclic collector starts on allocation counts, so while those modules load it walks their objects again and
    again: about 0.7 s of the training stack's 3.4 s import on this machine (bench/import_collector.py). Paused for the
    block; at its end what the block left is frozen out of the collector's sight, and the collector resumes as it was.
    What freezing keeps that a collection would have freed, the cycles importing leaves behind, is about 12,000 small
    objects (a few MB) with the training stack, kept for the process's life. Without `freeze` what the block left
    stays in the collector's sight: it resumes as it was, and any cycle is collected later as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


def import_paused(modules: Iterable[str]) -> None:
    """Import `modules` (dotted names) with the collector paused (`collector_paused`): a command's stack, ahead of the
    lazy imports its work would make with the collector running."""
    with collector_paused():
        for module in modules:
            importlib.import_module(module)


def run_command(command: Callable[[], int], debug: bool = False) -> int:
    """`command()`'s exit code; an error it raises becomes one `error:` line on stderr and its exit code."""
    try:
        return command()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        from .storage import StorageFailure  # late: the storage stack is slow to import, and most runs never fail

        if debug:
            raise
        if isinstance(error, StorageFailure):
            print(f"error: {error}", file=sys.stderr)
            return 1
        if isinstance(error, OSError):
            return _explain_os_error(error)
        # last resort: one line, not a traceback; --debug shows where it came from
        print(f"error: {_unexpected(error)}. Run the same command with --debug for the traceback, and report it if "
              "the input looks right", file=sys.stderr)
        return 1


def _explain_os_error(error: OSError) -> int:
    from .config import redact_secrets

    where = f"{redact_secrets(str(error.filename))}: " if error.filename else ""
    if error.errno in _FULL_OR_READ_ONLY:
        print(f"error: {where}{error.strerror}. Fix: free disk space or make the folder writable, then run the same "
              "command again", file=sys.stderr)
    else:
        print(f"error: {where}{error.strerror or type(error).__name__}. Fix: check that path (a folder where a file "
              "is expected, or the reverse; a name too long; no permission), then run the same command again",
              file=sys.stderr)
        return 2  # a path the user gave
    return 1


def _unexpected(error: BaseException) -> str:
    from .config import redact_secrets, shown_value

    text = " ".join(str(error).split()) or "(no message)"
    return f"unexpected {type(error).__name__}: {redact_secrets(shown_value(text)[1:-1])}"


_finished_with: int | None = None  # `exit_without_teardown` sets it once its command has returned


def exit_without_teardown(command: Callable[[], int]) -> None:
    """A sweeper process's end (the `sweeper` command, a sweep's hand-off helper): `command()`, then out with its code
    and without the interpreter's teardown.

    A command that loaded the training stack holds ~0.5M Python objects; freeing them one by one at exit took 1.3-1.5
    s of every `sweeper sweep` (bench/sweep_overhead.py), memory the OS takes back at once anyway. The handler is
    registered before any library registers its own, so it runs last: non-daemon threads are joined and every other
    exit handler (logging's flush among them) has run by then, as in a normal exit. Where `command` did not return (an
    argparse exit, an exception that escaped) the exit stays the interpreter's. Tests call `main`, which never exits.
    """
    atexit.register(_exit_without_teardown)
    global _finished_with
    _finished_with = command()
    sys.exit(_finished_with)


def _exit_without_teardown() -> None:
    if _finished_with is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`sweeper status | head`) or a closed stream: nothing to keep
            pass
    os._exit(_finished_with)
