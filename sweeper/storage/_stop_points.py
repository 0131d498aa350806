"""Stop signals wait for the storage call in progress.

A stop signal (Ctrl-C, SIGTERM) raises an exception wherever the main thread happens to be. Inside a database call
that can leave a connection pool's lock taken or a transaction open on a SQLite file, and the worker then hangs
while recording its interrupted trial (or holds the file the other workers write to). So the signal handler asks
`defer_stop` first: within a storage call the stop is kept and raised as the outermost call returns; a call that
fails while a stop waits is not retried.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0  # storage calls the main thread is inside (signal handlers run in the main thread)
_pending: BaseException | None = None


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def defer_stop(stop: BaseException) -> bool:
    """For a signal handler: True when `stop` is kept until the storage call in progress returns."""
    global _pending
    if _depth == 0:
        return False
    _pending = stop
    return True


def stop_pending() -> bool:
    return _pending is not None


def raise_pending_stop() -> None:
    global _pending
    if _pending is not None and _on_main_thread():
        stop, _pending = _pending, None
        raise stop


@contextmanager
def storage_call() -> Iterator[None]:
    """Around one storage call: a stop signal that arrives inside it is raised when the outermost call returns."""
    global _depth
    if not _on_main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            raise_pending_stop()
