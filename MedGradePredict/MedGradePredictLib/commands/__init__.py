"""Sub-commands of ``medgrade`` contributed by this package: one module per command, each with
``register(subparsers)`` adding its parser and setting ``handler(args, progress) -> int``."""

from __future__ import annotations

import importlib
import pkgutil

# Model-bundle kinds this package loads: ``models import`` has each bundle loaded by its kind's loader
# (``"module:function"``, called as ``function(folder, device="cpu")``) before it is accepted.
BUNDLE_KINDS = {
    "grading": "MedGradePredictLib.model_bundle:load_grading_bundle",
    "breast-radiomics": "MedGradePredictLib.breast.bundles:load_breast_predictor",
    "breast-fusion": "MedGradePredictLib.breast.bundles:load_breast_predictor",
}


def register(subparsers) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}").register(subparsers)
