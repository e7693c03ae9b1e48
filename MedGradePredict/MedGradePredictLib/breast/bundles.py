"""Breast model bundles (kinds ``breast-radiomics`` and ``breast-fusion``) and loading either one as a
predictor. Written with :func:`MedGradeCoreLib.bundle.write_bundle` (hashed manifest), read only
after the hashes were verified; nothing is unpickled."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any

from MedGradeCoreLib.bundle import ModelManifest, read_manifest, write_bundle
from MedGradeCoreLib.errors import BundleError

from ..model_bundle import resolve_bundle
from .radiomics_features import RadiomicsSettings
from .radiomics_model import RadiomicsConfig, RadiomicsModel

RADIOMICS_KIND, FUSION_KIND = "breast-radiomics", "breast-fusion"
MODEL_JSON, BOOSTER, COEFFICIENTS = "radiomics_model.json", "lightgbm.txt", "coefficients.csv"
# `medgrade predict` on a US input without --model: the better validated of the two shipped US models (issue 17).
# Radiomics + logistic regression reached AUC 0.939 in the patient-level 5-fold CV on BUS-BRA + BUSI, the deep
# fusion branch 0.787 (both in their manifests); the deep model stays available with --model.
DEFAULT_US_MODEL = "breast-us-radiomics-busbra-busi"


def save_radiomics_bundle(model: RadiomicsModel, settings: RadiomicsSettings, cfg: RadiomicsConfig,
                          folder: str | Path, model_id: str, task: dict[str, Any], modality: str,
                          metrics: dict[str, Any] | None = None, trained_on: str = "", description: str = "") -> Path:
    import radiomics

    with tempfile.TemporaryDirectory() as tmp:
        files = {MODEL_JSON: Path(tmp) / MODEL_JSON}
        files[MODEL_JSON].write_text(model.to_json())
        if model.booster is not None:
            files[BOOSTER] = Path(tmp) / BOOSTER
            files[BOOSTER].write_text(model.booster)
        table = model.coefficient_table()
        if table:
            files[COEFFICIENTS] = Path(tmp) / COEFFICIENTS
            with open(files[COEFFICIENTS], "w", newline="") as f:
                w = csv.DictWriter(f, list(dict.fromkeys(k for r in table for k in r)))
                w.writeheader()
                w.writerows(table)
        manifest = ModelManifest(
            model_id=model_id, kind=RADIOMICS_KIND,
            architecture={"name": "radiomics", "classifier": model.classifier, **cfg.to_dict()},
            inputs=[modality],
            preprocessing={"radiomics": settings.to_dict(), "pyradiomics_version": radiomics.__version__,
                           "settings_digest": settings.digest()},
            task=task, metrics=metrics or {}, trained_on=trained_on, description=description)
        return write_bundle(folder, manifest, files)


def load_breast_predictor(model: str | Path, device: str = "auto"):
    """A predictor (``.predict(cases) -> rows``) for a breast bundle folder or model id."""
    folder = resolve_bundle(model)
    manifest = read_manifest(folder, verify=True)
    if manifest.kind == RADIOMICS_KIND:
        from .predict import RadiomicsPredictor

        m = RadiomicsModel.load(folder / MODEL_JSON, folder / BOOSTER if BOOSTER in manifest.files else None)
        return RadiomicsPredictor(m, RadiomicsSettings.from_dict(manifest.preprocessing["radiomics"]), manifest,
                                  folder)
    if manifest.kind == FUSION_KIND:
        from .predict import FusionPredictor

        return FusionPredictor.from_bundle(folder, manifest, device)
    raise BundleError(f"{folder}: a {manifest.kind!r} model, not a breast model")


def is_breast_model(model: str | Path) -> bool:
    try:
        return read_manifest(resolve_bundle(model), verify=False).kind in (RADIOMICS_KIND, FUSION_KIND)
    except Exception:  # an unknown id / not a bundle: not ours to report here
        return False
