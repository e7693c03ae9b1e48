"""Predicting breast cases with a radiomics or a fusion bundle -> rows of ``predictions.csv``:
id, case, patient, predicted class, probability of the positive (last) class, every class's
probability, modalities used, model id (+ label when known, for ``medgrade evaluate``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk
import torch

from MedGradeCoreLib.bundle import ModelManifest, load_state_dict
from MedGradeCoreLib.hashing import sha256_file
from MedGradeCoreLib.errors import BundleError, InputError

from .case import BreastCase, BreastImage, encode_label
from .fusion_data import FusionDataset, make_samples, predict_dataset
from .fusion_net import BranchSpec, LateFusionNet
from .radiomics_features import RadiomicsSettings, feature_rows
from .radiomics_model import RadiomicsModel, model_matrix

WEIGHTS = "fusion.safetensors"
CSV_NAME, JSON_NAME = "predictions.csv", "predictions.json"


def _row(pid: str, case_id: str, patient_id: str, classes: Sequence[str], prob: np.ndarray, manifest: ModelManifest,
         modalities: str, label: int | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    k = int(np.argmax(prob))
    row = {"id": pid, "case_id": case_id, "patient_id": patient_id, "task": manifest.task.get("name", ""),
           "predicted_class": classes[k], "probability": float(prob[-1]), "positive_class": classes[-1]}
    row.update({f"probability_{c}": float(p) for c, p in zip(classes, prob)})
    row.update(modalities=modalities, model_id=manifest.model_id, label=label, **(extra or {}))
    return row


MIN_SIDE_PX = 16  # smaller than a 16×16 crop is no lesion image (a thumbnail, a stray icon)


def check_gradable(image: BreastImage) -> None:
    """Refuse what no model can grade: a tiny image, a blank one (every pixel one value), an empty ROI."""
    size = image.image.GetSize()
    if min(size[:2]) < MIN_SIDE_PX:
        raise InputError(image.source, f"image of {'×'.join(map(str, size))} pixels is too small to grade "
                                       f"(at least {MIN_SIDE_PX}×{MIN_SIDE_PX})")
    arr = sitk.GetArrayViewFromImage(image.image)
    if float(np.min(arr)) == float(np.max(arr)):
        raise InputError(image.source, f"every pixel has the same value ({float(np.min(arr)):g}): a blank image")
    roi = image.roi_array()
    if roi is not None and int(np.count_nonzero(roi)) < 4:
        raise InputError(image.source, "the lesion ROI is empty (no lesion drawn)" if not roi.any() else
                         f"the lesion ROI has only {int(np.count_nonzero(roi))} pixels; at least 4 are needed")


class RadiomicsPredictor:
    def __init__(self, model: RadiomicsModel, settings: RadiomicsSettings, manifest: ModelManifest, folder: Path):
        self.model, self.settings, self.manifest, self.folder = model, settings, manifest, folder
        self.modality = manifest.inputs[0]
        self.classes = list(manifest.task["classes"])

    def predict(self, cases: Sequence[BreastCase], progress=None) -> list[dict[str, Any]]:
        usable = [c for c in cases if c.modality(self.modality)]
        if not usable:
            raise InputError(None, f"no case has the {self.modality.upper()} images this model needs")
        for c in usable:
            for image in c.modality(self.modality).values():
                check_gradable(image)
        rows = feature_rows(usable, self.modality, self.settings, progress)
        X = model_matrix(self.model, rows)
        prob = self.model.predict_proba(X)
        task = self.manifest.task.get("name", "")
        return [_row(r.id, r.id if self.modality == "mri" else _case_of(usable, r.id), r.patient_id, self.classes, p,
                     self.manifest, self.modality, encode_label(task, r.labels) if task else None,
                     {"ring": r.ring}) for r, p in zip(rows, prob)]


def _case_of(cases: Sequence[BreastCase], image_id: str) -> str:
    return next((c.case_id for c in cases for m in ("mg", "us") if image_id in c.modality(m)), image_id)


class FusionPredictor:
    def __init__(self, net: LateFusionNet, branches: list[BranchSpec], manifest: ModelManifest, device: torch.device):
        self.net, self.branches, self.manifest, self.device = net.eval(), branches, manifest, device
        self.classes = list(manifest.task["classes"])

    @classmethod
    def from_bundle(cls, folder: Path, manifest: ModelManifest, device: str = "auto") -> "FusionPredictor":
        from MedGradeCoreLib.devices import choose_device

        arch = manifest.architecture
        branches = [BranchSpec.from_dict(b) for b in arch["branches"]]
        net = LateFusionNet(branches, len(manifest.task["classes"]), arch.get("embed", 32), arch.get("hidden", 32))
        try:
            net.load_state_dict(load_state_dict(folder / WEIGHTS))
        except RuntimeError as exc:
            raise BundleError(f"{folder / WEIGHTS}: weights do not fit the architecture in the manifest ({exc})") from None
        dev = choose_device(device, manifest.min_gpu_memory_mb).device
        return cls(net.to(dev), branches, manifest, dev)

    def predict(self, cases: Sequence[BreastCase], progress=None) -> list[dict[str, Any]]:
        for c in cases:  # what the radiomics model refuses, the deep model refuses too (no confident nonsense)
            for b in self.branches:
                for image in c.modality(b.modality).values():
                    check_gradable(image)
        samples = make_samples(cases, self.branches, self.manifest.task.get("name"))
        if not samples:
            raise InputError(None, f"no case has any of the modalities this model needs "
                                   f"({', '.join(b.modality.upper() for b in self.branches)})")
        ds = FusionDataset(samples, self.branches)
        prob = predict_dataset(self.net, ds, self.device)
        return [_row(s.id, s.case_id, s.patient_id, self.classes, p, self.manifest, "+".join(sorted(s.images)), s.label)
                for s, p in zip(samples, prob)]

    @torch.no_grad()
    def contributions(self, cases: Sequence[BreastCase]) -> list[dict[str, Any]]:
        """Per sample: learned modality weights and the positive-class probability with each present
        modality left out (a leave-one-modality-out check)."""
        samples = make_samples(cases, self.branches, None)
        ds = FusionDataset(samples, self.branches)
        out = []
        for s, (inputs, present) in zip(samples, ds.cache):
            x = {k: torch.nan_to_num(v)[None].to(self.device) for k, v in inputs.items()}
            pr = present[None].to(self.device)
            full = float(torch.softmax(self.net(x, pr), 1)[0, -1])
            w = self.net.modality_weights(pr)[0].cpu().tolist()
            rec = {"id": s.id, "probability": full}
            for i, b in enumerate(self.branches):
                rec[f"weight_{b.modality}"] = float(w[i]) if present[i] else None
                if present[i] and int(present.sum()) > 1:
                    p2 = pr.clone()
                    p2[0, i] = False
                    rec[f"probability_without_{b.modality}"] = float(torch.softmax(self.net(x, p2), 1)[0, -1])
            out.append(rec)
        return out


def write_predictions(rows: list[dict[str, Any]], output: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """``predictions.csv`` (+ ``predictions.json`` with ``meta``), written under temporary names first."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    cols = list(dict.fromkeys(k for r in rows for k in r))
    tmp = out / (CSV_NAME + ".partial")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(out / CSV_NAME)
    tmpj = out / (JSON_NAME + ".partial")
    tmpj.write_text(json.dumps({"rows": rows, **(meta or {})}, indent=1, default=str))
    tmpj.replace(out / JSON_NAME)
    return out / CSV_NAME


def weights_sha(folder: Path) -> str:
    return sha256_file(folder / WEIGHTS)
