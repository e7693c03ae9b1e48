"""A ``medgrade`` command run in a forked child (POSIX), beside :mod:`MedGradeCoreLib.jobs` (the other
POSIX-only calls): a signal is honoured at once even during a long native call, and a native crash cannot take
the caller with it. :func:`run_isolated` is the portable entry: where there is no ``fork`` (Windows) or off the
main thread the command runs in this process (a panel's job is still a process of its own: ``BackgroundJob``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

_GRACE_S = 30.0  # after a signal, how long a child with its own SIGTERM handler may take to stop cleanly


class _Stop(Exception):
    pass


def run_in_child(run: Callable[[], int], progress_json: bool = False) -> int:
    """Run the command in a forked child so that SIGINT/SIGTERM are honoured at once, even during a long ITK
    or torch call that holds Python's GIL (the Swiss Skull Stripper runs a minute without returning).

    The signal is passed on to the child as SIGTERM: it ends at once (default action, even inside native code)
    unless the command handles SIGTERM itself to stop cleanly; one still there after ``_GRACE_S`` is killed. The
    partial folders and locks it registered are then removed and the command exits 130 (SIGINT) or 143 (SIGTERM).
    A child that crashes (segfault) is reported.
    """
    import tempfile

    from MedGradeCoreLib import outputs

    fd, registry = tempfile.mkstemp(prefix="medgrade-partials-")
    os.close(fd)
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        raise _Stop

    signals = [signal.SIGINT, signal.SIGTERM]
    previous = {s: signal.signal(s, on_signal) for s in signals}  # before the fork: no signal is missed
    outputs.set_registry(registry)
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    try:
        child = os.fork()
    except _Stop:
        for s, h in previous.items():
            signal.signal(s, h)
        Path(registry).unlink(missing_ok=True)
        return 128 + received[0]
    if child == 0:  # the command; a signal ends it at once, even inside native code (the parent cleans up)
        code = 1
        try:
            for s in signals:
                signal.signal(s, signal.SIG_DFL)
            os.setpgid(0, 0)  # the terminal's Ctrl-C reaches the parent only, which passes on a SIGTERM
            _die_with_parent(parent)
            if received:
                os._exit(128 + received[0])
            code = run()
        except SystemExit as exc:  # sys.exit() inside a command: its code, not a silent 1
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(f"error: {exc.code}", file=sys.stderr)
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt, MemoryError...: printed, not swallowed
            from MedGradeCoreLib.crash_log import report_unexpected

            code = report_unexpected(exc, sys.stdout if progress_json else sys.stderr)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    outputs.set_registry(None)
    stream = sys.stdout if progress_json else sys.stderr
    try:
        try:
            _, status = os.waitpid(child, 0)
        except _Stop:
            for s in signals:
                signal.signal(s, signal.SIG_IGN)
            _stop_child(child, received[0])
            outputs.remove_registered(registry)
            print(f"error: stopped by {signal.Signals(received[0]).name}; unfinished outputs were removed",
                  file=stream, flush=True)
            return 128 + received[0]
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) in signals:  # the terminal signalled us both
            outputs.remove_registered(registry)
            print(f"error: stopped by {signal.Signals(os.WTERMSIG(status)).name}; unfinished outputs were removed",
                  file=stream, flush=True)
            return 128 + os.WTERMSIG(status)
        if os.WIFSIGNALED(status):
            outputs.remove_registered(registry)
            name = signal.Signals(os.WTERMSIG(status)).name
            print(f"error: the command crashed ({name}); unfinished outputs were removed", file=stream, flush=True)
            return 1
        return os.WEXITSTATUS(status)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        Path(registry).unlink(missing_ok=True)


def _die_with_parent(parent: int) -> None:
    """End this (child) process when the parent ends, even by SIGKILL: Linux's PR_SET_PDEATHSIG, else a
    watchdog thread."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if sys.platform.startswith("linux") and libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _stop_child(child: int, signum: int) -> None:
    """Send the child SIGTERM: it ends at once (default action, even inside ITK), or, if the command installed
    its own handler (the training runner), stops cleanly; one still running after ``_GRACE_S`` is killed."""
    try:
        os.kill(child, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + _GRACE_S
    while os.waitpid(child, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            return
        time.sleep(0.05)


def run_isolated(run: Callable[[], int], progress_json: bool = False) -> int:
    """``run()`` in a forked child where this process can fork from its main thread, else in this process."""
    if hasattr(os, "fork") and threading.current_thread() is threading.main_thread():
        return run_in_child(run, progress_json)
    return run()
