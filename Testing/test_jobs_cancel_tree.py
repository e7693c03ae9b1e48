"""Cancel ends the whole process tree: a launcher that starts the real interpreter as a child (as PythonSlicer
does), the child writing continuously; after cancel nothing is alive and nothing keeps writing."""

from __future__ import annotations

import os
import sys
import time

import pytest

from MedGradeCoreLib.jobs import BackgroundJob

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups (Windows: taskkill /T)")

LAUNCHER = """import subprocess, sys
# like PythonSlicer: set up the environment, start the real interpreter as a child, wait for it
child = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]])
print("launcher started child", child.pid, flush=True)
sys.exit(child.wait())
"""
WORKER = """import os, sys, time, signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stubborn worker: only SIGKILL ends it
open(sys.argv[1] + ".pid", "w").write(str(os.getpid()))
print("MEDGRADE-PROGRESS {\\"fraction\\": 0.5, \\"message\\": \\"caf\\u00e9 \\u00e0 50%\\"}", flush=True)
sys.stdout.buffer.write(b"bad byte \\xff here\\n"); sys.stdout.flush()
with open(sys.argv[1], "a") as f:
    while True:
        f.write("x"); f.flush(); time.sleep(0.02)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_cancel_kills_launcher_and_child_and_nothing_keeps_writing(tmp_path):
    launcher, worker, out = tmp_path / "launcher.py", tmp_path / "worker.py", tmp_path / "work.txt"
    launcher.write_text(LAUNCHER)
    worker.write_text(WORKER)
    job = BackgroundJob([]).start([sys.executable, str(launcher), str(worker), str(out)])
    pid_file = tmp_path / "work.txt.pid"
    deadline = time.time() + 30
    while time.time() < deadline and not (pid_file.is_file() and out.is_file() and out.stat().st_size > 5):
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child) and job.running
    time.sleep(0.3)
    job.poll()
    assert job.last_fraction == 0.5
    assert any("bad byte \ufffd here" in line for line in job.log)  # UTF-8 with replacement, no crash
    job.cancel(grace_s=1.0)
    assert job.cancelled and not job.running
    assert not _alive(child), "the interpreter started by the launcher survived cancel"
    size = out.stat().st_size
    time.sleep(0.5)
    assert out.stat().st_size == size, "something kept writing after cancel"
