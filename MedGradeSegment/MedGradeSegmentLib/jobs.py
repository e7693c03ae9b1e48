"""Run a ``medgrade`` command in a separate process and poll it (no Qt, no threads in the GUI).

The Slicer widgets start a :class:`BackgroundJob`, poll it from a ``qt.QTimer`` and show its
progress; Cancel terminates the process. Heavy work thus never runs on Slicer's GUI thread and a
crash in it cannot take Slicer down (the pattern of SlicerMONAIAuto3DSeg).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass

from .progress import PROGRESS_PREFIX


@dataclass
class JobEvent:
    kind: str  # "progress" | "log"
    fraction: float | None
    message: str


class BackgroundJob:
    """``python -m MedGradeTrainLib.cli <args> --progress-json`` in a child process."""

    def __init__(self, args: list[str], python: str | None = None, env: dict[str, str] | None = None,
                 cwd: str | None = None):
        self.args = list(args)
        self.python = python or sys.executable
        self._env = dict(os.environ, **(env or {}), PYTHONUNBUFFERED="1")
        self._cwd = cwd
        self._proc: subprocess.Popen[str] | None = None
        self._events: "queue.Queue[JobEvent]" = queue.Queue()
        self._reader: threading.Thread | None = None
        self.log: list[str] = []
        self.last_fraction = 0.0
        self.cancelled = False

    def start(self) -> "BackgroundJob":
        cmd = [self.python, "-m", "MedGradeTrainLib.cli", *self.args, "--progress-json"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      env=self._env, cwd=self._cwd, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(PROGRESS_PREFIX):
                try:
                    data = json.loads(line[len(PROGRESS_PREFIX):])
                    self._events.put(JobEvent("progress", float(data["fraction"]), str(data.get("message", ""))))
                    continue
                except (ValueError, KeyError):
                    pass
            self._events.put(JobEvent("log", None, line))

    def poll(self) -> list[JobEvent]:
        """New events since the last poll (non-blocking)."""
        events = []
        while True:
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                break
            if ev.kind == "progress" and ev.fraction is not None:
                self.last_fraction = ev.fraction
            else:
                self.log.append(ev.message)
            events.append(ev)
        return events

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        assert self._proc is not None
        rc = self._proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return rc

    def cancel(self, grace_s: float = 5.0) -> None:
        """Terminate the child process (kill it if it does not stop within ``grace_s``)."""
        if not self.running:
            return
        self.cancelled = True
        assert self._proc is not None
        self._proc.terminate()
        try:
            self._proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def error_message(self) -> str:
        """The last line the command printed starting with ``error:`` (its one-line reason)."""
        for line in reversed(self.log):
            if line.startswith("error:"):
                return line[len("error:"):].strip()
        return self.log[-1] if self.log else ""
