"""How a training run is launched: here in one process, here on several GPUs (torchrun), or on a
cluster through a Slurm batch script. No Qt; the MedGradeTrain panel and scripts use it."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from MedGradeSegmentLib.jobs import BackgroundJob

TRAIN_COMMANDS = {"segmentation": "train-seg", "grading": "train-grade"}
LAUNCHERS = ("local", "torchrun", "slurm")


def training_args(kind: str, config: str | Path, cohort: str | Path, output: str | Path,
                  labels: str | Path | None = None, device: str = "auto") -> list[str]:
    """``medgrade`` arguments of a training run (``train-seg`` or ``train-grade``)."""
    if kind not in TRAIN_COMMANDS:
        raise ValueError(f"unknown model kind {kind!r}; choose {', '.join(TRAIN_COMMANDS)}")
    args = [TRAIN_COMMANDS[kind], "--config", str(config), "--cohort", str(cohort), "--output", str(output),
            "--device", device]
    return args + (["--labels", str(labels)] if labels else [])


def torchrun_command(python: str, medgrade_args: list[str], nproc: int) -> list[str]:
    """One node, ``nproc`` processes (one per GPU) with ``torch.distributed.run``."""
    return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={int(nproc)}",
            "-m", "MedGradeTrainLib.cli", *medgrade_args]


def slurm_script(medgrade_args: list[str], gpus: int, job_name: str, log_dir: str | Path,
                 python: str = "python", hours: int = 24, cpus_per_gpu: int = 8) -> str:
    """An ``sbatch`` script running the same command with torchrun on one node with ``gpus`` GPUs."""
    cmd = " ".join(shlex.quote(a) for a in torchrun_command(python, medgrade_args, gpus))
    return "\n".join([
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        "#SBATCH --nodes=1",
        f"#SBATCH --gres=gpu:{int(gpus)}",
        f"#SBATCH --cpus-per-task={int(gpus) * cpus_per_gpu}",
        f"#SBATCH --time={int(hours)}:00:00",
        f"#SBATCH --output={Path(log_dir) / (job_name + '-%j.log')}",
        "set -euo pipefail",
        "# Activate the environment that has MedGrade installed (pip install medgrade) before submitting.",
        cmd,
        "",
    ])


class CommandJob(BackgroundJob):
    """A :class:`BackgroundJob` running a full command line (e.g. torchrun) instead of the CLI module."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None):
        super().__init__(argv[1:], python=argv[0], env=env, cwd=cwd)
        self.argv = list(argv)

    def start(self) -> "CommandJob":
        import threading

        self._proc = subprocess.Popen([*self.argv, "--progress-json"], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, env=self._env, cwd=self._cwd, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self
