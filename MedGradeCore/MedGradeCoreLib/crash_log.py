"""An unexpected failure (a bug, or an input no check caught) is never silent: one ``error:`` line naming the
file when the exception knows it, and the full traceback in a log file whose path that line prints."""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import TextIO


def _log_dir() -> Path:
    try:
        from MedGradeCoreLib.sample_data import cache_dir

        d = cache_dir() / "logs"
        d.mkdir(parents=True, exist_ok=True)
        return d
    except Exception:  # noqa: BLE001 - an unwritable cache must not hide the error itself
        return Path(tempfile.gettempdir())


def write_traceback(exc: BaseException, argv: list[str] | None = None) -> Path | None:
    """The traceback of ``exc`` (and the command line) in ``<cache>/logs/medgrade-<time>-<pid>.log``."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    head = f"medgrade {' '.join(argv or [])}\n" if argv is not None else ""
    for d in (_log_dir(), Path(tempfile.gettempdir())):
        path = d / f"medgrade-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        try:
            path.write_text(head + text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def one_line(exc: BaseException) -> str:
    """``<file>: <problem>`` when the exception names a file (OSError), else ``<Type>: <message>``."""
    msg = " ".join(str(exc).split())[:300] or "(no message)"
    filename = getattr(exc, "filename", None)
    if filename and str(filename) not in msg:
        return f"{filename}: {type(exc).__name__}: {msg}"
    return f"{type(exc).__name__}: {msg}"


def report_unexpected(exc: BaseException, stream: TextIO, argv: list[str] | None = None) -> int:
    """Print the one-line error and where the traceback went; the exit code (1)."""
    path = write_traceback(exc, argv)
    where = f" (full traceback: {path})" if path else ""
    print(f"error: unexpected failure: {one_line(exc)}{where}", file=stream, flush=True)
    return 1
