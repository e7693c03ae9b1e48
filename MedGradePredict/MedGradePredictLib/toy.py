"""A separable toy label built from real slices, to prove the training path works (NOT a grade).

Label "swapped": the T1c and T2 inputs of a slice set exchanged (the T1c branch sees the T2 image
and vice versa); "as-acquired": left as they are. Both versions are made from the same real slices,
and they share a pseudo-patient id, so patient-level splits keep them on one side. A network can
only separate them by learning the real contrast of the sequences (e.g. CSF dark on T1c, bright
on T2) — which is what a working training path must manage. Says nothing about Ki-67 or grade.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.case import Case

from .cohort import CohortCase
from .mix_inputs import build_slice_inputs
from .tasks import Task

TOY_TASK = Task("toy-sequence-swap", "toy_swap", "swapped", "as-acquired")


def swap_toy_cohort(case: Case, window: int = 4, size: int = 32, sequences: tuple[str, str] = ("t1c", "t2"),
                    mode: str = "mix", margin: float = 0.25) -> list[CohortCase]:
    """Pseudo-patients of ``window`` consecutive lesion slices, each as-acquired and swapped."""
    mask = sitk.GetArrayViewFromImage(case.mask) > 0
    z = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(1))
    out = []
    a, b = sequences
    for w, start in enumerate(range(0, len(z) - window + 1, window)):
        zs = [int(v) for v in z[start:start + window]]
        inp = build_slice_inputs(case, sequences, zs, size=size, mode=mode, margin=margin, crop=True)
        pid = f"{case.patient_id}-w{w:02d}"
        swapped = dataclasses.replace(inp, arrays={a: inp.arrays[b], b: inp.arrays[a]})
        out.append(CohortCase(f"{pid}-as-acquired", pid, inp, dict(case.clinical), 0))
        out.append(CohortCase(f"{pid}-swapped", pid, swapped, dict(case.clinical), 1))
    return out
