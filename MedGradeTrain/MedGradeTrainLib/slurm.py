"""Slurm through its own tools: ``sbatch`` to submit, ``squeue``/``scontrol`` to follow, ``scancel`` to
cancel. Arguments always go to them as lists (no shell); the batch scripts quote every user value with
``shlex.quote`` and reduce the values Slurm parses itself (``#SBATCH`` lines) to ``[A-Za-z0-9._-]``."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

from MedGradeCoreLib.errors import InputError, MedGradeError

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE"}


def safe_token(value: str, default: str = "medgrade") -> str:
    """``value`` reduced to ``[A-Za-z0-9._-]`` (for ``#SBATCH`` lines, which Slurm parses itself)."""
    out = _SAFE.sub("_", str(value)).strip("._-")[:64]
    return out or default


def batch_header(job_name: str, shape: list[str], time_limit: str, default_time: str, gpus: int = 0,
                 partition: str | None = None, cpus: int = 0, env: dict[str, str] | None = None) -> list[str]:
    """The ``#SBATCH`` lines of a batch script (``shape``: the job's own lines, e.g. ``--nodes=2``), then
    ``set -euo pipefail`` and ``env`` exported. Values Slurm parses itself are reduced with
    :func:`safe_token`; exported values are shell-quoted."""
    lines = ["#!/bin/bash", f"#SBATCH --job-name={safe_token(job_name)}", *(f"#SBATCH {s}" for s in shape),
             *([f"#SBATCH --cpus-per-task={int(cpus)}"] if cpus else []),
             f"#SBATCH --time={safe_token(time_limit, default_time).replace('_', ':')}"]
    if gpus:
        lines.append(f"#SBATCH --gres=gpu:{int(gpus)}")
    if partition:
        lines.append(f"#SBATCH --partition={safe_token(partition)}")
    lines.append("set -euo pipefail")
    for k, v in (env or {}).items():
        lines.append(f"export {safe_token(k).replace('-', '_').replace('.', '_')}={shlex.quote(v)}")
    return lines


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise MedGradeError(f"{name} not found: Slurm is not installed on this machine (use --print-script to get "
                            "the batch script)")
    return exe


def sbatch(script: Path, job_name: str, log: Path, extra: list[str] | None = None) -> str:
    """Submit ``script``; returns the job id."""
    out = subprocess.run([_tool("sbatch"), "--parsable", f"--job-name={safe_token(job_name)}", f"--output={log}",
                          *(extra or []), str(script)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise MedGradeError(f"sbatch refused the job: {out.stderr.strip() or out.stdout.strip()}")
    return job_id_arg(out.stdout.strip().split(";")[0], "sbatch output")


_JOB_ID = re.compile(r"[0-9]{1,12}(_[0-9]{1,9})?")


def job_id_arg(job_id: object, source: str = "job.json") -> str:
    """``job_id`` when it is a Slurm job id (digits, an optional ``_N`` array task), else a clear error:
    a value from a file never reaches a Slurm tool as an option (``--user=root``)."""
    text = str(job_id).strip() if isinstance(job_id, (str, int)) and not isinstance(job_id, bool) else ""
    if not _JOB_ID.fullmatch(text):
        raise InputError(source, f"invalid Slurm job id {str(job_id)[:40]!r} (expected digits, e.g. 1234 or 1234_5)")
    return text


def job_state(job_id: str) -> str:
    """PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ... (for an array: the first state that is not done,
    else the last task's); ``UNKNOWN`` when Slurm no longer knows the job."""
    job_id = job_id_arg(job_id)
    q = subprocess.run([_tool("squeue"), "-h", "-o", "%T", f"--jobs={job_id}"], capture_output=True, text=True,
                       check=False)
    states = [s.strip() for s in q.stdout.splitlines() if s.strip()] if q.returncode == 0 else []
    if states:
        return states[0]
    c = subprocess.run([_tool("scontrol"), "-o", "show", "job", job_id], capture_output=True, text=True,
                       check=False)
    found = re.findall(r"JobState=(\S+)", c.stdout)
    if not found:
        return "UNKNOWN"
    pending = [s for s in found if s not in FINAL_STATES]
    if pending:
        return pending[0]
    return "FAILED" if "FAILED" in found else ("CANCELLED" if "CANCELLED" in found else found[-1])


def scancel(job_id: str) -> None:
    job_id = job_id_arg(job_id)
    out = subprocess.run([_tool("scancel"), "--", job_id], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise MedGradeError(f"scancel {job_id} failed: {out.stderr.strip()}")
