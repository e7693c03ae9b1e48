"""Grading model bundles: network weights (safetensors) + LightGBM head (its text format) + manifest.

Written with :func:`MedGradeCoreLib.bundle.write_bundle` (every file hashed in the manifest) and
loaded only after :func:`read_manifest` verified the hashes. A bundle round-trips exactly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from MedGradeCoreLib.bundle import ModelManifest, load_state_dict, read_manifest, save_state_dict, write_bundle
from MedGradeCoreLib.devices import choose_device
from MedGradeCoreLib.errors import BundleError

from .head_lgbm import load_head, save_head
from .model import GradingModel, GradingSettings

WEIGHTS = "network.safetensors"
HEAD = "head_lightgbm.txt"
KIND = "grading"


def save_grading_bundle(model: GradingModel, folder: str | Path, metrics: dict[str, Any] | None = None,
                        trained_on: str = "", description: str = "", training: dict[str, Any] | None = None
                        ) -> Path:
    """Write ``model`` as a bundle folder (refuses an existing folder)."""
    s = model.settings
    with tempfile.TemporaryDirectory() as tmp:
        files = {WEIGHTS: Path(tmp) / WEIGHTS}
        save_state_dict(model.net.state_dict(), files[WEIGHTS])
        if model.booster is not None:
            files[HEAD] = save_head(model.booster, Path(tmp) / HEAD)
        settings = s.to_dict()
        task = dict(settings.pop("task"), classes=[s.task.negative_class, s.task.positive_class])
        manifest = ModelManifest(
            model_id=model.model_id, kind=KIND, architecture=settings.pop("architecture"),
            inputs=settings.pop("sequences"), preprocessing=dict(settings, training=training or {}),
            task=task, metrics=metrics or {}, trained_on=trained_on, description=description)
        return write_bundle(folder, manifest, files)


def resolve_bundle(model: str | Path, root: str | Path | None = None) -> Path:
    """A bundle folder from a path or a model id in the library under ``root`` (``model_library.resolve_bundle``)."""
    from MedGradeCoreLib.model_library import resolve_bundle as resolve

    return resolve(model, root)


def load_grading_bundle(model: str | Path, device: str = "auto") -> GradingModel:
    """Load a verified grading bundle onto ``device`` (auto: a GPU when there is one)."""
    folder = resolve_bundle(model)
    manifest = read_manifest(folder, verify=True)
    if manifest.kind != KIND:
        raise BundleError(f"{folder}: a {manifest.kind!r} model, not a grading model")
    pre = {k: v for k, v in manifest.preprocessing.items() if k != "training"}
    task = {k: v for k, v in manifest.task.items() if k != "classes"}
    settings = GradingSettings.from_dict(dict(pre, task=task, architecture=manifest.architecture,
                                              sequences=list(manifest.inputs)))
    booster = load_head(folder / HEAD) if HEAD in manifest.files else None
    from MedGradeCoreLib.onnx_models import ONNX_FILE, is_onnx

    if is_onnx(manifest):  # ONNX Runtime on the CPU
        from .onnx_runtime import OnnxGradingNet

        net = OnnxGradingNet(folder / ONNX_FILE, settings.sequences, bool(settings.architecture.get("n_meta")))
        return GradingModel(net, settings, booster, manifest.model_id, manifest.files[ONNX_FILE], "cpu")
    from .networks import build_network

    net = build_network(settings.architecture)
    try:
        net.load_state_dict(load_state_dict(folder / WEIGHTS))
    except RuntimeError as exc:
        raise BundleError(f"{folder / WEIGHTS}: weights do not fit the architecture in the manifest ({exc})") from None
    dev = choose_device(device, manifest.min_gpu_memory_mb).device
    return GradingModel(net, settings, booster, manifest.model_id, manifest.files[WEIGHTS], dev)


DEFAULT_GRADING_MODELS = ("kinet-lgg-g2g3-t1c-flair-v1",)  # shipped, preferred in this order


def default_grading_model(sequences: list[str] | set[str], where: str | Path | None = None) -> str:
    """The grading model ``medgrade predict`` uses without ``--model``: a shipped default, else any
    library grading model, whose every input sequence the case has. Refuses naming what is missing."""
    from MedGradeCoreLib.errors import InputError
    from MedGradeCoreLib.model_library import list_models

    have = set(sequences)
    entries = [e for e in list_models(kind=KIND) if not e.error]
    order = sorted(entries, key=lambda e: (e.model_id not in DEFAULT_GRADING_MODELS,
                                           DEFAULT_GRADING_MODELS.index(e.model_id)
                                           if e.model_id in DEFAULT_GRADING_MODELS else 0, e.model_id))
    for e in order:
        if e.inputs and set(e.inputs) <= have:
            return e.model_id
    offers = "; ".join(f"{e.model_id} needs {', '.join(e.inputs)}" for e in order) or "no grading model installed"
    raise InputError(where, f"no grading model fits this case's sequences ({', '.join(sorted(have)) or 'none'}): "
                            f"{offers}; give --model")
