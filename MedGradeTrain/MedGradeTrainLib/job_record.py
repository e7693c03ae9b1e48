"""``RUN/job.json``: how a run was launched (launcher, pid, Slurm job id, status), merged on every write."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

JOB_FILE = "job.json"


def write_job(run_dir: Path, record: dict[str, Any]) -> None:
    from MedGradeCoreLib.atomic import atomic_write_text

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / JOB_FILE
    try:
        old = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        old = {}
    old = old if isinstance(old, dict) else {}  # a malformed record is replaced, never fatal
    atomic_write_text(path, json.dumps({**old, **record, "updated": time.time()}, indent=1))


def read_job(run_dir: str | Path) -> dict[str, Any]:
    """``RUN/job.json`` as a dict (``{}`` when absent or malformed: a run folder never makes a caller fail)."""
    path = Path(run_dir) / JOB_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
