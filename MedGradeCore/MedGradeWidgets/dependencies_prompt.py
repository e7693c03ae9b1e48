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


def ensureTorch() -> bool:
    """torch through the PyTorch extension's installer (it picks the build for the GPU driver), as the reference
    extensions do: ``installTorch(askConfirmation=True, torchVersionRequirement=">=<minimum>")``."""
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        slicer.util.errorDisplay("MedGrade needs the PyTorch extension: install it from the Extensions Manager and "
                                 "restart Slicer.", windowTitle="MedGrade needs PyTorch")
        return False
    torchLogic = PyTorchUtils.PyTorchUtilsLogic()
    requirement = f">={dependencies.TORCH_MIN_VERSION}"
    if torchLogic.torchInstalled():
        problem = dependencies.torch_problem(torchLogic.torch.__version__)
        if problem:  # too old: replacing a loaded torch needs the user (PyTorch Utils module) and a restart
            slicer.util.errorDisplay(problem, windowTitle="MedGrade needs a newer PyTorch")
            return False
        return True
    torch = torchLogic.installTorch(askConfirmation=True, torchVersionRequirement=requirement)
    if torch is None:
        slicer.util.errorDisplay(f"PyTorch ({requirement}) was not installed; MedGrade cannot run without it.",
                                 windowTitle="MedGrade needs PyTorch")
        return False
    return True


def ensureDependencies() -> bool:
    """Check (and on consent install) MedGrade's Python packages; True when everything is present."""
    plan = dependencies.check_environment()
    if plan.torch:  # first: without torch, pip would pull a build that may not match the GPU driver
        if not ensureTorch():
            return False
        plan = dependencies.check_environment()
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


def missingDependencies() -> str:
    """What is missing for MedGrade's work ('' when nothing): self-tests skip with this reason, never fail."""
    plan = dependencies.check_environment()
    return "" if plan.ok else plan.describe()
