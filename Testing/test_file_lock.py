"""The one portable file lock (MedGradeCoreLib.file_lock) between processes, and the rule that POSIX-only
calls (fcntl/msvcrt, fork, process groups) stay in the core's portable layer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from MedGradeCoreLib.file_lock import lock_file, locked, unlock_file

REPO = Path(__file__).resolve().parents[1]
HOLDER = ("import sys\nfrom MedGradeCoreLib.file_lock import lock_file\nf = open(sys.argv[1], 'a')\n"
          "assert lock_file(f)\nprint('held', flush=True)\nsys.stdin.readline()\n")


def _holder(path: Path) -> subprocess.Popen:
    """Another process holding ``path``'s lock until a line comes on its stdin."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen) -> None:
    assert proc.stdin is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(30) == 0


def test_a_lock_another_process_holds_is_refused_then_taken(tmp_path):
    path = tmp_path / ".x.lock"
    holder = _holder(path)
    with open(path, "a") as f:
        try:
            assert not lock_file(f)
        finally:
            _release(holder)
        assert lock_file(f)
        unlock_file(f)
        other = _holder(path)  # released: another process takes it
        _release(other)


def test_locked_waits_for_the_holder(tmp_path):
    path = tmp_path / ".gpu-queue.lock"
    holder = _holder(path)
    entered = threading.Event()

    def wait_for_it() -> None:
        with locked(path):
            entered.set()

    thread = threading.Thread(target=wait_for_it, daemon=True)
    thread.start()
    try:
        assert not entered.wait(1.0)  # held elsewhere: still waiting
    finally:
        _release(holder)
    assert entered.wait(30)
    thread.join(30)
    with open(path, "a") as f:  # and released after the block
        assert lock_file(f)


def test_the_windows_path_locks_one_fixed_byte_and_polls(tmp_path, monkeypatch):
    """msvcrt locks a byte range from the file position: every opener (an "a+" file starts at its end, after a
    holder's pid) must lock the same byte, and waiting polls (msvcrt's own blocking mode gives up after 10 s)."""
    calls: list[tuple[int, int]] = []

    class FakeMsvcrt:
        LK_UNLCK, LK_NBLCK = 0, 2
        busy = 2  # the first two tries find it held

        @classmethod
        def locking(cls, fd: int, mode: int, nbytes: int) -> None:
            calls.append((mode, os.lseek(fd, 0, os.SEEK_CUR)))
            assert nbytes == 1
            if mode == cls.LK_NBLCK and cls.busy:
                cls.busy -= 1
                raise OSError("held")

    path = tmp_path / ".x.lock"
    path.write_text("1234")  # the holder's pid
    monkeypatch.setitem(sys.modules, "msvcrt", FakeMsvcrt)
    monkeypatch.setattr(sys, "platform", "win32")
    with open(path, "a+") as f:
        assert not lock_file(f)
        assert lock_file(f, wait=True)
        unlock_file(f)
        assert f.tell() == 4  # the position is given back
    monkeypatch.undo()
    byte = 1 << 30
    assert calls == [(2, byte), (2, byte), (2, byte), (0, byte)]


def test_posix_only_calls_live_in_the_core_portable_layer():
    """fcntl/msvcrt only in file_lock.py; fork and process-group calls only in jobs.py and the CLI's forked
    command (forked_command.py, whose Windows path runs the command in process)."""
    layer = {"file_lock.py": re.compile(r"^\s*(import|from)\s+(fcntl|msvcrt)\b"),
             "jobs.py": re.compile(r"\bos\.(fork|setsid|killpg|setpgid|setpgrp|getpgid|getsid)\b|preexec_fn|"
                                   r"start_new_session")}
    core = "MedGradeCore/MedGradeCoreLib/"
    allowed = {"file_lock.py": {core + "file_lock.py"}, "jobs.py": {core + "jobs.py", core + "forked_command.py"}}
    sources = [p.relative_to(REPO).as_posix() for lib in REPO.glob("MedGrade*/MedGrade*") if lib.is_dir()
               for p in sorted(lib.rglob("*.py"))]
    assert len(sources) > 50
    hits = [f"{p}:{i}" for owner, pattern in layer.items() for p in sources if p not in allowed[owner]
            for i, line in enumerate((REPO / p).read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits
