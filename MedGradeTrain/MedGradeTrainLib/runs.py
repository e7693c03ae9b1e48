"""Runs on disk: the state of every run under a runs folder (survives a Slicer restart: it is read from
``run.json``, ``job.json`` and ``progress.jsonl``, never held in memory), detached local launches, and
cancelling a run wherever it runs (local process group, torchrun, Slurm job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError

from .job_record import JOB_FILE, write_job
from .runner.progress_log import read_progress


def runs_root(root: str | Path | None = None) -> Path:
    """``root``, else ``$MEDGRADE_RUNS``, else ``<cache>/runs``."""
    if root:
        return Path(root)
    if os.environ.get("MEDGRADE_RUNS"):
        return Path(os.environ["MEDGRADE_RUNS"])
    from MedGradeCoreLib.sample_data import cache_dir

    return cache_dir() / "runs"


def pid_alive(pid: Any) -> bool:
    """A live, non-zombie process has this pid (display only: signalling needs :func:`processes.verified`)."""
    from MedGradeCoreLib.processes import alive

    return alive(pid)


@dataclass
class RunState:
    run_dir: str
    run_id: str
    kind: str
    status: str  # running | done | failed | cancelled | stopped (resumable) | queued/pending (Slurm) | new
    launcher: str
    job_id: str = ""
    split: str = ""
    epoch: int | None = None
    step: int | None = None
    loss: float | None = None
    metric: float | None = None
    eta_s: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(value: Any, default: str) -> str:
    """A string field of a record file (anything else: ``default``)."""
    return value if isinstance(value, str) and value else default


def run_state(run_dir: str | Path) -> RunState:
    """The state of one run; a run whose files are malformed is reported as ``invalid``, never raised."""
    try:
        return _run_state(Path(run_dir))
    except Exception as exc:  # noqa: BLE001 - one bad run folder must not hide the others
        return RunState(str(run_dir), Path(run_dir).name, "", "invalid", "?",
                        message=f"unreadable run files ({type(exc).__name__}: {exc})"[:200])


def _run_state(run_dir: Path) -> RunState:
    run, job = _read(run_dir / "run.json"), _read(run_dir / JOB_FILE)
    status = _text(run.get("status"), "new")
    launcher = _text(job.get("launcher") or run.get("launcher"), "local")
    if launcher == "slurm" and job.get("job_id") and status not in ("done", "failed", "cancelled"):
        from .slurm import job_id_arg, job_state

        try:
            state = job_state(job_id_arg(job["job_id"], str(run_dir / JOB_FILE)))
        except InputError:
            raise
        except Exception:  # noqa: BLE001 - Slurm tools missing here: report what the files say
            state = "UNKNOWN"
        status = {"PENDING": "pending", "RUNNING": "running", "COMPLETED": status if status != "new" else "done",
                  "CANCELLED": "cancelled", "FAILED": "failed", "TIMEOUT": "stopped"}.get(state, status)
    elif status == "running" and not pid_alive(run.get("pid")) and not pid_alive(job.get("pid")):
        status = "stopped"  # killed (power cut, SIGKILL): resumable with `medgrade resume`
    elif status == "new" and pid_alive(job.get("pid")):
        status = "queued" if job.get("status") == "queued" else "starting"
    recs = read_progress(run_dir)
    last = next((r for r in reversed(recs) if r.get("event") in ("step", "epoch")), {})
    return RunState(str(run_dir), _text(run.get("run_id"), run_dir.name), _text(run.get("kind"), ""), status, launcher,
                    str(job.get("job_id", "")), last.get("split", ""), last.get("epoch"), last.get("step"),
                    last.get("loss"), last.get("metric"), last.get("eta_s"), recs[-1].get("message", "") if recs else "")


def list_runs(root: str | Path | None = None) -> list[RunState]:
    """Every run folder directly under ``root`` (or ``root`` itself when it is one), newest first."""
    root = runs_root(root)
    if not root.is_dir():
        return []
    dirs = [root] if (root / "run.json").is_file() or (root / JOB_FILE).is_file() else \
        [d for d in root.iterdir() if (d / "run.json").is_file() or (d / JOB_FILE).is_file()]
    dirs.sort(key=lambda d: max([(d / f).stat().st_mtime for f in ("run.json", JOB_FILE) if (d / f).exists()],
                                default=0.0), reverse=True)
    return [run_state(d) for d in dirs]


def check_not_running(run_dir: Path) -> None:
    """Refuse to launch into a run folder whose trainer holds its lock (before ``job.json`` is touched)."""
    from MedGradeCoreLib.outputs import OutputLock

    if run_dir.exists():
        with OutputLock(run_dir):  # held by a running trainer: InputError naming its pid
            pass


def launch_detached(args: list[str], run_dir: Path, n_gpus: int = 0, command: list[str] | None = None,
                    launcher: str = "local") -> int:
    """Start ``medgrade ARGS`` (or ``command``, e.g. its torchrun form) as its own session (it outlives the
    caller, e.g. Slicer), output in ``RUN/train.log``, pid in ``RUN/job.json``. With ``n_gpus`` it goes through
    :mod:`.gpu_queue`: it waits for a GPU no other running local job of the runs folder holds, then takes it."""
    from MedGradeCoreLib.jobs import medgrade_command, process_group_options

    check_not_running(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MEDGRADE_LAUNCHER=launcher, PYTHONUNBUFFERED="1")
    cmd = command or medgrade_command(args)
    if n_gpus:
        cmd = [sys.executable, "-m", "MedGradeTrainLib.gpu_queue", str(run_dir), str(n_gpus), "--", *args]
    write_job(run_dir, {"launcher": launcher, "submitted": time.time(), "args": args, "gpu": None,
                        "status": "queued" if n_gpus else "started"})
    log = open(run_dir / "train.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            **process_group_options())
    log.close()
    if not n_gpus:  # the queue records its own pid (a second writer here could lose its GPU claim)
        from MedGradeCoreLib.processes import identity

        write_job(run_dir, {"pid": proc.pid, "pgid": proc.pid, "process": identity(proc.pid)})
    return proc.pid


def free_gpu(root: Path, n_gpus: int) -> str | None:
    """A GPU index no running local job of ``root`` uses (None: all busy)."""
    busy = set()
    for d in (root.iterdir() if root.is_dir() else []):
        job = _read(d / JOB_FILE)
        if job.get("gpu") is not None and pid_alive(job.get("pid")):
            busy.add(str(job["gpu"]))
    return next((str(i) for i in range(n_gpus) if str(i) not in busy), None)


def cancel_run(run_dir: str | Path, grace_s: float = 10.0) -> str:
    """Stop a run: ``scancel`` its Slurm job, or SIGTERM its process group (SIGKILL after ``grace_s``).
    The run stays resumable from its last checkpoint."""
    run_dir = Path(run_dir)
    run, job = _read(run_dir / "run.json"), _read(run_dir / JOB_FILE)
    if not run and not job:
        raise InputError(run_dir, "not a run folder (no run.json or job.json)")
    if job.get("launcher") == "slurm" and job.get("job_id"):
        from .slurm import job_id_arg, scancel

        job_id = job_id_arg(job["job_id"], str(run_dir / JOB_FILE))
        scancel(job_id)
        how = f"Slurm job {job_id} cancelled"
    else:
        from MedGradeCoreLib.processes import stop_verified

        # only a process proven to be this run's (start time + command line recorded at launch) is signalled
        stopped, refused = stop_verified([rec.get("process") or {"pid": rec.get("pid")} for rec in (job, run)],
                                         grace_s)
        if not stopped:
            if refused:
                raise InputError(run_dir / JOB_FILE, "; ".join(refused))
            return "not running"
        how = f"process {', '.join(str(p) for p in stopped)} stopped"
    path = run_dir / "run.json"
    if path.is_file():
        from MedGradeCoreLib.atomic import atomic_write_text

        rec = _read(path)
        if rec.get("status") not in ("done", "failed"):
            rec.update(status="cancelled", updated=time.time())
            atomic_write_text(path, json.dumps(rec, indent=1))
    write_job(run_dir, {"cancelled": time.time()})
    return how
