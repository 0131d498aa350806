"""Stopping a sweep from outside: SIGTERM (timeout, systemd, container runtimes) and SIGHUP (a closed terminal)
stop it the way Ctrl-C does, and workers never outlive the launcher that started them."""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import io
import os
import signal
import sys
import threading
from collections.abc import Iterator

from ..storage import defer_stop

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STACK_DUMP_SIGNAL = signal.SIGUSR1  # a worker writes every thread's stack to stderr (and goes on)
PARENT_PID_ENV = "SWEEPER_LAUNCHER_PID"  # a launched worker watches this process and stops when it is gone
_PR_SET_PDEATHSIG = 1


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived; raised where KeyboardInterrupt is, so every Ctrl-C path (the running trial stored
    as FAIL `interrupted`) serves it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received: StopRequested | None = None  # the stop signal this process got, kept in case its exception is lost


def received_stop() -> StopRequested | None:
    """The stop signal received inside `stop_signals_interrupt()`, if any. Its exception is raised where the main
    thread happens to be, and is lost where Python ignores exceptions (a weakref callback, a `__del__`): the worker
    checks this at its next trial step and before each trial, so a stop is never lost."""
    return _received


def signal_name(error: BaseException) -> str:
    return signal.Signals(getattr(error, "signum", signal.SIGINT)).name


def exit_code(error: BaseException) -> int:
    """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + getattr(error, "signum", signal.SIGINT)


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise StopRequested in the main thread, after the storage call in
    progress if there is one (see storage/_stop_points.py). Later stop signals
    are ignored while the first is being handled, so that a second one cannot cut the recording of the trial."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame) -> None:
        global _received
        for other in STOP_SIGNALS[1:]:
            signal.signal(other, signal.SIG_IGN)
        request = StopRequested(signum)
        _received = request
        if not defer_stop(request):  # inside a storage call it is raised as the call returns
            raise request

    global _received
    _received = None
    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        _received = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def dump_stack_on_signal() -> None:
    """STACK_DUMP_SIGNAL makes this process write every thread's stack to stderr: how a stuck worker is diagnosed.
    faulthandler writes to a file descriptor: where sys.stderr has none (captured, as in tests), the process's own."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            faulthandler.register(STACK_DUMP_SIGNAL, file=stream, all_threads=True, chain=False)
            return
        except (AttributeError, ValueError, io.UnsupportedOperation):  # no fileno()
            continue


def die_with_parent() -> None:
    """For a launched worker, run in the child before exec: the kernel sends SIGTERM when the launcher dies, even by
    SIGKILL (Linux). Elsewhere `watch_launcher` covers it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def watch_launcher(interval_s: float = 2.0) -> threading.Event | None:
    """In a worker started by a launcher (PARENT_PID_ENV set): a daemon thread that sends this process SIGTERM when
    the launcher is gone, should the parent-death signal be unavailable. Returns the event that stops the watch."""
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected or not expected.isdigit():
        return None
    stopped = threading.Event()

    def watch() -> None:
        while not stopped.wait(interval_s):
            if os.getppid() != int(expected):
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="sweeper-launcher-watch", daemon=True).start()
    return stopped
