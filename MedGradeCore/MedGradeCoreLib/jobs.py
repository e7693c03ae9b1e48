"""Run a ``medgrade`` command in a separate process and poll it (no Qt, no threads in the GUI).

The Slicer widgets start a :class:`BackgroundJob`, poll it from a ``qt.QTimer`` and show its
progress; Cancel terminates the process. Heavy work thus never runs on Slicer's GUI thread and a
crash in it cannot take Slicer down (the pattern of SlicerMONAIAuto3DSeg).

``PythonSlicer`` is a launcher that starts the real interpreter as a child (and ``medgrade`` forks its
command once more): the job is started as the leader of its own process group (POSIX: a new session;
Windows: a new process group, no console window) and Cancel ends the whole group/tree, so no
grandchild keeps working, writing or holding the GPU. Output is decoded as UTF-8 with replacement.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from MedGradeCoreLib.progress import PROGRESS_PREFIX


@dataclass
class JobEvent:
    kind: str  # "progress" | "log"
    fraction: float | None
    message: str


class BackgroundJob:
    """``python -m MedGradeCoreLib.cli <args> --progress-json`` in a child process."""

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

    def command(self) -> list[str]:
        return [self.python, "-m", "MedGradeCoreLib.cli", *self.args, "--progress-json"]

    def start(self, cmd: list[str] | None = None) -> "BackgroundJob":
        """Start ``cmd`` (default: :meth:`command`) as its own process group; see the module docstring."""
        env = dict(self._env, PYTHONIOENCODING="utf-8", PYTHONUTF8="1")
        self._proc = subprocess.Popen(cmd or self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, encoding="utf-8", errors="replace", env=env, cwd=self._cwd,
                                      bufsize=1, **process_group_options())
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
        """End the whole process tree: terminate, then kill what is left after ``grace_s``."""
        if self._proc is None or (not self.running and not _group_alive(self._proc.pid)):
            return
        self.cancelled = True
        kill_tree(self._proc, grace_s)

    def error_message(self) -> str:
        """The last line the command printed starting with ``error:`` (its one-line reason)."""
        for line in reversed(self.log):
            if line.startswith("error:"):
                return line[len("error:"):].strip()
        return self.log[-1] if self.log else ""


def process_group_options() -> dict[str, Any]:
    """``Popen`` keywords making the child the leader of a new process group (and no console on Windows)."""
    if sys.platform == "win32":
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200) | getattr(subprocess, "CREATE_NO_WINDOW",
                                                                                 0x08000000)
        return {"creationflags": flags}
    return {"start_new_session": True}  # the child's pid is its process-group id


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process of group ``pgid`` remains (``/proc`` where there is one)."""
    if sys.platform == "win32":
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not os.path.isdir("/proc"):
        return True
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            return True
    return False


def kill_tree(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM to the process group (Windows: ``taskkill /T`` on the tree), SIGKILL after ``grace_s``."""
    if sys.platform == "win32":
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)
        subprocess.run(["taskkill", "/PID", str(proc.pid), "/T"], capture_output=True, creationflags=flags)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            subprocess.run(["taskkill", "/PID", str(proc.pid), "/T", "/F"], capture_output=True,
                           creationflags=flags)
            proc.wait()
        return
    pgid = proc.pid
    try:
        leader = os.getpgid(pgid) == pgid
    except ProcessLookupError:
        leader = False
    if not leader:  # started elsewhere without its own group: only the process itself can be reached
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(pgid):
        proc.poll()  # reap the leader so that only live members count
        time.sleep(0.05)
    if _group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5.0  # SIGKILL is delivered asynchronously: wait until none is left
        while time.monotonic() < deadline and _group_alive(pgid):
            proc.poll()
            time.sleep(0.02)
    proc.wait()
