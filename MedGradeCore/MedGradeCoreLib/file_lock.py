"""The one portable file lock, beside :mod:`MedGradeCoreLib.jobs` (the other POSIX-only calls): POSIX
``flock``, Windows ``msvcrt.locking``. It is held on an open file and released when that file is closed or
its process ends, however it ends. :class:`MedGradeCoreLib.outputs.OutputLock` (one writer per output, the
run folder's lock) tries it without waiting; the local GPU queue waits for it (:func:`locked`)."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

# Windows locks a byte range from the file position: always one byte far past any text, so that every opener
# (an ``"a+"`` file starts at its end) contends for the same byte and a holder's pid written there stays readable.
_WINDOWS_BYTE = 1 << 30
_WINDOWS_POLL_S = 0.05  # msvcrt's blocking mode gives up after 10 s: waiting is polling


def _windows(fd: int, mode: int, wait: bool) -> bool:
    import msvcrt

    position = os.lseek(fd, 0, os.SEEK_CUR)
    os.lseek(fd, _WINDOWS_BYTE, os.SEEK_SET)
    try:
        while True:
            try:
                msvcrt.locking(fd, mode, 1)  # type: ignore[attr-defined]
                return True
            except OSError:
                if not wait:
                    return False
                time.sleep(_WINDOWS_POLL_S)
    finally:
        os.lseek(fd, position, os.SEEK_SET)


def lock_file(f: IO, wait: bool = False) -> bool:
    """Lock the open file ``f`` exclusively. ``wait=False``: at once or False when another process holds it;
    ``wait=True``: block until it is free (True)."""
    if sys.platform == "win32":
        import msvcrt

        return _windows(f.fileno(), msvcrt.LK_NBLCK, wait)  # type: ignore[attr-defined]
    import fcntl

    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except OSError:
        if wait:
            raise
        return False


def unlock_file(f: IO) -> None:
    """Release the lock :func:`lock_file` took on ``f`` (closing ``f`` releases it too)."""
    if sys.platform == "win32":
        import msvcrt

        _windows(f.fileno(), msvcrt.LK_UNLCK, wait=False)  # type: ignore[attr-defined]
        return
    import fcntl

    fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextmanager
def locked(path: str | Path) -> Iterator[IO]:
    """``path`` (created when missing, never removed) locked exclusively for the block, waiting while another
    process holds it."""
    with open(path, "a") as f:
        lock_file(f, wait=True)
        try:
            yield f
        finally:
            unlock_file(f)
