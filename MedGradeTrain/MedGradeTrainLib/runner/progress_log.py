"""Progress as JSON lines: ``<run>/progress.jsonl`` and stdout, the one protocol the panel and the command
line read. Every line has ``seq`` (line number), ``event`` (start | step | epoch | split | resume | done |
error), ``run_id``, ``split``, ``epoch``, ``step`` (optimizer steps since the run began: monotonic, also
across a resume), ``loss``, ``metric``, ``lr``, ``eta_s``, ``gpu_mem_mb``, ``fraction`` and ``message``.
On stdout a line is prefixed with ``MEDGRADE-PROGRESS `` when the caller asked for ``--progress-json``
(what :class:`MedGradeCoreLib.jobs.BackgroundJob` parses), plain JSON otherwise."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterator, TextIO

from MedGradeCoreLib.progress import PROGRESS_PREFIX

FILE = "progress.jsonl"


def gpu_memory_mb() -> float | None:
    import torch  # only inside a run: the panel reads progress files without torch

    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class ProgressLog:
    def __init__(self, run_dir: Path, run_id: str, stdout: TextIO | None = sys.stdout, prefixed: bool = False,
                 enabled: bool = True):
        self.path = Path(run_dir) / FILE
        self.run_id, self.stdout, self.prefixed, self.enabled = run_id, stdout, prefixed, enabled
        self.seq = 0
        if enabled and self.path.is_file():
            self.seq = sum(1 for _ in self.path.open())

    def truncate(self, n_lines: int) -> None:
        """Keep the first ``n_lines`` (what a checkpoint had seen): a resumed run repeats no line."""
        if not self.enabled or not self.path.is_file():
            return
        lines = self.path.read_text().splitlines(keepends=True)[:n_lines]
        from MedGradeCoreLib.atomic import atomic_write_text

        atomic_write_text(self.path, "".join(lines))
        self.seq = len(lines)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        rec = {"seq": self.seq, "event": event, "run_id": self.run_id, "time": round(time.time(), 3),
               **{k: _clean(v) for k, v in fields.items()}}
        if not self.enabled:
            return rec
        line = json.dumps(rec, default=str)
        with self.path.open("a") as f:
            f.write(line + "\n")
        self.seq += 1
        if self.stdout is not None:
            self.stdout.write((PROGRESS_PREFIX if self.prefixed else "") + line + "\n")
            self.stdout.flush()
        return rec


def read_progress(path: str | Path) -> list[dict[str, Any]]:
    """Every complete line of a progress file (a line being written is left for the next read)."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE
    out = []
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            break
    return out


def follow(path: str | Path, poll_s: float = 0.2, stop: Any = None) -> Iterator[dict[str, Any]]:
    """Yield progress records as they are appended until a ``done``/``error`` record (or ``stop()``)."""
    path = Path(path)
    if path.suffix != ".jsonl":  # a run folder (perhaps not created yet)
        path = path / FILE
    pos, buf = 0, ""
    while True:
        if path.is_file():
            with path.open() as f:
                f.seek(pos)
                buf += f.read()
                pos = f.tell()
            *lines, buf = buf.split("\n")
            for line in lines:
                if line.strip():
                    rec = json.loads(line)
                    yield rec
                    if rec.get("event") in ("done", "error"):
                        return
        if stop is not None and stop():
            return
        time.sleep(poll_s)
