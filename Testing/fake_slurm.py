"""Stand-ins for Slurm's ``sbatch``, ``squeue``, ``scontrol`` and ``scancel`` where a real single-node cluster
cannot start (slurm-wlm not installed, or not root): :func:`install` writes the four commands into
``FOLDER/bin`` and returns the environment to use (that folder first on PATH).

They keep the parts of Slurm's behaviour MedGrade relies on: ``sbatch --parsable`` prints the job id;
``#SBATCH --array=0-N`` runs one task per index with ``SLURM_ARRAY_TASK_ID``; ``--output`` expands ``%j``,
``%A`` and ``%a``; ``--dependency=afterany:ID`` waits for every task of ID to end; ``squeue -h -j ID -o %T``
lists the pending and running tasks' states; ``scontrol -o show job ID`` keeps each task's ``JobState=`` after
it ended, ``scontrol show hostnames`` names this host; ``scancel ID`` marks every task CANCELLED and sends
SIGTERM to the running ones (SIGKILL 30 s later, Slurm's default KillWait). Jobs run here, each task in its own
process group, one after the other. Run as ``python fake_slurm.py COMMAND ARGS`` (what the wrappers do)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

FINAL = ("COMPLETED", "FAILED", "CANCELLED")
KILL_WAIT_S = 30.0


def install(folder: Path) -> dict[str, str]:
    """Write ``FOLDER/bin/{sbatch,squeue,scontrol,scancel}``; the environment that puts them first on PATH."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (folder / "jobs").mkdir(exist_ok=True)
    for tool in ("sbatch", "squeue", "scontrol", "scancel"):
        path = bin_dir / tool
        path.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{Path(__file__).resolve()}' {tool} \"$@\"\n")
        path.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", FAKE_SLURM_DIR=str(folder))


def stop(folder: Path) -> None:
    """Kill whatever is still running (tasks and their supervisors)."""
    for job in sorted((folder / "jobs").glob("*")):
        for name in ("supervisor.pid", *(p.name for p in job.glob("task-*.pgid"))):
            try:
                pid = int((job / name).read_text())
                os.killpg(pid, signal.SIGKILL) if name.endswith(".pgid") else os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass


def _jobs() -> Path:
    return Path(os.environ["FAKE_SLURM_DIR"]) / "jobs"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _state(job: Path, task: int) -> str:
    try:
        return (job / f"task-{task}.state").read_text()
    except OSError:
        return "PENDING"


def _tasks(job: Path) -> list[int]:
    return json.loads((job / "job.json").read_text())["tasks"]


def sbatch(argv: list[str]) -> int:
    opts = dict(a[2:].split("=", 1) for a in argv[:-1] if a.startswith("--") and "=" in a)
    script = Path(argv[-1]).resolve()
    header = [ln[len("#SBATCH "):].strip() for ln in script.read_text().splitlines() if ln.startswith("#SBATCH ")]
    array = next((h.split("=", 1)[1] for h in header if h.startswith("--array=")), None)
    if array is not None and not re.fullmatch(r"\d+-\d+", array):
        print(f"sbatch: error: unsupported --array={array}", file=sys.stderr)
        return 1
    tasks = list(range(int(array.split("-")[0]), int(array.split("-")[1]) + 1)) if array else [0]
    deps = [d for d in opts.get("dependency", "").removeprefix("afterany:").split(":") if d]
    for d in deps:
        if not (_jobs() / d).is_dir():
            print(f"sbatch: error: Batch job submission failed: Job dependency problem ({d})", file=sys.stderr)
            return 1
    n = 1000
    while True:  # the next free id (mkdir is atomic)
        n += 1
        try:
            (_jobs() / str(n)).mkdir()
            break
        except FileExistsError:
            continue
    job = _jobs() / str(n)
    (job / "job.json").write_text(json.dumps({"script": str(script), "name": opts.get("job-name", script.name),
                                              "output": opts.get("output", "slurm-%j.out"), "deps": deps,
                                              "array": array is not None, "tasks": tasks, "cwd": os.getcwd()}))
    sup = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_run", str(n)], start_new_session=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (job / "supervisor.pid").write_text(str(sup.pid))
    print(n if "--parsable" in argv else f"Submitted batch job {n}")
    return 0


def _run(job_id: str) -> int:
    """The supervisor of one job: wait for its dependencies, then run its tasks."""
    job = _jobs() / job_id
    spec = json.loads((job / "job.json").read_text())
    while any(_state(_jobs() / d, t) not in FINAL for d in spec["deps"] for t in _tasks(_jobs() / d)):
        time.sleep(0.2)
    host = socket.gethostname()
    for t in spec["tasks"]:
        if _state(job, t) == "CANCELLED":
            continue
        task_id = f"{job_id}_{t}" if spec["array"] else job_id
        log = (spec["output"].replace("%A", job_id).replace("%a", str(t)).replace("%j", task_id))
        env = dict(os.environ, SLURM_JOB_ID=task_id, SLURM_JOB_NAME=spec["name"], SLURM_JOB_NODELIST=host,
                   SLURM_SUBMIT_DIR=spec["cwd"])
        if spec["array"]:
            env.update(SLURM_ARRAY_JOB_ID=job_id, SLURM_ARRAY_TASK_ID=str(t))
        with open(Path(spec["cwd"], log), "ab") as out:
            proc = subprocess.Popen(["bash", spec["script"]], cwd=spec["cwd"], env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _write(job / f"task-{t}.pgid", str(proc.pid))
        _write(job / f"task-{t}.state", "RUNNING")
        if (job / "cancelled").exists():  # scancel came between the start and the state
            _write(job / f"task-{t}.state", "CANCELLED")
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = None
        while proc.poll() is None:
            if deadline is None and (job / "cancelled").exists():
                deadline = time.monotonic() + KILL_WAIT_S
            if deadline is not None and time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.1)
        if _state(job, t) != "CANCELLED":
            _write(job / f"task-{t}.state", "COMPLETED" if proc.returncode == 0 else "FAILED")
    return 0


def _job_or_error(job_id: str, tool: str) -> Path | None:
    job = _jobs() / job_id.split("_")[0]
    if not re.fullmatch(r"[0-9]+(_[0-9]+)?", job_id) or not (job / "job.json").is_file():
        print(f"{tool}: error: Invalid job id specified", file=sys.stderr)
        return None
    return job


def _parser(prog: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, add_help=False, allow_abbrev=False)


def squeue(argv: list[str]) -> int:
    p = _parser("squeue")
    p.add_argument("-h", "--noheader", action="store_true")
    p.add_argument("-j", "--jobs", required=True)
    p.add_argument("-o", "--format", default="%T")
    args = p.parse_args(argv)
    if args.format != "%T":
        print("squeue stand-in: only the %T format", file=sys.stderr)
        return 2
    for job_id in args.jobs.split(","):
        job = _job_or_error(job_id, "squeue")
        if job is None:
            return 1
        if not args.noheader:
            print("STATE")
        for t in _tasks(job):
            if _state(job, t) not in FINAL:
                print(_state(job, t))
    return 0


def scontrol(argv: list[str]) -> int:
    p = _parser("scontrol")
    p.add_argument("-o", "--oneliner", action="store_true")
    p.add_argument("words", nargs="+")
    args = p.parse_args(argv)
    if args.words[:2] == ["show", "hostnames"]:
        print(socket.gethostname())
        return 0
    if args.words[:2] != ["show", "job"] or len(args.words) != 3 or not args.oneliner:
        print("scontrol stand-in: only `-o show job ID` and `show hostnames`", file=sys.stderr)
        return 2
    job = _job_or_error(args.words[2], "scontrol")
    if job is None:
        return 1
    spec = json.loads((job / "job.json").read_text())
    for t in spec["tasks"]:
        task = f" ArrayJobId={job.name} ArrayTaskId={t}" if spec["array"] else ""
        print(f"JobId={job.name}{task} JobName={spec['name']} JobState={_state(job, t)}")
    return 0


def scancel(argv: list[str]) -> int:
    p = _parser("scancel")
    p.add_argument("ids", nargs="+")
    for job_id in p.parse_args(argv).ids:
        job = _job_or_error(job_id, "scancel")
        if job is None:
            return 1
        (job / "cancelled").touch()
        for t in _tasks(job):
            if _state(job, t) in FINAL:
                continue
            _write(job / f"task-{t}.state", "CANCELLED")
            try:
                os.killpg(int((job / f"task-{t}.pgid").read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass  # not started yet: it never will
    return 0


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    sys.exit(_run(rest[0]) if command == "_run" else
             {"sbatch": sbatch, "squeue": squeue, "scontrol": scontrol, "scancel": scancel}[command](rest))
