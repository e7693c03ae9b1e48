"""Every sequence co-registered to the reference at once, on every core, bit-identical run to run.

ITK's multi-threaded Mattes MI adds its threads' partial sums in a varying order (last-digit differences run to
run), so each registration runs on *one* ITK thread and the independent registrations run side by side in worker
processes (SimpleITK holds the GIL while it works, so threads would not overlap): the work is partitioned by
sequence and start, never inside a sum, and the results are combined in a fixed order.

1. A sequence on exactly the reference's grid (size, spacing, origin, direction) was co-registered upstream
   (BraTS-space data): it is not registered again; the reason is recorded.
2. Round 1: every other sequence from its own starts (:func:`registration.rigid_starts`), plus its
   left-right-flip check, all at once.
3. Round 2 (``reg_cross_starts``): each sequence's coarse level is also run from the other sequences' round-1
   results (patient motion is often shared); a start that beats the sequence's own coarse metric is refined.
   This replaces the old serial chain (a sequence tried only the sequences registered before it).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.progress import Progress
from .config import PreprocessConfig
from .registration import Registration, RegistrationProblem, itk_threads

GRID_TOLERANCE = 1e-4  # mm (origin, spacing) and direction cosines


@dataclass
class SequenceRegistration:
    """What co-registration did for one sequence."""

    transform: sitk.Transform
    metric: float = float("nan")
    skipped: str = ""  # why it was not registered ("" when it was)
    flip_warning: str | None = None
    start: str = "own"  # "own" or the sequence whose round-1 result was the better start


def same_grid(a: sitk.Image, b: sitk.Image, tol: float = GRID_TOLERANCE) -> bool:
    """``a`` and ``b`` share size, spacing, origin and direction (to ``tol``)."""
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol))


def worker_count(config: PreprocessConfig) -> int:
    """``reg_workers``, or every core this process may use when 0."""
    if config.reg_workers > 0:
        return config.reg_workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def coregister(reference: str, images: dict[str, sitk.Image], mask: sitk.Image | None, brain: sitk.Image,
               config: PreprocessConfig, progress: Progress | None = None,
               on_error: Callable[[str, RuntimeError], Exception] | None = None) -> dict[str, SequenceRegistration]:
    """Register every sequence but ``reference`` to it (see the module docstring). ``mask`` restricts the metric,
    ``brain`` (not dilated) is the flip check's mask. ``on_error(seq, exc)`` turns SimpleITK's ``RuntimeError``
    into the exception to raise (the first failing sequence in order)."""
    progress = progress or Progress()
    fixed = images[reference]
    out: dict[str, SequenceRegistration] = {}
    todo = []
    for seq in (s for s in images if s != reference):
        if config.reg_skip_same_grid and same_grid(images[seq], fixed):
            out[seq] = SequenceRegistration(sitk.Euler3DTransform(), skipped=f"on the grid of {reference} "
                                            "(co-registered upstream): registration skipped")
        else:
            todo.append(seq)
    if todo:
        moving = {seq: images[seq] for seq in todo}
        with _Workers(worker_count(config), (reference, fixed, moving, mask, brain, config), progress) as pool:
            out.update(_rounds(pool, todo, config, on_error))
    progress(1.0, "co-registration done")
    return {seq: out[seq] for seq in images if seq in out}


def _rounds(pool: "_Workers", todo: list[str], config: PreprocessConfig,
            on_error: Callable[[str, RuntimeError], Exception] | None) -> dict[str, SequenceRegistration]:
    def get(seq: str, job: object) -> object:
        try:
            return pool.get(job)
        except RuntimeError as exc:
            if on_error is None:
                raise
            raise on_error(seq, exc) from None

    own = {seq: pool.submit(_own, seq) for seq in todo}
    flips = {seq: pool.submit(_flip, seq) for seq in todo if config.check_sequences}
    first: dict[str, Registration] = {seq: get(seq, job) for seq, job in own.items()}
    cross: dict[str, list[tuple[str, object]]] = {}
    if config.reg_cross_starts and len(todo) > 1:
        for seq in todo:
            cross[seq] = [(o, pool.submit(_coarse, seq, first[o].transform)) for o in todo
                          if o != seq and isinstance(first[o].transform, sitk.Euler3DTransform)]
    finals: dict[str, tuple[str, object]] = {}
    for seq in todo:
        best_name, best, best_coarse = "own", None, first[seq].coarse_metric
        for other, job in cross.get(seq, []):
            candidate: Registration = get(seq, job)
            if candidate.metric < best_coarse:  # strictly better; ties keep the own start
                best_name, best_coarse, best = other, candidate.metric, candidate
        finals[seq] = (best_name, pool.submit(_finish, seq, best) if best is not None else first[seq])
    out = {}
    for seq in todo:
        name, res = finals[seq]
        reg = res if isinstance(res, Registration) else get(seq, res)
        out[seq] = SequenceRegistration(reg.transform, reg.metric, start=name,
                                        flip_warning=pool.get(flips[seq]) if seq in flips else None)
    return out


class _Workers:
    """A pool of worker processes (every input sent once per worker), or this process when one worker is
    asked for. ``submit`` -> job, ``get(job)`` -> its result; cancelling ``progress`` kills the workers."""

    def __init__(self, n: int, state: tuple, progress: Progress):
        self.n, self.state, self.progress, self.pool, self.done, self.total = n, state, progress, None, 0, 0

    def __enter__(self) -> "_Workers":
        # inside Slicer's embedded Python (no plain interpreter to start workers from) the work stays in-process
        if self.n > 1 and "slicer" not in sys.modules:
            import multiprocessing

            ctx = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
            self.pool = ctx.Pool(self.n, initializer=_init, initargs=self.state)
        else:
            _init(*self.state)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        else:
            _STATE.clear()

    def submit(self, fn: Callable, *args: object) -> object:
        self.total += 1
        if self.pool is None:
            return fn(*args)  # run now, in order
        return self.pool.apply_async(fn, args)

    def get(self, job: object) -> object:
        if self.pool is None:
            result = job
        else:
            while True:
                self.progress.check_cancelled()
                job.wait(0.2)  # type: ignore[attr-defined]
                if job.ready():  # type: ignore[attr-defined]
                    result = job.get()  # type: ignore[attr-defined]
                    break
        self.done += 1
        self.progress(min(self.done / max(self.total, 1), 0.99), f"co-registration: {self.done} of "
                                                                 f"{self.total} registrations")
        return result


_STATE: dict[str, object] = {}  # in each worker: what _init received, and the pyramids built there


def _init(reference: str, fixed: sitk.Image, moving: dict[str, sitk.Image], mask: sitk.Image | None,
          brain: sitk.Image, config: PreprocessConfig) -> None:
    _STATE.clear()
    _STATE.update(reference=reference, fixed=fixed, moving=moving, mask=mask, brain=brain, config=config)


def _problem(seq: str) -> RegistrationProblem:
    key = f"problem:{seq}"
    if key not in _STATE:
        _STATE[key] = RegistrationProblem(_STATE["fixed"], _STATE["moving"][seq], _STATE["config"], _STATE["mask"])
    return _STATE[key]  # type: ignore[return-value]


def _own(seq: str) -> Registration:
    with itk_threads(_STATE["config"].reg_threads):  # type: ignore[attr-defined]
        problem = _problem(seq)
        return problem.finish(problem.coarse(problem.starts()))


def _coarse(seq: str, start: sitk.Euler3DTransform) -> Registration:
    with itk_threads(_STATE["config"].reg_threads):  # type: ignore[attr-defined]
        return _problem(seq).coarse([start])


def _finish(seq: str, coarse: Registration) -> Registration:
    with itk_threads(_STATE["config"].reg_threads):  # type: ignore[attr-defined]
        return _problem(seq).finish(coarse)


def _flip(seq: str) -> str | None:
    from .consistency import flip_warning

    s = _STATE
    return flip_warning(seq, s["reference"], s["fixed"], s["moving"][seq], s["brain"], s["config"])  # type: ignore[arg-type]
