"""First-use dependency check inside Slicer: prompt, install with constraints, never touch Slicer's own."""

from __future__ import annotations

import logging
import os
import traceback
from types import ModuleType

import slicer

from MedGradeCoreLib import dependencies


def _slicerPackaging() -> ModuleType | None:
    """The Slicer module with ``pip_ensure`` (``slicer.pydeps``, Slicer >= 5.11), where this Slicer has it."""
    for name in ("slicer.pydeps", "slicer.packaging"):
        try:
            module = __import__(name, fromlist=["pip_ensure"])
        except ImportError:
            continue
        if hasattr(module, "pip_ensure"):
            return module
    return None


def ensureDependencies() -> bool:
    """Check (and on consent install) MedGrade's Python packages; True when everything is present."""
    plan = dependencies.check_environment()
    if plan.torch:  # first: without torch, pip would pull a build that may not match the GPU driver
        slicer.util.errorDisplay(plan.torch, windowTitle="MedGrade needs PyTorch")
        return False
    for line in plan.slicer_mismatch:
        logging.warning(f"MedGrade: {line}")
    if not plan.to_install:
        return True
    constraints = dependencies.write_effective_constraints(
        os.path.join(slicer.app.temporaryPath, "MedGrade-constraints.txt"))
    skip = sorted(dependencies.never_install())
    packaging = _slicerPackaging()
    try:
        if packaging is not None:  # prompts with the list, shows progress, offers a restart when needed;
            # never retried without skip_packages or constraints (Slicer's own packages stay as they are)
            packaging.pip_ensure(plan.to_install, constraints=str(constraints), requester="MedGrade",
                                 skip_packages=skip)
        else:  # Slicer 5.10: pip with the constraints file, each Slicer package pinned to its installed version
            if not slicer.util.confirmOkCancelDisplay(plan.describe() + "\n\nInstall them now? Slicer's own "
                                                      "packages are left as they are.", "MedGrade setup"):
                return False
            with slicer.util.tryWithErrorDisplay("MedGrade could not install its packages", waitCursor=True):
                slicer.util.pip_install([str(r) for r in plan.to_install] + ["-c", str(constraints)])
    except Exception as exc:  # noqa: BLE001 - shown to the user with the reason, logged in full
        logging.error(traceback.format_exc())
        slicer.util.errorDisplay(f"Installing MedGrade's packages failed: {exc}")
        return False
    left = dependencies.check_environment()
    if left.to_install:
        slicer.util.errorDisplay(left.describe(), windowTitle="MedGrade packages still missing")
        return False
    return True
