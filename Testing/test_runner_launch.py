"""Launching runs: a real two-process DDP run through torchrun (gloo, CPU); detached local runs listed by
`medgrade jobs` and stopped by `medgrade cancel`; Slurm batch scripts for hostile names (bash -n, no
expansion); and, on a real single-node cluster where Debian's slurm-wlm can be started here (else through
stand-in Slurm commands on PATH), a training job submitted, followed and cancelled, and a two-task job array
with its gather job."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from MedGradeCoreLib.cli import main as medgrade
from MedGradeTrainLib.runner.config import load_config
from MedGradeTrainLib.runner.progress_log import read_progress

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "configs" / "tiny-toy.yaml"
HOSTILE = "run 'q' \"dq\" $(touch PWNED) `touch PWNED2` ;x\nnl"


def _toy(tmp_path: Path, **kind) -> Path:
    cfg = load_config(TOY)
    cfg["kind"].update(kind)
    path = tmp_path / "toy config.json"
    path.write_text(json.dumps(cfg))
    return path


def _wait(pred, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_torchrun_two_processes_ddp(tmp_path):
    run = tmp_path / "ddp"
    rc = subprocess.run([sys.executable, "-m", "MedGradeCoreLib.cli", "train", "--config", str(TOY), "--output",
                         str(run), "--launcher", "torchrun", "--gpus", "2"], capture_output=True, text=True,
                        timeout=300)
    assert rc.returncode == 0, rc.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["device"] == "cpu"
    recs = read_progress(run)  # one log, from rank 0 only: every line once
    assert [r["seq"] for r in recs] == list(range(len(recs))) and recs[-1]["event"] == "done"
    steps = [r["step"] for r in recs if r["event"] == "step"]
    assert steps == list(range(1, len(steps) + 1))
    split = json.loads((run / "split.json").read_text())
    for s in split["splits"]:  # each rank trains on half (DistributedSampler pads an odd count by one);
        rows = [json.loads(x) for x in (run / "splits" / s["name"] / "metrics.jsonl").read_text().splitlines()]
        both = 2 * math.ceil(len(s["train"]) / 2)  # the epoch row counts both ranks' samples (all-reduced)
        assert [r["samples"] for r in rows] == [both] * len(rows)
        assert len(list((run / "splits" / s["name"] / "checkpoints").glob("step-*.pt"))) <= 2
    assert json.loads((run / "run.json").read_text())["world_size"] == 2


def test_detached_local_run_jobs_cancel_and_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDGRADE_RUNS", str(tmp_path / "runs"))
    run = tmp_path / "runs" / "slow run"
    assert medgrade(["train", "--config", str(_toy(tmp_path, delay_s=0.3)), "--output", str(run), "--detach"]) == 0
    _wait(lambda: any(r["event"] == "step" for r in read_progress(run)), 120, "the first step")
    capsys.readouterr()
    assert medgrade(["jobs", "--json"]) == 0
    state = json.loads(capsys.readouterr().out.splitlines()[0])
    assert state["status"] == "running" and state["run_dir"] == str(run) and state["step"] >= 1
    assert medgrade(["cancel", str(run)]) == 0
    assert json.loads((run / "run.json").read_text())["status"] == "cancelled"
    assert read_progress(run)[-1]["event"] == "error"  # the runner saw SIGTERM and said so
    cfg = json.loads((run / "config.json").read_text())
    cfg["kind"]["delay_s"] = 0.0  # finish quickly (the delay is a test knob of the toy kind, not its maths)
    (run / "config.json").write_text(json.dumps(cfg))
    assert medgrade(["resume", str(run)]) == 0
    capsys.readouterr()
    assert medgrade(["jobs", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.startswith("done")


def test_slurm_scripts_quote_hostile_names(tmp_path):
    from MedGradeTrainLib.cohort_jobs import array_script
    from MedGradeTrainLib.launchers import runner_args, slurm_train_script

    run = tmp_path / HOSTILE
    case = tmp_path / f"case {HOSTILE}"
    args = runner_args(tmp_path / f"cfg {HOSTILE}.json", run, HOSTILE)
    scripts = {"2 nodes x 2 GPUs": slurm_train_script(args, HOSTILE, gpus=2, nodes=2, partition="gpu$(x)\nq"),
               "1 CPU node": slurm_train_script(args, HOSTILE, gpus=0, nodes=1),
               "job array": array_script("segment", [["segment", str(case), "--output", str(run)]] * 2, HOSTILE)}
    stubs = "scontrol() { echo node1; }\nsrun() { \"$@\"; }\n"  # no cluster: only the shell's reading is tested
    for what, script in scripts.items():
        path = tmp_path / "job.sh"
        path.write_text(script)
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0, what
        for line in script.splitlines():
            if line.startswith("#SBATCH"):  # Slurm parses these itself: safe tokens only
                assert all(c not in line.split("=", 1)[1] for c in " '\"$`;()"), line
        # run the script with the Python call replaced by printf: the arguments arrive verbatim, nothing expands
        body = stubs + script.replace(shlex.quote(sys.executable), "printf '%s\\0'")
        out = subprocess.run(["bash", "-c", body], capture_output=True, cwd=tmp_path,
                             env={"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": "1", "SLURM_JOB_NODELIST": "node1"})
        assert out.returncode == 0, (what, out.stderr)
        words = out.stdout.split(b"\0")[:-1]
        if what == "job array":
            assert words[-4:] == [b"segment", str(case).encode(), b"--output", str(run).encode()]
        else:
            assert words[-4:] == [b"--output", str(run).encode(), b"--run-name", HOSTILE.encode()], what
            assert str(tmp_path / f"cfg {HOSTILE}.json").encode() in words
    assert not list(tmp_path.glob("PWNED*"))


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A real single-node Slurm where it can start (root, slurm-wlm installed), else the stand-in commands of
    fake_slurm.py on PATH: the Slurm code of MedGrade runs either way."""
    sys.path.insert(0, str(Path(__file__).parent))
    import fake_slurm
    import slurm_cluster

    folder = tmp_path_factory.mktemp("slurm")
    env, why = slurm_cluster.start(folder)
    if env is not None:
        try:
            yield env
        finally:
            slurm_cluster.stop(folder)
        return
    print(f"real Slurm cannot start here ({why}): stand-in sbatch/squeue/scontrol/scancel on PATH")
    try:
        yield fake_slurm.install(folder)
    finally:
        fake_slurm.stop(folder)


def test_slurm_train_follow_cancel_and_job_array(slurm, tmp_path, monkeypatch, capsys):
    for k, v in slurm.items():
        monkeypatch.setenv(k, v)
    # a training run with a hostile folder name: submitted, followed with squeue/scontrol, cancelled
    run = tmp_path / HOSTILE
    assert medgrade(["train", "--config", str(_toy(tmp_path, delay_s=0.3)), "--output", str(run),
                     "--launcher", "slurm"]) == 0
    job = json.loads((run / "job.json").read_text())
    assert job["launcher"] == "slurm" and job["job_id"].isdigit()
    _wait(lambda: any(r["event"] == "step" for r in read_progress(run)), 120, "the Slurm job's first step")
    from MedGradeTrainLib.runs import run_state

    from MedGradeTrainLib.slurm import job_state

    assert run_state(run).status == "running" and job_state(job["job_id"]) == "RUNNING"
    assert medgrade(["cancel", str(run)]) == 0
    _wait(lambda: job_state(job["job_id"]) == "CANCELLED", 60, "scancel")  # Slurm keeps it MinJobAge (300 s)
    assert run_state(run).status == "cancelled"
    _wait(lambda: read_progress(run)[-1]["event"] == "error", 60, "the runner to stop on SIGTERM")
    assert not list(tmp_path.glob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    # a two-task job array over a cohort (one case per task) and its gather job
    from MedGradeCoreLib.io.lgg_tcga import sample_lgg_cohort

    lgg = sample_lgg_cohort()
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for name in ("TCGA_CS_4941_19960909", "TCGA_CS_4942_19970222"):
        (cohort / name).symlink_to(lgg / name)
    out = tmp_path / "pre"
    assert medgrade(["preprocess", str(cohort), "--output", str(out), "--no-skull-strip", "--sequences", "flair",
                     "--reference", "flair", "--slurm"]) == 0
    jobs = json.loads((out / "slurm-job.json").read_text())
    _wait(lambda: (out / "gather.json").is_file(), 240, "the array and gather jobs")
    gathered = json.loads((out / "gather.json").read_text())
    assert gathered["cases"] == 2 and gathered["failed"] == [], (gathered, [p.read_text()[-500:] for p in out.glob("*.log")])
    assert len(list(out.glob("slurm-*_*.log"))) == 2 and jobs["array_job"] != jobs["gather_job"]


def _waits_for_lock(pid: int) -> bool:
    """``pid`` is blocked on a flock (a ``->`` line of /proc/locks)."""
    return any(w[1:2] == ["->"] and w[5:6] == [str(pid)] for w in map(str.split, open("/proc/locks")))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/locks")
def test_local_gpu_queue_waits_for_a_free_gpu(tmp_path):
    """One local job per GPU: with the only GPU held by a running job, a detached run waits (queued), then
    takes GPU 0 when that job ends (CUDA_VISIBLE_DEVICES=0; this machine has no GPU, so it trains on CPU).
    The test holds the queue's lock, so each poll of the queue is seen waiting for it: the run is checked
    after two polls, however slow the machine, not after some seconds."""
    import os
    import signal

    from MedGradeCoreLib.file_lock import lock_file, unlock_file
    from MedGradeTrainLib.launchers import write_job
    from MedGradeTrainLib.runs import cancel_run, launch_detached, pid_alive, run_state

    runs = tmp_path / "runs"
    busy = runs / "busy"
    write_job(busy, {"launcher": "local", "pid": os.getpid(), "gpu": "0"})  # this test process holds GPU 0
    run = runs / "queued"
    with open(runs / ".gpu-queue.lock", "a") as lock:
        lock_file(lock, wait=True)  # the queue's own lock (MedGradeCoreLib.file_lock)
        pid = launch_detached(["train", "--config", str(_toy(tmp_path, delay_s=0.3)), "--output", str(run)], run,
                              n_gpus=1)
        try:
            for poll in (1, 2):  # poll 1 found GPU 0 held (else poll 2 would never come)
                _wait(lambda: _waits_for_lock(pid), 120, f"poll {poll} of the queue")
                assert run_state(run).status == "queued" and json.loads((run / "job.json").read_text())["gpu"] is None
                if poll == 2:
                    write_job(busy, {"pid": 0})  # the other job ended
                unlock_file(lock)
                _wait(lambda: not _waits_for_lock(pid), 60, f"poll {poll} to take the lock")
                lock_file(lock, wait=True)  # after the queue's claim (it holds the lock while it claims)
            unlock_file(lock)
            _wait(lambda: json.loads((run / "job.json").read_text())["gpu"] == "0", 60, "the queued run to take GPU 0")
            _wait(lambda: run_state(run).status == "running", 120, "the run to start on it")
        finally:
            cancel_run(run)
            if pid_alive(pid):  # cancel refused (the run had not recorded itself yet): never leave it running
                os.killpg(pid, signal.SIGKILL)
