"""Issue 18, items 1, 2, 19: ``cancel``/``jobs`` never signal a process that is not provably the run's, never
pass a value from ``job.json`` to a Slurm tool as an option, and one malformed run folder hides no other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from MedGradeCoreLib import processes
from MedGradeCoreLib.cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX decoys and shell stubs")


def _run_folder(root: Path, name: str, job: object, run: object | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "job.json").write_text(job if isinstance(job, str) else json.dumps(job))
    if run is not None:
        (d / "run.json").write_text(run if isinstance(run, str) else json.dumps(run))
    return d


@pytest.fixture
def decoy():
    """A real process of this user that no run owns (its own session, like a detached run)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_cancel_never_kills_a_foreign_pid_named_by_a_run_folder(tmp_path, decoy, capsys):
    run = _run_folder(tmp_path, "forged", {"launcher": "local", "pid": decoy.pid, "pgid": decoy.pid},
                      {"status": "running", "pid": decoy.pid})
    assert main(["cancel", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"pid {decoy.pid}" in err and "not signalled" in err
    time.sleep(0.3)
    assert decoy.poll() is None, "cancel killed a process the run folder merely named"
    assert json.loads((run / "run.json").read_text())["status"] == "running"


def test_cancel_checks_the_recorded_identity_not_just_the_pid(tmp_path, decoy):
    ident = processes.identity(decoy.pid)
    assert ident and processes.verified(ident) == decoy.pid
    for forged in ({**ident, "start": "0:0"}, {**ident, "cmdlines": ["python train.py"]}, {"pid": decoy.pid}):
        run = _run_folder(tmp_path, f"r{len(list(tmp_path.iterdir()))}",
                          {"launcher": "local", "pid": decoy.pid, "process": forged})
        assert main(["cancel", str(run)]) == 2
        assert decoy.poll() is None


def test_cancel_stops_the_process_whose_identity_it_recorded(tmp_path, decoy):
    run = _run_folder(tmp_path, "mine", {"launcher": "local", "pid": decoy.pid,
                                         "process": processes.identity(decoy.pid)}, {"status": "running"})
    assert main(["cancel", str(run)]) == 0
    assert decoy.wait(10) is not None
    assert json.loads((run / "run.json").read_text())["status"] == "cancelled"


@pytest.mark.parametrize("pid", [-1, 0, 1, True, "1", [5]])
def test_pids_up_to_one_are_never_signalled(tmp_path, monkeypatch, pid):
    sent = []
    monkeypatch.setattr(os, "kill", lambda p, s: sent.append(("kill", p, s)))
    monkeypatch.setattr(os, "killpg", lambda p, s: sent.append(("killpg", p, s)))
    run = _run_folder(tmp_path, "r", {"launcher": "local", "pid": pid, "pgid": pid,
                                      "process": {"pid": pid, "start": "x", "cmdlines": ["x"]}},
                      {"status": "running", "pid": pid})
    assert main(["cancel", str(run)]) in (0, 2)
    assert [s for s in sent if s[2] != 0] == [], f"signalled {sent}"


@pytest.fixture
def slurm_stubs(tmp_path, monkeypatch):
    """``scancel``/``squeue``/``scontrol`` stubs on PATH that record their arguments."""
    bin_dir, log = tmp_path / "bin", tmp_path / "slurm-args.log"
    bin_dir.mkdir()
    for tool in ("scancel", "squeue", "scontrol", "sbatch"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n'
                                    + ('echo RUNNING\n' if tool == "squeue" else "exit 0\n"))
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.mark.parametrize("job_id", ["--user=root", "-u root", "1234 --user=root", "12;34", "0x10", "1_-5"])
def test_hostile_slurm_job_ids_reach_no_slurm_tool(tmp_path, slurm_stubs, capsys, job_id):
    run = _run_folder(tmp_path / "runs", "r", {"launcher": "slurm", "job_id": job_id}, {"status": "running"})
    assert main(["cancel", str(run)]) == 2
    assert main(["jobs", str(tmp_path / "runs")]) == 0
    calls = slurm_stubs.read_text() if slurm_stubs.exists() else ""
    assert "--user" not in calls and "-u root" not in calls, calls
    if job_id:
        assert "invalid Slurm job id" in capsys.readouterr().err


def test_valid_slurm_job_ids_go_after_double_dash(tmp_path, slurm_stubs):
    run = _run_folder(tmp_path / "runs", "r", {"launcher": "slurm", "job_id": "1234_5"}, {"status": "running"})
    assert main(["jobs", str(tmp_path / "runs")]) == 0
    assert main(["cancel", str(run)]) == 0
    calls = slurm_stubs.read_text().splitlines()
    assert "scancel -- 1234_5" in calls
    assert "squeue -h -o %T --jobs=1234_5" in calls


def test_one_malformed_run_folder_hides_no_other(tmp_path, capsys):
    runs = tmp_path / "runs"
    _run_folder(runs, "good", {"launcher": "local"}, {"status": "done", "run_id": "good-run", "kind": "toy"})
    _run_folder(runs, "list", "[1, 2]", "[3]")
    _run_folder(runs, "badpid", {"launcher": "local", "pid": "abc", "pgid": [1]}, {"status": "running", "pid": {}})
    _run_folder(runs, "badjson", "{not json", '{"status": 5, "run_id": ["x"]}')
    _run_folder(runs, "slurm", {"launcher": "slurm", "job_id": {"a": 1}}, {"status": "running"})
    assert main(["jobs", str(runs), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 5
    assert {"good-run"} <= {r["run_id"] for r in rows}
    assert main(["jobs", str(runs)]) == 0
