"""A panel's job never outlives Slicer and never blocks it: cancel returns at once (the tree still ends), every
running job is cancelled on quit, and a job whose starter died (Slicer crashed) ends itself. One command builder."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from MedGradeCoreLib import jobs
from MedGradeCoreLib.jobs import BackgroundJob

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups (Windows: taskkill /T)")

REPO = Path(__file__).resolve().parents[1]
STUBBORN = """import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends it: the kill takes the whole grace time
print("ready", flush=True)
time.sleep(120)
"""


def _wait_ready(job: BackgroundJob, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and "ready" not in job.log:
        job.poll()
        time.sleep(0.05)
    assert "ready" in job.log


def _gone(job: BackgroundJob, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not job.running and not jobs._group_alive(job._proc.pid):
            return True
        time.sleep(0.05)
    return False


def test_cancel_without_waiting_returns_at_once_and_still_ends_the_tree(tmp_path):
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    job = BackgroundJob([]).start([sys.executable, str(script)])
    _wait_ready(job)
    t0 = time.monotonic()
    job.cancel(grace_s=1.5, wait=False)
    assert time.monotonic() - t0 < 0.3, "cancel blocked the caller (the GUI thread) during the grace time"
    assert job.cancelled and job.running  # still ignoring SIGTERM: the kill goes on in the background
    assert _gone(job, 10.0), "the stubborn process survived the asynchronous cancel"


def test_cancel_all_ends_every_job_this_process_started(tmp_path):
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    started = [BackgroundJob([]).start([sys.executable, str(script)]) for _ in range(3)]
    for job in started:
        _wait_ready(job)
    assert jobs.cancel_all(grace_s=0.5) >= 3
    assert all(_gone(job, 10.0) for job in started)


def test_a_job_whose_starter_died_ends_itself(tmp_path):
    """The real CLI on a long toy training: its starter (standing in for Slicer) is killed; the job follows."""
    config = tmp_path / "long-toy.json"
    config.write_text(json.dumps({"kind": {"name": "toy-regression", "size": 16}, "seed": 0,
                                  "split": {"mode": "none"}, "train": {"epochs": 100000, "batch_size": 4},
                                  "register": False}))
    starter = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    run = tmp_path / "run"
    job = BackgroundJob(["train", "--config", str(config), "--output", str(run)], parent_pid=starter.pid).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (run / "progress.jsonl").is_file():
        time.sleep(0.1)
    assert (run / "progress.jsonl").is_file() and job.running, "\n".join(job.log + [str(job.poll())])
    starter.kill()
    starter.wait()
    assert _gone(job, 15.0), "the job kept training after the process that started it died"


def test_one_command_builder():
    from MedGradeTrainLib import launchers

    args = ["segment", "case", "--model", "m"]
    assert jobs.medgrade_command(args, "py") == ["py", "-m", jobs.CLI_MODULE, *args]
    assert BackgroundJob(args, python="py").command() == jobs.medgrade_command([*args, "--progress-json"], "py")
    assert launchers.medgrade_command is jobs.medgrade_command
    assert launchers.torchrun_command(args, 2)[-len(args) - 2:] == ["-m", jobs.CLI_MODULE, *args]


def test_one_portable_tree_signal_refuses_pids_that_name_many_processes():
    import pytest as _pytest

    from MedGradeCoreLib import processes

    for pid in (-1, 0, 1):
        with _pytest.raises(ValueError, match="refusing"):
            jobs.signal_tree(pid)
        with _pytest.raises(ValueError, match="refusing"):
            processes._signal(pid, 15, group=True)  # the record-verified stop goes through the same layer


def test_signal_tree_ends_a_group_it_leads(tmp_path):
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    job = BackgroundJob([]).start([sys.executable, str(script)])
    _wait_ready(job)
    jobs.signal_tree(job._proc.pid, force=True)
    assert _gone(job, 10.0)
