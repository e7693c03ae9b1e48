"""Run a ``medgrade`` command in a separate process and poll it (no Qt, no threads in the GUI).

The Slicer widgets start a :class:`BackgroundJob`, poll it from a ``qt.QTimer`` and show its
progress; Cancel terminates the process. Heavy work thus never runs on Slicer's GUI thread and a
crash in it cannot take Slicer down (the pattern of SlicerMONAIAuto3DSeg).

``PythonSlicer`` is a launcher that starts the real interpreter as a child (and ``medgrade`` forks its
command once more): the job is started as the leader of its own process group (POSIX: a new session;
Windows: a new process group, no console window) and Cancel ends the whole group/tree, so no
grandchild keeps working, writing or holding the GPU. Output is decoded as UTF-8 with replacement.

This module is the one owner of three things: the ``medgrade`` command line (:func:`medgrade_command`), the
process-tree kill (:func:`kill_tree`, asynchronous with ``wait=False``; POSIX calls and the Windows path
only here) and the parent watch (a job whose starter dies ends itself: :func:`watch_parent`, started by the
CLI when ``MEDGRADE_PARENT_PID`` is set), so that no panel job outlives Slicer.
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
import weakref
from dataclasses import dataclass
from typing import Any

from MedGradeCoreLib.progress import PROGRESS_PREFIX

CLI_MODULE = "MedGradeCoreLib.cli"
PARENT_ENV = "MEDGRADE_PARENT_PID"  # set by BackgroundJob: the job ends itself when this process is gone
_LIVE: "weakref.WeakSet[BackgroundJob]" = weakref.WeakSet()


def medgrade_command(args: list[str], python: str | None = None) -> list[str]:
    """``python -m MedGradeCoreLib.cli ARGS``: the one way every launcher spells a ``medgrade`` command."""
    return [python or sys.executable, "-m", CLI_MODULE, *args]


@dataclass
class JobEvent:
    kind: str  # "progress" | "log"
    fraction: float | None
    message: str


class BackgroundJob:
    """``python -m MedGradeCoreLib.cli <args> --progress-json`` in a child process."""

    def __init__(self, args: list[str], python: str | None = None, env: dict[str, str] | None = None,
                 cwd: str | None = None, parent_pid: int | None = None):
        self.args = list(args)
        self.python = python or sys.executable
        # the job watches its starter (default: this process) and ends itself when it is gone
        watched = {PARENT_ENV: str(parent_pid or os.getpid())}
        self._env = dict(os.environ, **(env or {}), **watched, PYTHONUNBUFFERED="1")
        self._cwd = cwd
        self._proc: subprocess.Popen[str] | None = None
        self._events: "queue.Queue[JobEvent]" = queue.Queue()
        self._reader: threading.Thread | None = None
        self.log: list[str] = []
        self.last_fraction = 0.0
        self.cancelled = False
        self._killer: threading.Thread | None = None

    def command(self) -> list[str]:
        return medgrade_command([*self.args, "--progress-json"], self.python)

    def start(self, cmd: list[str] | None = None) -> "BackgroundJob":
        """Start ``cmd`` (default: :meth:`command`) as its own process group; see the module docstring."""
        env = dict(self._env, PYTHONIOENCODING="utf-8", PYTHONUTF8="1")
        self._proc = subprocess.Popen(cmd or self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, encoding="utf-8", errors="replace", env=env, cwd=self._cwd,
                                      bufsize=1, **process_group_options())
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        _LIVE.add(self)
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

    def cancel(self, grace_s: float = 5.0, wait: bool = True) -> None:
        """End the whole process tree: terminate, then kill what is left after ``grace_s``. ``wait=False``
        returns at once (the GUI thread never waits) and the kill goes on in a background thread."""
        if self._proc is None or (not self.running and not _group_alive(self._proc.pid)):
            return
        self.cancelled = True
        if self._killer is not None and self._killer.is_alive():
            return
        self._killer = kill_tree(self._proc, grace_s, wait=wait)

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


def process_group_id(pid: int = 0) -> int | None:
    """The POSIX process group of ``pid`` (0: this process); None on Windows (no groups: :func:`signal_tree`
    ends a tree there with ``taskkill /T``)."""
    return None if sys.platform == "win32" else os.getpgid(pid)


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


def cancel_all(grace_s: float = 5.0, wait: bool = False) -> int:
    """Cancel every running job this process started (Slicer quitting, a panel closing); how many."""
    jobs = [j for j in list(_LIVE) if j.running]
    for job in jobs:
        job.cancel(grace_s, wait=wait)
    return len(jobs)


def kill_tree(proc: subprocess.Popen, grace_s: float = 5.0, wait: bool = True) -> threading.Thread | None:
    """SIGTERM to the process group (Windows: ``taskkill /T`` on the tree), SIGKILL after ``grace_s``.
    ``wait=False``: done in a daemon thread, returned at once."""
    if not wait:
        thread = threading.Thread(target=kill_tree, args=(proc, grace_s), daemon=True)
        thread.start()
        return thread
    _kill_tree_now(proc, grace_s)
    return None


def _taskkill(pid: int, force: bool) -> None:
    """Windows: ``taskkill /T`` on ``pid``'s tree (``/F``: forced), no console window."""
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)
    subprocess.run(["taskkill", "/PID", str(pid), "/T", *(["/F"] if force else [])], capture_output=True,
                   creationflags=flags)


def _killpg(pgid: int, force: bool) -> None:
    """POSIX: SIGTERM (``force``: SIGKILL) to process group ``pgid``; gone already is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL if force else signal.SIGTERM)
    except ProcessLookupError:
        pass


def signal_tree(pid: int, force: bool = False, group: bool = True) -> None:
    """The one portable signal to a process and what it started: Windows ``taskkill /T`` (``/F`` when
    ``force``); POSIX SIGTERM/SIGKILL to its group when it leads one (and ``group``), else to it alone.
    Pids <= 1 are refused (``-1``: every process; ``0``: the caller's group; ``1``: init)."""
    if pid <= 1:
        raise ValueError(f"refusing to signal pid {pid}")
    if sys.platform == "win32":
        _taskkill(pid, force)
        return
    try:
        if group and os.getpgid(pid) == pid:  # only the leader's own group (started with a new session)
            _killpg(pid, force)
        else:
            os.kill(pid, signal.SIGKILL if force else signal.SIGTERM)
    except ProcessLookupError:
        pass


def _kill_tree_now(proc: subprocess.Popen, grace_s: float) -> None:
    if sys.platform == "win32":
        _taskkill(proc.pid, force=False)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            _taskkill(proc.pid, force=True)
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
    _killpg(pgid, force=False)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(pgid):
        proc.poll()  # reap the leader so that only live members count
        time.sleep(0.05)
    if _group_alive(pgid):
        _killpg(pgid, force=True)
        deadline = time.monotonic() + 5.0  # SIGKILL is delivered asynchronously: wait until none is left
        while time.monotonic() < deadline and _group_alive(pgid):
            proc.poll()
            time.sleep(0.02)
    proc.wait()


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` still runs (Windows: ``OpenProcess``; ``os.kill(pid, 0)`` would end it there)."""
    if pid <= 1:
        return False
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x00100000, False, pid)  # SYNCHRONIZE
        if not handle:
            return False
        try:
            return kernel32.WaitForSingleObject(handle, 0) == 0x00000102  # WAIT_TIMEOUT: still running
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _end_own_tree() -> None:
    """This job's whole tree: its own session's group when it was started as one (never a shell's job
    group), else this process alone."""
    if sys.platform == "win32":
        _taskkill(os.getpid(), force=True)
        os._exit(1)
    if os.getsid(0) == os.getpgrp():  # BackgroundJob's new session: the group is the job's alone
        _killpg(os.getpgrp(), force=False)
    else:
        os.kill(os.getpid(), signal.SIGTERM)


def watch_parent(interval_s: float = 1.0) -> threading.Thread | None:
    """When ``$MEDGRADE_PARENT_PID`` names a process (the Slicer that started this job), end this job's tree
    as soon as that process is gone (Slicer quit or crashed). A daemon thread; None when nothing to watch."""
    try:  # popped: what this job starts on purpose to outlive Slicer (a detached training run) does not watch
        parent = int(os.environ.pop(PARENT_ENV, "0"))
    except ValueError:
        return None
    if parent <= 1 or parent == os.getpid():
        return None

    def watch() -> None:
        while _pid_alive(parent):
            time.sleep(interval_s)
        _end_own_tree()

    thread = threading.Thread(target=watch, name="medgrade-parent-watch", daemon=True)
    thread.start()
    return thread
