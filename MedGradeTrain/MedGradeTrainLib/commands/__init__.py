"""Sub-commands of ``medgrade`` contributed by this package: one module per command, each with
``register(subparsers)`` adding its parser and setting ``handler(args, progress) -> int``."""

from __future__ import annotations

import importlib
import pkgutil

# Model-bundle kinds this package loads: ``models import`` has each bundle loaded by its kind's loader
# (``"module:function"``, called as ``function(folder, device="cpu")``) before it is accepted.
BUNDLE_KINDS = {
    "toy-regression": "MedGradeTrainLib.bundle_checks:check_trained_bundle",
    "umae-pretrain": "MedGradeTrainLib.bundle_checks:check_trained_bundle",
    "umae-finetune": "MedGradeTrainLib.bundle_checks:check_trained_bundle",
    "umae-classifier": "MedGradeTrainLib.bundle_checks:check_trained_bundle",
}


def register(subparsers) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}").register(subparsers)


def intercept(argv: list[str]) -> int | None:
    """A cohort command with ``--slurm`` / ``--slurm-print-script`` runs as a Slurm job array."""
    from ..run_array import wants_array

    if wants_array(argv):  # medgrade run COHORT --launcher slurm: shards of the cohort as array tasks
        from ..run_array import submit_run_array

        return submit_run_array(argv)
    if "--slurm" in argv or "--slurm-print-script" in argv:
        from ..cohort_jobs import submit_from_argv

        return submit_from_argv(argv)
    return None
