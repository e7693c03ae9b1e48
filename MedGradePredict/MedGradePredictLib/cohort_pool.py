"""`medgrade run COHORT --workers N`: the cascade over a cohort's cases in a pool of N worker processes.

Each worker is a fresh interpreter (``spawn``: the same on Linux, macOS and Windows) that keeps its models loaded
between cases (``cascade._seg_model`` / ``_grade_model`` are cached per process), so a cohort loads each model
once per worker instead of once per case and command. Cases are dealt out in cohort order; every worker gets
``cores // N`` threads (torch, ONNX Runtime, ITK) so the machine is not oversubscribed.

IO/compute overlap: with N >= 2 workers one worker reads and preprocesses (mostly single-threaded ITK and file
IO) while another runs the networks, so the cores stay busy without a prefetch thread inside a worker (which
would hold a second case in memory and share the worker's threads). Hence the default is at least 2 workers.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

from MedGradeCoreLib.errors import MedGradeError
from MedGradeCoreLib.onnx_models import cpu_threads
from MedGradeCoreLib.progress import Progress

MAX_DEFAULT_WORKERS = 8  # each worker holds its own models (a few hundred MB)


def default_workers(cases: int, cores: int | None = None) -> int:
    """At least 2 workers (IO/compute overlap), about one per two cores, never more than cases."""
    cores = cores or cpu_threads()
    return max(1, min(cases, MAX_DEFAULT_WORKERS, max(2, cores // 2)))


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or cpu_threads()) // max(1, workers))


@dataclass
class PoolRun:
    workers: int
    threads: int
    results: list[Any] = field(default_factory=list)  # CascadeResult, cohort order
    loads: dict[int, dict[str, int]] = field(default_factory=dict)  # worker pid -> models it loaded

    def summary(self) -> dict[str, Any]:
        return {"workers": self.workers, "threads_per_worker": self.threads,
                "model_loads": {str(k): v for k, v in self.loads.items()}}


def _init_worker(threads: int) -> None:
    """Before torch / ONNX Runtime are imported in this worker: its share of the cores."""
    for var in ("MEDGRADE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[var] = str(threads)
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _run_one(path: str, output: str, settings: Any, threads: int) -> tuple[str, Any, int, dict[str, int]]:
    """One case in a worker: ("ok", result) or ("error", message); a MedGradeError never ends the worker."""
    from . import cascade

    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # ONNX-only installs
        pass
    try:
        out: tuple[str, Any] = ("ok", cascade.run_case(path, output, settings))
    except MedGradeError as exc:
        out = ("error", str(exc))
    return (*out, os.getpid(), dict(cascade.MODEL_LOADS))


def run_pool(cases: list[Path], output: str | Path, settings: Any, workers: int, progress: Progress,
             on_error: Callable[[str, MedGradeError], None]) -> PoolRun:
    """Every case through ``cascade.run_case`` in ``workers`` processes; failed cases go to ``on_error`` and
    the others still run. Cancel (the Progress flag or Ctrl-C) cancels the cases not started and ends the
    workers; a case stopped half-way leaves no half-written folder (every stage writes atomically)."""
    threads = threads_per_worker(workers)
    run = PoolRun(workers, threads)
    done: dict[int, Any] = {}
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(threads,))
    try:
        pending: dict[Future, int] = {pool.submit(_run_one, str(p), str(output), settings, threads): i
                                      for i, p in enumerate(cases)}
        progress(0.0, f"{len(cases)} cases in {workers} workers ({threads} threads each)")
        while pending:
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            progress.check_cancelled()
            for fut in finished:
                i = pending.pop(fut)
                kind, value, pid, loads = fut.result()
                run.loads[pid] = loads
                if kind == "ok":
                    done[i] = value
                else:
                    on_error(cases[i].name, MedGradeError(value))
                n_done = len(cases) - len(pending)
                progress(n_done / len(cases), f"{cases[i].name} done ({n_done}/{len(cases)})")
    except BaseException:  # cancel, Ctrl-C, a worker crash: nothing new starts, running workers end
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        raise
    pool.shutdown(wait=True)
    run.results = [done[i] for i in sorted(done)]
    return run


def shard_cases(cases: list[Path], index: int, count: int) -> list[Path]:
    """A Slurm array task's share: case j (name order) goes to task j % count."""
    return cases[index::count]


def run_cohort(path: str | Path, output: str | Path, settings: Any, workers: int | None, progress: Progress,
               on_error: Callable[[str, MedGradeError], None], shard: tuple[int, int] | None = None
               ) -> tuple[list[Any], PoolRun | None]:
    """A case: ``cascade.run`` in this process (no pool). A cohort: :func:`run_pool` with ``workers``
    (None: :func:`default_workers`); ``workers=1`` runs the cases one after the other in this process.
    ``shard=(i, k)``: only the cases j (name order) with j % k == i (a Slurm array task's share)."""
    from . import cascade

    cases = cascade.cohort_cases(Path(path))
    if shard is not None:
        cases = shard_cases(cases, *shard)
        if not cases:
            return [], None
    n = workers or default_workers(len(cases))
    if len(cases) == 1 or n == 1:
        if shard is None:
            return cascade.run(path, output, settings, progress, on_error), None
        return cascade.run_cases(cases, output, settings, progress, on_error, single_raises=False), None
    run = run_pool(cases, output, settings, min(n, len(cases)), progress, on_error)
    return run.results, run

