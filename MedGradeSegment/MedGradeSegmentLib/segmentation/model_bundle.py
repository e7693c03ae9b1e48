"""Segmentation model bundles: write (safetensors weights + FPG atlas + manifest) and load
(hash-verified manifest -> ready model), by model id from the library or by folder path."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TYPE_CHECKING

import SimpleITK as sitk

from MedGradeCoreLib.bundle import ModelManifest, load_state_dict, read_manifest, save_state_dict, write_bundle
from MedGradeCoreLib.errors import BundleError
from MedGradeCoreLib.hashing import sha256_file
from MedGradeCoreLib.progress import Progress
from .geometry import FOV_CENTRE, ORIENTATION
from .infer import SegmentationResult, segment_images

if TYPE_CHECKING:
    from .config import TrainConfig
    from .train import TrainResult

KIND = "segmentation"
WEIGHTS = "weights.safetensors"
ATLAS = "fpg_atlas.nii.gz"


def preprocessing_parameters(cfg: "TrainConfig") -> dict[str, Any]:
    """What inference must do to an input so it looks like the training data."""
    return {"inplane_spacing_mm": cfg.inplane_spacing, "orientation": ORIENTATION,
            "field_of_view_mm": cfg.fov_mm, "field_of_view_centre": FOV_CENTRE if cfg.fov_mm else None,
            "normalisation": "z-score inside the brain mask (non-zero voxels when none is given)",
            "expects": "skull-stripped volumes; sequences co-registered to the reference (medgrade preprocess)",
            "slice_axis": "axial", "input_channels": "one sequence per sample",
            "training_augmentation": {"pad": cfg.pad, "crop": cfg.crop, "noise_std": cfg.noise_std,
                                      "rot90": cfg.rotate},
            "fpg": {"template": Path(cfg.template).name, "s_neg": cfg.s_neg, "s_pos": cfg.s_pos,
                    "registration": "rigid+affine" if cfg.atlas_affine else "rigid"}}


def write_model_bundle(folder: str | Path, result: "TrainResult", cfg: "TrainConfig") -> Path:
    """Write a verified bundle for a trained model (``cfg.model_id`` names it)."""
    if not cfg.model_id:
        raise BundleError("a model bundle needs a model_id")
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[str, str | Path] = {WEIGHTS: Path(tmp) / WEIGHTS}
        save_state_dict(result.model.state_dict(), files[WEIGHTS])
        if result.atlas is not None:
            files[ATLAS] = Path(tmp) / ATLAS
            sitk.WriteImage(result.atlas, str(files[ATLAS]), useCompression=True)
        manifest = ModelManifest(
            model_id=cfg.model_id, kind=KIND, architecture=result.architecture, inputs=list(cfg.sequences),
            preprocessing=preprocessing_parameters(cfg),
            task={"label": "lesion", "classes": ["background", "lesion"], "fusion": "union",
                  "threshold": 0.5, "largest_component": bool(getattr(cfg, "largest_component", False)),
                  "grade_classes": ["LGG", "HGG"] if result.architecture.get("grade_branch") else []},
            metrics={"summary": result.summary, "folds": result.folds},
            trained_on=cfg.trained_on, description=cfg.description)
        return write_bundle(folder, manifest, files)


@dataclass
class LoadedModel:
    """A verified bundle turned into a model ready for inference (a torch module, or an ONNX Runtime session
    wrapper for an ONNX export: then torch is never imported)."""

    model: Any
    manifest: ModelManifest
    folder: Path
    weights_sha256: str
    atlas: sitk.Image | None

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    def provenance(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "weights_sha256": self.weights_sha256,
                "preprocessing": self.manifest.preprocessing, "architecture": self.manifest.architecture}


def bundle_folder(model: str | Path, models_root: str | Path | None = None) -> Path:
    """A bundle folder from a path, else a model id looked up in the model library."""
    from MedGradeCoreLib.model_library import resolve_bundle

    return resolve_bundle(model, models_root)


def load_segmentation_model(model: str | Path, device: str = "cpu", models_root: str | Path | None = None
                            ) -> LoadedModel:
    """Verify every file against the manifest (tampered bundles are refused), then build the model."""
    folder = bundle_folder(model, models_root)
    manifest = read_manifest(folder, verify=True)
    if manifest.kind != KIND:
        raise BundleError(f"{folder}: a {manifest.kind!r} model, not a segmentation model")
    from MedGradeCoreLib.onnx_models import ONNX_FILE, is_onnx

    if is_onnx(manifest):
        from .onnx_runtime import OnnxSegmenter

        atlas = sitk.ReadImage(str(folder / ATLAS)) if ATLAS in manifest.files else None
        return LoadedModel(OnnxSegmenter(folder / ONNX_FILE, int(manifest.architecture.get("divisor", 32))),
                           manifest, folder, manifest.files[ONNX_FILE], atlas)
    if WEIGHTS not in manifest.files:
        raise BundleError(f"{folder}: the manifest lists no {WEIGHTS}")
    from .baselines import build_model

    net = build_model(manifest.architecture)
    try:
        net.load_state_dict(load_state_dict(folder / WEIGHTS), strict=True)
    except RuntimeError as exc:
        raise BundleError(f"{folder / WEIGHTS}: weights do not fit the manifest's architecture "
                          f"({str(exc).splitlines()[0]})") from exc
    net.to(device).eval()
    try:
        atlas = sitk.ReadImage(str(folder / ATLAS)) if ATLAS in manifest.files else None
    except RuntimeError as exc:
        raise BundleError(f"{folder / ATLAS}: the FPG atlas cannot be read ({str(exc).strip().splitlines()[-1]})"
                          ) from None
    return LoadedModel(net, manifest, folder, sha256_file(folder / WEIGHTS), atlas)


def segment_with_model(loaded: LoadedModel, images: dict[str, sitk.Image], reference: str | None = None,
                       output_geometry: sitk.Image | None = None, brain_mask: sitk.Image | None = None,
                       keep_largest: bool | None = None, device: str = "cpu", batch_size: int = 8,
                       progress: Progress | None = None) -> SegmentationResult:
    """:func:`infer.segment_images` with the bundle's inputs, spacing and threshold."""
    m = loaded.manifest
    result = segment_images(
        loaded.model.to(device), images, m.inputs, reference, output_geometry,
        threshold=float(m.task.get("threshold", 0.5)),
        keep_largest=m.task.get("largest_component", False) if keep_largest is None else keep_largest,
        inplane_spacing=m.preprocessing.get("inplane_spacing_mm", 1.0), brain_mask=brain_mask, device=device,
        batch_size=batch_size, progress=progress, fov_mm=m.preprocessing.get("field_of_view_mm"))
    result.info.update(loaded.provenance())
    return result
