"""ONNX exports of model bundles: ``medgrade models export --onnx [--int8 dynamic|static]``.

An export is a bundle like any other (every file's sha256 in the manifest) whose ``architecture`` says
``runtime: "onnx"`` and names its source (model id, the source bundle's manifest sha256, its weights' sha256)
and its quantisation. The Lib that owns a bundle kind does the export (``<Lib>.onnx_export`` with ``KINDS`` and
``export(source, manifest, work, int8, calibration) -> (files, architecture)``), found like the commands are,
so the core names no Lib. Inference runs with ONNX Runtime's CPU execution provider (:func:`session`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

from MedGradeCoreLib.bundle import ModelManifest, bundle_sha256, read_manifest, write_bundle
from MedGradeCoreLib.errors import BundleError, MedGradeError

RUNTIME = "onnx"
ONNX_FILE = "model.onnx"
INT8_MODES = ("dynamic", "static")
OPSET = 17


def available() -> bool:
    """ONNX Runtime is installed (``pip install medgrade[onnx]``)."""
    return importlib.util.find_spec("onnxruntime") is not None


def is_onnx(manifest: ModelManifest) -> bool:
    return manifest.architecture.get("runtime") == RUNTIME


def cpu_threads() -> int:
    """The cores this process may use (ONNX Runtime's intra-op threads); ``MEDGRADE_THREADS`` caps them (set by
    the cohort pool's workers so that N workers share the cores)."""
    if os.environ.get("MEDGRADE_THREADS", "").isdigit() and int(os.environ["MEDGRADE_THREADS"]) > 0:
        return int(os.environ["MEDGRADE_THREADS"])
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def session(path: str | Path, threads: int = 0) -> Any:
    """An ONNX Runtime session on the CPU execution provider with ``threads`` intra-op threads (0: every core);
    a one-line :class:`MedGradeError` when ONNX Runtime is absent."""
    if not available():
        raise MedGradeError(f"{path}: an ONNX model needs onnxruntime (pip install 'medgrade[onnx]')")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_graph(module: Any, dummy: tuple, work: Path, int8: str | None, input_names: list[str],
                 output_names: list[str], dynamic_axes: dict[str, dict[int, str]]) -> Path:
    """The FP32 graph of a torch ``module`` (eval, no grad, opset :data:`OPSET`, the TorchScript exporter) in
    ``work``: ``model.onnx``, or ``fp32.onnx`` when :func:`finish_export` quantises it next."""
    import torch

    fp32 = work / ("fp32.onnx" if int8 else ONNX_FILE)
    with torch.no_grad():
        torch.onnx.export(module.eval(), dummy, str(fp32), opset_version=OPSET, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, dynamo=False)
    return fp32


def finish_export(fp32: Path, work: Path, arch: dict[str, Any], int8: str | None, calibration: str | Path | None,
                  calibrate: Callable[[], list[dict[str, Any]]], op_types: Sequence[str] | None = None) -> Path:
    """``work/model.onnx``: the FP32 graph, or with ``int8`` its :func:`quantize`\ d copy (static INT8 calibrated
    on ``calibrate()``, the inputs of the cases under ``calibration``), recorded in ``arch["quantization"]``;
    ``op_types``: the operator types to quantise (None: ONNX Runtime's default, every supported one)."""
    if int8:
        calib = calibrate() if int8 == "static" and calibration else None
        arch["quantization"] = quantize(fp32, work / ONNX_FILE, int8, calib, op_types)
        if calibration:
            arch["quantization"]["calibration_data"] = str(calibration)
    return work / ONNX_FILE


def quantize(fp32: Path, out: Path, mode: str, calibration: list[dict[str, Any]] | None = None,
             op_types: Sequence[str] | None = None) -> dict[str, Any]:
    """INT8 weights (``dynamic``: activations quantised at run time) or INT8 weights and activations (``static``:
    QDQ, activation ranges calibrated on ``calibration`` inputs, MinMax). Returns what was done (manifest)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode not in INT8_MODES:
        raise MedGradeError(f"--int8 must be one of {', '.join(INT8_MODES)}, not {mode!r}")
    pre = out.with_name("pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    if mode == "dynamic":
        quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, per_channel=True)
        return {"mode": "dynamic", "weights": "int8 per channel", "activations": "uint8 at run time",
                "tool": "onnxruntime.quantization.quantize_dynamic"}
    if not calibration:
        raise MedGradeError(f"{fp32}: static INT8 needs calibration inputs (cohort slices)")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration)

        def get_next(self) -> dict[str, Any] | None:
            return next(self._it, None)

    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax,
                    op_types_to_quantize=list(op_types) if op_types else None)
    return {"mode": "static", "weights": "int8 per channel", "activations": "int8, QDQ",
            "op_types": list(op_types) if op_types else "every supported one",
            "calibration": {"method": "MinMax", "batches": len(calibration)},
            "tool": "onnxruntime.quantization.quantize_static"}


def _exporter(kind: str) -> ModuleType:
    from .command_packages import command_package_names

    for name in command_package_names():
        try:
            mod = importlib.import_module(f"{name}.onnx_export")
        except ModuleNotFoundError as exc:
            if exc.name in (name, f"{name}.onnx_export"):
                continue
            raise
        if kind in getattr(mod, "KINDS", ()):
            return mod
    raise BundleError(f"no ONNX export for {kind!r} models (segmentation and grading models export)")


def export_id(model_id: str, int8: str | None) -> str:
    return f"{model_id}-onnx" + (f"-int8-{int8}" if int8 else "")


def export_bundle(model: str | Path, root: str | Path | None = None, int8: str | None = None,
                  out: str | Path | None = None, calibration: str | Path | None = None,
                  model_id: str | None = None) -> Path:
    """Export a bundle (model id or folder) to ONNX (+ INT8) as a new bundle: in the library (``root``) as
    ``<id>-onnx[-int8-<mode>]``, or in ``out``. ``calibration``: a case or cohort folder for static INT8."""
    from .model_library import find_model, library_root

    if not available() or importlib.util.find_spec("onnx") is None:
        raise MedGradeError("exporting to ONNX needs onnx and onnxruntime (pip install 'medgrade[onnx]')")
    src = Path(model) if Path(model).is_dir() else Path(find_model(str(model), root).path)
    manifest = read_manifest(src, verify=True)
    if is_onnx(manifest):
        raise BundleError(f"{src}: already an ONNX export (of {manifest.architecture.get('source_model', {})})")
    if int8 is not None and int8 not in INT8_MODES:
        raise MedGradeError(f"--int8 must be one of {', '.join(INT8_MODES)}, not {int8!r}")
    new_id = model_id or export_id(manifest.model_id, int8)
    dest = Path(out) if out else library_root(root) / new_id
    if dest.exists():
        raise BundleError(f"{dest}: already exists; remove it (medgrade models remove {new_id}) or choose --out")
    exporter = _exporter(manifest.kind)
    with tempfile.TemporaryDirectory(prefix="medgrade-onnx-") as tmp:
        files, arch = exporter.export(src, manifest, Path(tmp), int8, calibration)
        weights = next((manifest.files[k] for k in sorted(manifest.files) if k.endswith(".safetensors")), "")
        arch = dict(arch, runtime=RUNTIME, onnx_file=ONNX_FILE, opset=OPSET,
                    source_model={"model_id": manifest.model_id, "bundle_sha256": bundle_sha256(src),
                                  "weights_sha256": weights})
        exported = ModelManifest(
            model_id=new_id, kind=manifest.kind, architecture=arch, inputs=list(manifest.inputs),
            preprocessing=dict(manifest.preprocessing), task=dict(manifest.task),
            metrics=dict(manifest.metrics) if not int8 else {"source_model_unquantised": dict(manifest.metrics)},
            trained_on=manifest.trained_on, min_gpu_memory_mb=0,
            description=f"ONNX{' INT8 (' + int8 + ')' if int8 else ''} export of {manifest.model_id}. "
                        + manifest.description)
        return write_bundle(dest, exported, files)


def copy_files(src: Path, manifest: ModelManifest, names: list[str], work: Path) -> dict[str, Path]:
    """The source bundle's ``names`` (those it has) copied into ``work``: extra files an export keeps."""
    out = {}
    for name in names:
        if name in manifest.files:
            out[name] = work / name
            out[name].parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, out[name])
    return out


def source_of(entry: Any) -> tuple[str, bool] | None:
    """(source model id, quantised) of a library entry that is an ONNX export, else None."""
    try:
        arch = read_manifest(entry.path, verify=False).architecture
    except BundleError:
        return None
    if arch.get("runtime") != RUNTIME:
        return None
    return str(arch.get("source_model", {}).get("model_id", "")), "quantization" in arch


def fast_variant(entry: Any, entries: list[Any]) -> Any:
    """``entry``'s FP32 ONNX export when one is among ``entries`` and ONNX Runtime is installed (the fast path,
    agreeing with torch within 1e-3), else ``entry``. INT8 exports run only when named."""
    if not available():
        return entry
    for e in entries:
        src = source_of(e)
        if src is not None and not src[1] and src[0] == entry.model_id:
            return e
    return entry


def prefer_exports(entries: list[Any]) -> list[Any]:
    """The models to run when none is named: each model as its :func:`fast_variant`; exports themselves only
    through their source (an FP32 export whose source is not listed runs as it is, with ONNX Runtime)."""
    ids = {e.model_id for e in entries}
    out = []
    for e in entries:
        src = source_of(e)
        if src is None:
            out.append(fast_variant(e, entries))
        elif not src[1] and src[0] not in ids and available():
            out.append(e)
    return out
