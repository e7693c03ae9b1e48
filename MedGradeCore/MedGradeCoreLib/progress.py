"""Progress reporting and cancellation shared by the algorithms, the CLI and background jobs.

Algorithms take a ``Progress`` and call it; they never print. The CLI turns it into a
progress bar or, with ``--progress-json``, into one JSON object per line that
:class:`MedGradeCoreLib.jobs.BackgroundJob` parses in the Slicer widget.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Callable, TextIO

from MedGradeCoreLib.errors import CancelledError

PROGRESS_PREFIX = "MEDGRADE-PROGRESS "


class Progress:
    """Callable ``progress(fraction, message)`` with sub-ranges and a cancel flag."""

    def __init__(self, callback: Callable[[float, str], None] | None = None,
                 cancel_event: threading.Event | None = None, start: float = 0.0, end: float = 1.0):
        self._callback = callback
        self._cancel = cancel_event or threading.Event()
        self._start, self._end = start, end

    def __call__(self, fraction: float, message: str = "") -> None:
        self.check_cancelled()
        if self._callback is not None:
            f = self._start + (self._end - self._start) * min(max(fraction, 0.0), 1.0)
            self._callback(f, message)

    def sub(self, start: float, end: float) -> "Progress":
        """A Progress mapping [0, 1] onto [start, end] of this one."""
        span = self._end - self._start
        return Progress(self._callback, self._cancel, self._start + span * start, self._start + span * end)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise CancelledError("cancelled by the user")


def json_lines_progress(stream: TextIO = sys.stdout) -> Progress:
    """Progress that writes ``MEDGRADE-PROGRESS {"fraction": f, "message": m}`` lines."""

    def emit(fraction: float, message: str) -> None:
        stream.write(PROGRESS_PREFIX + json.dumps({"fraction": round(fraction, 4), "message": message}) + "\n")
        stream.flush()

    return Progress(emit)
