"""How a training run is launched: in this process (``local``), as ``torchrun`` processes with
DistributedDataParallel, or on a cluster through a Slurm batch script (``sbatch``). No Qt; the
MedGradeTrain panel and the ``medgrade train``/``resume`` commands use it.

Every user value (run folder, config path, names) reaches a shell only through ``shlex.quote``; values
that Slurm itself parses in ``#SBATCH`` lines are reduced to a safe character set, and the submission
passes the rest as ``sbatch`` arguments (a list, no shell)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# the one command builder, tree kill and new process group
from MedGradeCoreLib.jobs import CLI_MODULE, kill_tree, medgrade_command, process_group_options

from .job_record import JOB_FILE, write_job  # noqa: F401  (re-exported)
from .slurm import batch_header, sbatch


LAUNCHERS = ("local", "torchrun", "slurm", "flower")  # flower: federated (MedGradeTrainLib.federated)




def resume_args(run_dir: str | Path) -> list[str]:
    """``resume RUN`` (the local launcher, inside the job)."""
    return ["resume", str(run_dir)]


def runner_args(config: str | Path | None, run_dir: str | Path, run_name: str | None = None,
                resume: bool = False) -> list[str]:
    """``train --config C --output R [--run-name N]`` (or :func:`resume_args`), the local launcher."""
    if resume:
        return resume_args(run_dir)
    args = ["train", "--config", str(config), "--output", str(run_dir)]
    return args + (["--run-name", str(run_name)] if run_name else [])


def torchrun_command(args: list[str], gpus: int, nodes: int = 1, endpoint: str | None = None) -> list[str]:
    """``torchrun`` running ``python -m MedGradeCoreLib.cli ARGS`` on ``max(gpus, 1)`` processes per node
    (CPU processes use gloo)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={max(gpus, 1)}"]
    if nodes > 1:
        cmd += [f"--nnodes={nodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint or '$MASTER_ADDR:29500'}"]
    else:
        cmd += ["--standalone"]
    return cmd + ["-m", CLI_MODULE, *args]


def slurm_train_script(args: list[str], job_name: str, gpus: int = 1, nodes: int = 1,
                       partition: str | None = None, time_limit: str = "24:00:00", cpus: int = 0,
                       env: dict[str, str] | None = None) -> str:
    """A batch script for ``medgrade ARGS`` (torchrun over ``nodes`` x ``gpus`` when more than one)."""
    lines = batch_header(job_name, [f"--nodes={int(nodes)}", "--ntasks-per-node=1"], time_limit, "24:00:00", gpus,
                         partition, cpus, env)
    if nodes > 1 or gpus > 1:
        lines.append('MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)')
        cmd = torchrun_command(args, gpus, nodes, endpoint="MASTER")
        # only the endpoint element gets the shell variable; every other element (user paths too) is quoted
        endpoint = cmd.index("--rdzv-endpoint=MASTER")
        quoted = [shlex.quote(a) if i != endpoint else '--rdzv-endpoint="$MASTER_ADDR:29500"' for i, a in enumerate(cmd)]
        lines.append("srun " + " ".join(quoted))
    else:
        lines.append(" ".join(shlex.quote(a) for a in medgrade_command(args)))
    return "\n".join(lines) + "\n"


def _env_for_job() -> dict[str, str]:
    keep = ("PYTHONPATH", "MEDGRADE_MODELS", "MEDGRADE_CACHE", "MEDGRADE_SAMPLE_MIRROR")
    return {k: os.environ[k] for k in keep if os.environ.get(k)}


def launch_training(args, resume: bool = False) -> int:
    """``medgrade train|resume`` with ``--launcher torchrun|slurm`` or ``--print-script``."""
    if args.launcher == "flower":
        from .federated.deploy import launch_from_args

        return launch_from_args(args, resume)
    run_dir = Path(args.output)
    # absolute paths: the job may start in another folder (a Slurm node's, torchrun's)
    margs = runner_args(Path(args.config).resolve() if args.config else None, run_dir.resolve(), args.run_name,
                        resume)
    name = args.run_name or run_dir.name
    if args.launcher == "slurm":
        script = slurm_train_script(margs, name, args.gpus, args.nodes, args.partition, args.time,
                                    getattr(args, "cpus", 0), env=_env_for_job())
        if args.print_script:
            print(script, end="")
            return 0
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / ("slurm-resume.sh" if resume else "slurm-train.sh")
        path.write_text(script)
        job_id = sbatch(path, name, run_dir / "slurm-%j.log")
        write_job(run_dir, {"launcher": "slurm", "job_id": job_id, "script": str(path), "submitted": time.time(),
                            "name": name})
        print(f"submitted Slurm job {job_id} for {run_dir}")
        return 0
    if args.launcher in ("local", "torchrun") and getattr(args, "detach", False) and not args.print_script:
        from .runs import launch_detached

        n_gpus = 0
        if args.gpus and args.launcher == "local":
            import torch

            n_gpus = torch.cuda.device_count()
        torchrun = torchrun_command(margs, args.gpus) if args.launcher == "torchrun" else None
        pid = launch_detached(margs, run_dir, n_gpus, torchrun, args.launcher)
        how = f"queued for one of {n_gpus} GPUs" if n_gpus else "started"
        print(f"run {run_dir} {how} in the background (pid {pid}); follow it with 'medgrade jobs {run_dir}'")
        return 0
    cmd = torchrun_command(margs, args.gpus) if args.launcher == "torchrun" else medgrade_command(margs)
    if args.print_script:
        print(" ".join(shlex.quote(a) for a in cmd))
        return 0
    from .runs import check_not_running

    check_not_running(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MEDGRADE_LAUNCHER=args.launcher)
    proc = subprocess.Popen(cmd, env=env, **process_group_options())  # `medgrade cancel` stops the whole group
    from MedGradeCoreLib.processes import identity

    write_job(run_dir, {"launcher": args.launcher, "pid": proc.pid, "pgid": proc.pid, "command": cmd,
                        "process": identity(proc.pid),
                        "submitted": time.time(), "name": name})
    try:
        return proc.wait()
    except KeyboardInterrupt:
        kill_tree(proc)
        return 130
