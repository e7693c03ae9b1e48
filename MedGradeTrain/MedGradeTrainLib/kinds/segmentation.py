"""``segmentation``: MIG-Net (or an ablation row / baseline) lesion segmentation as a runner kind.

The kind section of a run config holds the fields of
:class:`MedGradeSegmentLib.segmentation.config.TrainConfig` that are the model's (architecture, sequences,
FPG, slices, augmentation, ...); the loop's fields (epochs, batch size, optimiser, folds, seed, device, AMP)
are the runner's. Cases come from ``cases`` (as in train-seg configs), or ``cohort``: a folder of
preprocessed case folders (``case.json``; grades from ``labels``) or the glioma-lgg-tcga layout
(``t1/flair/t1c/mask.nii.gz`` + ``clinical.csv``); ``patients`` keeps only those patient ids.

Each case is registered to the template once; each split's FPG atlas is built from that split's training
patients only. :func:`train` keeps the ``train-seg`` API (a TrainConfig in, a TrainResult out).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import SimpleITK as sitk
import torch
from torch import nn

from MedGradeCoreLib.case_folder import is_case_folder, read_case_info
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.progress import Progress
from MedGradeSegmentLib.segmentation.config import CaseSpec, TrainConfig
from MedGradeSegmentLib.segmentation.data import slice_dataset, train_transforms
from MedGradeSegmentLib.segmentation.fpg import atlas_from_warped
from MedGradeSegmentLib.segmentation.losses import FPGLoss
from MedGradeSegmentLib.segmentation.metrics import evaluate, summarise_patients
from MedGradeSegmentLib.segmentation.train import (TrainResult, fold_atlas_image, build_split_model, finite_mean, fold_samples, prepared_volumes,
                                                   load_cases, register_cases, resolve_architecture, template_image,
                                                   training_loss, uses_fpg)

from ..runner.kind import ModelKind, Patient, SplitData, register_kind

# TrainConfig fields the runner owns (the ``train``/``split`` sections of a run config).
RUNNER_FIELDS = ("output_dir", "epochs", "final_epochs", "batch_size", "lr", "weight_decay", "folds", "seed",
                 "final_fit", "num_workers", "device", "amp", "max_steps_per_epoch", "resume")
KIND_ONLY = ("cohort", "labels", "patients", "config_dir", "mask_version", "slice_cache", "val_max_samples")
# TrainConfig fields that shape a case's slices (the slice cache's key)
SLICE_FIELDS = ("sequences", "inplane_spacing", "fov_mm", "slices_per_case", "slice_selection", "slice_margin",
                "negative_ratio", "s_neg", "s_pos")


def cohort_cases(cohort: str | Path, labels: str | Path | None = None, sequences: list[str] | None = None,
                 lesion_labels: list[int] | None = None) -> list[CaseSpec]:
    """CaseSpecs of a cohort folder: preprocessed case folders, or the glioma-lgg-tcga layout (patients
    lacking one of ``sequences`` are left out)."""
    from MedGradeCoreLib.io.lgg_tcga import MASK_FILE, SEQUENCE_FILES, is_lgg_tcga_cohort, read_lgg_cohort

    root = Path(cohort)
    if not root.is_dir():
        raise InputError(root, "cohort folder not found")
    if is_lgg_tcga_cohort(root):
        return [CaseSpec(r.patient_id, images={s: str(r.folder / SEQUENCE_FILES[s]) for s in sequences or r.available},
                         mask=str(r.folder / MASK_FILE), grade=r.grade, case_id=r.case, lesion_labels=lesion_labels)
                for r in read_lgg_cohort(root) if r.has(sequences or [])]
    dirs = sorted(d for d in root.iterdir() if is_case_folder(d))
    if not dirs:
        raise InputError(root, "no preprocessed case folders (with case.json) and no glioma-lgg-tcga clinical.csv "
                               "in the cohort folder")
    grades: dict[str, Any] = {}
    if labels:
        from MedGradeCoreLib.io.clinical_csv import read_labels_csv

        grades = {pid: row.get("grade") for pid, row in read_labels_csv(labels).items()}
    out = []
    for d in dirs:
        try:
            pid = str(read_case_info(d, required=()).get("patient_id") or d.name)
        except (OSError, ValueError, AttributeError):
            pid = d.name  # the reader names the problem when the case is loaded
        out.append(CaseSpec(pid, case_dir=str(d.resolve()), grade=grades.get(pid, grades.get(d.name)),
                            lesion_labels=lesion_labels, case_id=d.name if d.name != pid else None))
    return out


def use_corrected_masks(cases: list, specs: list[CaseSpec], version: str | int = "newest") -> dict[str, Any]:
    """Replace the mask of every preprocessed case that has corrections by its corrected version (the
    newest by default; ``"original"`` keeps the AI/expert mask); returns case id -> version used."""
    from MedGradeSegmentLib.segmentation.cases import lesion_binary

    from ..cohort import corrected_mask

    used: dict[str, Any] = {}
    for case, spec in zip(cases, specs):
        if not spec.case_dir:
            continue
        path, v = corrected_mask(spec.case_dir, version)
        if path is None:
            continue
        mask = lesion_binary(sitk.ReadImage(str(path)), None)
        case.mask = sitk.Resample(mask, case.mask, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        used[case.case_id] = {"version": v, "mask": str(path)}
    return used


def _transform_sig(tfm: sitk.Transform | None) -> str | None:
    """A transform's identity for the slice cache (its text form, as written to a .tfm file)."""
    if tfm is None:
        return None
    import hashlib
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        sitk.WriteTransform(tfm, str(Path(tmp) / "t.tfm"))
        return hashlib.sha256((Path(tmp) / "t.tfm").read_bytes()).hexdigest()


def seg_config(settings: dict[str, Any], run_dir: Path) -> TrainConfig:
    """The TrainConfig of a kind section (paths relative to the config file's folder)."""
    base = Path(settings.get("config_dir") or ".")
    data = {k: v for k, v in settings.items() if k not in KIND_ONLY}
    bad = sorted(set(data) & set(RUNNER_FIELDS))
    if bad:
        raise InputError(None, f"kind.{', kind.'.join(bad)}: set in the run config's train/split sections instead")

    def rel(p: Any) -> Any:
        return str((base / p).resolve()) if isinstance(p, str) and p and not Path(p).is_absolute() else p

    cases = data.pop("cases", None)
    if settings.get("cohort"):
        specs = cohort_cases(rel(settings["cohort"]), rel(settings.get("labels")), data.get("sequences"))
        cases = [vars(c) for c in specs]
    if not cases:
        raise InputError(None, "the segmentation kind needs 'cases' or 'cohort'")
    for c in cases:
        for key in ("case_dir", "mask", "brain_mask"):
            c[key] = rel(c.get(key))
        c["images"] = {k: rel(v) for k, v in (c.get("images") or {}).items()}
    if settings.get("patients"):
        keep = set(settings["patients"])
        cases = [c for c in cases if (c.get("patient_id") or Path(c.get("case_dir") or "").name) in keep]
    if data.get("template") and (base / data["template"]).is_file():
        data["template"] = str((base / data["template"]).resolve())
    cfg = TrainConfig.from_dict({**data, "cases": cases, "output_dir": str(run_dir)}, "kind")
    return cfg


@register_kind
class SegmentationKind(ModelKind):
    name = "segmentation"
    metric, metric_mode = "val_dsc", "max"
    train_defaults = {"epochs": 50, "batch_size": 8, "optimizer": {"name": "AdamW", "lr": 3e-4, "weight_decay": 1e-4},
                      "restore_best": False}

    def __init__(self, settings: dict[str, Any], run_dir: Path):
        super().__init__(settings, run_dir)
        self.cfg = seg_config(settings, self.run_dir)
        self.arch = resolve_architecture(self.cfg)
        self.needs_atlas = uses_fpg(self.arch) or bool(self.arch.get("dual_guidance"))
        self.loss_fn = FPGLoss(self.cfg.dice_weight)
        self._cases = None
        self._reg: tuple[dict, dict] | None = None
        self.template: sitk.Image | None = None
        self.progress = Progress()

    @property
    def cases(self):
        if self._cases is None:
            self._cases = load_cases(self.cfg)
            self.mask_versions = use_corrected_masks(self._cases, self.cfg.cases,
                                                     self.settings.get("mask_version", "newest"))
            if self.mask_versions and self.run_dir.is_dir():
                (self.run_dir / "corrected_masks.json").write_text(json.dumps(self.mask_versions, indent=1))
        return self._cases

    def _registration(self) -> tuple[dict, dict]:
        if self._reg is None:
            if self.needs_atlas:
                self.template = template_image(self.cfg)
                self._reg = register_cases(self.cases, self.cfg, self.template, self.run_dir, self.progress)
            else:
                self._reg = ({}, {})
        return self._reg

    def patients(self) -> list[Patient]:
        return [Patient(c.patient_id, c.grade, None, [c.case_id]) for c in self.cases]

    def split_data(self, name: str, train_patients: list[str], val_patients: list[str]) -> SplitData:
        warped, transforms = self._registration()
        atlas = None
        if self.needs_atlas:  # this split's training patients only
            atlas = (fold_atlas_image(warped, self.cases, train_patients, self.template) if name != "final"
                     else atlas_from_warped([warped[c.case_id] for c in self.cases if c.patient_id in train_patients],
                                            self.template))
        samples = self._slices(atlas, transforms)
        if self.arch.get("prior_input") and self.arch.get("dual_guidance") and atlas is not None:
            # MIG-Net's location prior as a sample key: the same FPG map (on the working grid, which is
            # brain-centred and the same at inference) on every slice, so the training transforms pad, rotate
            # and crop it with the image (issue 17); one array shared by all samples
            import numpy as np

            from MedGradeSegmentLib.segmentation.fpg import location_prior_2d

            pm = location_prior_2d(atlas, int(self.arch.get("prior_size", 224)), self.cfg.fov_mm, self.template,
                                   self.cfg.inplane_spacing).astype(np.float32)[None]
            samples = [dict(s, prior=pm) for s in samples]
        train = [s for s in samples if s["patient_id"] in set(train_patients)]
        val = [s for s in samples if s["patient_id"] in set(val_patients)]
        cap = int(self.settings.get("val_max_samples") or 0)
        if cap and len(val) > cap:  # equally spaced over patients, sequences and slices: a cheaper selection
            import numpy as np  # metric on a shared CPU (every validation patient still counts)

            val = [val[i] for i in np.unique(np.linspace(0, len(val) - 1, cap).round().astype(int))]
        c = self.cfg
        ds = slice_dataset(train, train_transforms(c.pad, c.crop, c.noise_std, rotate=c.rotate))
        return SplitData(name, ds, val if val_patients else None, list(train_patients), list(val_patients),
                         {"atlas": atlas, "train_samples": train})

    def _slices(self, atlas: sitk.Image | None, transforms: dict) -> list[dict[str, Any]]:
        """Every case's training slices, through the memory-mapped slice cache unless ``slice_cache`` is off."""
        if not self.settings.get("slice_cache", True):
            return fold_samples(prepared_volumes(self.cases, self.cfg, atlas, transforms), self.cfg)
        from ..slice_cache import cached, file_signature

        atlas_sig = None
        if atlas is not None:
            import hashlib

            atlas_sig = hashlib.sha256(sitk.GetArrayViewFromImage(atlas).tobytes()).hexdigest()
        out, self.cache_hits = [], 0
        for case, spec in zip(self.cases, self.cfg.cases):
            files = [p for p in (*spec.images.values(), spec.mask, spec.brain_mask) if p]
            if spec.case_dir:
                files += [p for p in Path(spec.case_dir).rglob("*") if p.is_file() and p.suffix in (".gz", ".json")]
            tfm = transforms.get(case.case_id)
            parts = {"case": case.case_id, "patient": case.patient_id, "files": file_signature(sorted(map(str, files))),
                     "settings": {k: getattr(self.cfg, k) for k in SLICE_FIELDS}, "grade": case.grade,
                     "lesion_labels": spec.lesion_labels, "atlas": atlas_sig,
                     "transform": _transform_sig(tfm),
                     "mask_version": getattr(self, "mask_versions", {}).get(case.case_id)}
            samples, hit = cached(parts, lambda c=case: fold_samples(prepared_volumes([c], self.cfg, atlas, transforms), self.cfg))
            out += samples
            self.cache_hits += int(hit)
        return out

    def build_model(self, split: SplitData) -> nn.Module:
        return build_split_model(self.arch, split.extra["atlas"], self.cfg, self.template)

    def training_step(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
        return training_loss(model, batch, self.cfg, self.arch, self.loss_fn, device,
                             getattr(self, "channels_last", False))

    def validate(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, float]:
        """The selection metric (issue 17): Dice pooled over every validation slice, lesion-free ones included,
        so false positives on lesion-free slices count (as in the per-patient 3D Dice it stands for); the
        per-slice Hausdorff distance is left to ``finish_split`` (it cost most of the validation time)."""
        import numpy as np

        from MedGradeSegmentLib.segmentation.infer import predict_slices

        inter = total = 0.0
        dsc_lesion = []
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, s in enumerate(split.val):
            by_shape.setdefault(tuple(s["image"][0].shape), []).append(i)
        for idx in by_shape.values():
            prob = predict_slices(model, np.stack([split.val[i]["image"][0] for i in idx]), str(device),
                                  max(self.cfg.batch_size, 16))
            for j, i in enumerate(idx):
                p, y = prob[j] >= 0.5, split.val[i]["label"][0] > 0
                a, b, c = float((p & y).sum()), float(p.sum()), float(y.sum())
                inter, total = inter + a, total + b + c
                if c:
                    dsc_lesion.append(2 * a / (b + c))
        return {"val_dsc": 2 * inter / total if total else 0.0,
                "val_dsc_lesion_slices": float(np.mean(dsc_lesion)) if dsc_lesion else math.nan}

    def finish_split(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, Any]:
        sdir = self.run_dir / "splits" / split.name
        if split.extra["atlas"] is not None:
            sitk.WriteImage(split.extra["atlas"], str(sdir / "fpg_atlas.nii.gz"))
        if split.val is None:
            m = evaluate(model, split.extra["train_samples"], str(device), self.cfg.batch_size,
                         self.cfg.inplane_spacing or 1.0)
            m["note"] = "scored on its own training slices (not a validation score)"
            return {"final_train": m}
        fold = int(split.name[4:]) if split.name.startswith("fold") else split.name
        if split.test_patients:
            # a three-part split (issue 17): the validation patients chose the checkpoint and stopped training;
            # the figures of the fold are the test patients', whom neither training nor selection saw
            inner = self.validate(model, split, device)
            m = {"inner_validation": {"dsc": inner["val_dsc"], **inner}, "fold": fold,
                 "train_patients": split.train_patients,
                 "val_patients": split.val_patients, "test_patients": split.test_patients}
            m["per_patient"] = self.patient_metrics(model, split.test_patients, device)
            m["per_patient_summary"] = summarise_patients(m["per_patient"])
            m["dsc"] = m["per_patient_summary"].get("dice_3d", {}).get("mean", math.nan) \
                if isinstance(m["per_patient_summary"].get("dice_3d"), dict) else math.nan
            m["hd95_mm"] = math.nan
            return m
        m = evaluate(model, split.val, str(device), self.cfg.batch_size, self.cfg.inplane_spacing or 1.0)
        m.update({"fold": fold, "train_patients": split.train_patients, "val_patients": split.val_patients})
        m["per_patient"] = self.patient_metrics(model, split.val_patients, device)
        m["per_patient_summary"] = summarise_patients(m["per_patient"])
        return m

    @torch.no_grad()
    def patient_metrics(self, model: nn.Module, patients: list[str], device: torch.device) -> list[dict[str, Any]]:
        """Whole-volume metrics of each held-out patient (every slice segmented, as at inference, the
        sequences the patient has, complete union): 3D Dice, slice DSC over all slices, max HD, HD95."""
        import numpy as np

        from MedGradeSegmentLib.segmentation.infer import segment_images
        from MedGradeSegmentLib.segmentation.metrics import patient_metrics

        rows = []
        for c in (c for c in self.cases if c.patient_id in set(patients)):
            seqs = [s for s in self.cfg.sequences if s in c.images]
            r = segment_images(model, c.images, seqs, c.reference, brain_mask=c.brain_mask, device=str(device),
                               inplane_spacing=self.cfg.inplane_spacing, fov_mm=self.cfg.fov_mm,
                               keep_largest=self.cfg.largest_component)
            sp = c.mask.GetSpacing()
            m = patient_metrics(sitk.GetArrayFromImage(r.mask) > 0, sitk.GetArrayFromImage(c.mask) > 0,
                                (sp[2], sp[1], sp[0]))
            m.update(case=c.case_id, patient_id=c.patient_id, sequences=seqs, grade=c.grade)
            rows.append({k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in m.items()})
        return rows

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        folds = [r["finish"] for r in results if r["name"] != "final"]
        out: dict[str, Any] = {"folds": folds, "dsc_mean": finite_mean([m["dsc"] for m in folds]),
                               "hd95_mm_mean": finite_mean([m["hd95_mm"] for m in folds]),
                               "architecture": self.arch.get("name", "MIGNet")}
        rows = [r for m in folds for r in m.get("per_patient", [])]
        if rows:  # pooled over the held-out patients of every fold (each patient held out once)
            out["per_patient"] = summarise_patients(rows)
        final = [r for r in results if r["name"] == "final"]
        if final:
            out["final_train"] = final[0]["finish"].get("final_train")
            out["final_epochs"] = final[0]["epochs_run"]
        return out

    def write_bundle(self, model: nn.Module, split: SplitData, out_dir: Path, summary: dict[str, Any]) -> Path | None:
        atlas = split.extra["atlas"]
        if atlas is not None:
            sitk.WriteImage(atlas, str(self.run_dir / "fpg_atlas.nii.gz"))
        if not self.cfg.model_id:
            return None
        from MedGradeSegmentLib.segmentation.model_bundle import write_model_bundle

        folds = summary.get("folds", [])
        seg_summary = {k: v for k, v in summary.items() if k != "folds"}
        result = TrainResult(model.to("cpu").eval(), self.arch, atlas, folds, seg_summary, self.run_dir)
        return write_model_bundle(out_dir / self.cfg.model_id, result, self.cfg)


def run_config(cfg: TrainConfig) -> dict[str, Any]:
    """The run config equivalent to a train-seg TrainConfig."""
    kind = {k: v for k, v in cfg.to_dict().items() if k not in RUNNER_FIELDS}
    kind["name"] = SegmentationKind.name
    return {"kind": kind, "seed": cfg.seed, "final_fit": cfg.final_fit, "register": False,
            "split": {"mode": "kfold", "folds": cfg.folds} if cfg.folds >= 2 else {"mode": "none"},
            "train": {"epochs": cfg.epochs, "final_epochs": cfg.final_epochs, "batch_size": cfg.batch_size,
                      "optimizer": {"name": "AdamW", "lr": cfg.lr, "weight_decay": cfg.weight_decay},
                      "amp": cfg.amp, "num_workers": cfg.num_workers, "device": cfg.device,
                      "max_steps_per_epoch": cfg.max_steps_per_epoch, "restore_best": False}}


def train(cfg: TrainConfig, progress: Progress | None = None, stdout: Any = None) -> TrainResult:
    """``train-seg``: cross-validate (and with ``final_fit`` train the shipped model) through the runner;
    ``cfg.output_dir`` is the run folder. With ``resume`` (default) a folder holding a run continues it,
    with ``epochs`` extended when ``cfg.epochs`` is larger."""
    from ..runner.loop import run_training

    out = Path(cfg.output_dir)
    rcfg = run_config(cfg)
    if cfg.resume and (out / "config.json").is_file():
        res = run_training(None, out, resume=True, progress=progress, stdout=stdout,
                           overrides={"train": {"epochs": cfg.epochs, "final_epochs": cfg.final_epochs}})
    else:
        res = run_training(rcfg, out, progress=progress, stdout=stdout)
    s = res.summary
    summary = {"folds": len(s.get("folds", [])), "fold_epochs": cfg.epochs, "dsc_mean": s.get("dsc_mean"),
               "hd95_mm_mean": s.get("hd95_mm_mean"), "device": s["device"], "architecture": s.get("architecture")}
    if "final" in [r["name"] for r in res.splits]:
        summary["final_epochs"] = cfg.final_epochs or cfg.epochs
        summary["final_train"] = s.get("final_train")
    else:
        summary["shipped_fold"] = int(s["bundle_from"][4:])
    (out / "metrics.json").write_text(json.dumps({"summary": summary, "folds": s.get("folds", [])}, indent=2,
                                                 default=lambda v: None if isinstance(v, float) and math.isnan(v) else str(v)))
    kind: SegmentationKind = res.kind  # type: ignore[assignment]
    split_atlas = None
    if kind.needs_atlas and (out / "fpg_atlas.nii.gz").is_file():
        split_atlas = sitk.ReadImage(str(out / "fpg_atlas.nii.gz"))
    history = json.loads((out / "splits" / s["bundle_from"] / "result.json").read_text()).get("last")
    result = TrainResult(res.model.to("cpu").eval(), kind.arch, split_atlas, s.get("folds", []), summary, out,
                         [history] if history else [])
    result.bundle = res.bundle
    return result


class _GivenSamples(SegmentationKind):
    """A model and its slice samples prepared by the caller (experiments with their own slice rule)."""

    def __init__(self, model: nn.Module, samples: list[dict[str, Any]], cfg: TrainConfig, arch: dict[str, Any],
                 run_dir: Path):
        ModelKind.__init__(self, {}, run_dir)
        self.cfg, self.arch, self.model, self.samples = cfg, arch, model, samples
        self.needs_atlas, self.loss_fn, self.progress = False, FPGLoss(cfg.dice_weight), Progress()

    def patients(self) -> list[Patient]:
        return [Patient(p) for p in sorted({s["patient_id"] for s in self.samples})]

    def split_data(self, name: str, train_patients: list[str], val_patients: list[str]) -> SplitData:
        c = self.cfg
        ds = slice_dataset(self.samples, train_transforms(c.pad, c.crop, c.noise_std, rotate=c.rotate))
        return SplitData(name, ds, None, list(train_patients), [], {"atlas": None, "train_samples": self.samples})

    def build_model(self, split: SplitData) -> nn.Module:
        return self.model

    def finish_split(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, Any]:
        return {}

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        return {}

    def write_bundle(self, model: nn.Module, split: SplitData, out_dir: Path, summary: dict[str, Any]) -> None:
        return None


def fit(model: nn.Module, samples: list[dict[str, Any]], cfg: TrainConfig, arch: dict[str, Any], device: str,
        ckpt: str | Path, progress: Progress | None = None, epochs: int | None = None) -> list[dict[str, Any]]:
    """Train ``model`` on prepared ``samples`` through the runner (the run folder is ``<ckpt>-run``; with
    ``cfg.resume`` an existing one continues). Returns ``[{"epoch", "loss", "seconds"}, ...]``."""
    import shutil

    from ..runner.loop import run_training

    run = Path(ckpt).with_name(Path(ckpt).stem + "-run")
    resume = bool(cfg.resume) and (run / "config.json").is_file()
    if not resume:
        shutil.rmtree(run, ignore_errors=True)
    rcfg = {"kind": {"name": SegmentationKind.name}, "seed": cfg.seed, "register": False, "split": {"mode": "none"},
            "train": {"epochs": int(epochs or cfg.epochs), "batch_size": cfg.batch_size, "amp": cfg.amp,
                      "optimizer": {"name": "AdamW", "lr": cfg.lr, "weight_decay": cfg.weight_decay},
                      "max_steps_per_epoch": cfg.max_steps_per_epoch, "num_workers": cfg.num_workers,
                      "device": device, "drop_last": len(samples) > cfg.batch_size or "auto"}}
    kind = _GivenSamples(model, samples, cfg, arch, run)
    run_training(None if resume else rcfg, run, resume=resume, kind=kind, progress=progress, stdout=None)
    rows = [json.loads(x) for x in (run / "splits" / "final" / "metrics.jsonl").read_text().splitlines()]
    return [{"epoch": r["epoch"] - 1, "loss": r["train_loss"], "seconds": r["seconds"]} for r in rows]
