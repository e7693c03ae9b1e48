"""Model bundles: a folder (or zip) of weights + extra files + ``manifest.json``.

One :class:`ModelManifest` type describes every trained model (segmentation, grading, breast).
Every file of the bundle is listed in the manifest with its sha256, and loading refuses a bundle
whose files do not match. Weights are ``safetensors`` (or ``torch.load(weights_only=True)``);
nothing is ever unpickled.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .errors import BundleError
from .hashing import sha256_file

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1


@dataclass
class ModelManifest:
    """What a trained model is, what it expects and how good it was."""

    model_id: str
    kind: str  # "segmentation" | "grading" | "breast-grading" | ...
    architecture: dict[str, Any]  # name + switches, e.g. {"name": "MIGNet", "fpg": True, ...}
    inputs: list[str]  # sequences/modalities expected, e.g. ["t1c", "t2"]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)  # e.g. {"label": "ki67", "positive_class": "high"}
    metrics: dict[str, Any] = field(default_factory=dict)  # per fold and pooled
    trained_on: str = ""  # honest description of the training data
    description: str = ""
    min_gpu_memory_mb: int = 0
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    created: str = ""
    medgrade_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "manifest") -> "ModelManifest":
        known = set(cls.__dataclass_fields__)
        missing = {"model_id", "kind", "architecture", "inputs"} - set(data)
        if missing:
            raise BundleError(f"{source}: manifest lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in known})


def write_bundle(folder: str | Path, manifest: ModelManifest, files: dict[str, str | Path]) -> Path:
    """Copy ``files`` (relative name -> source path) into ``folder`` and write the hashed manifest.

    The folder is written under a temporary name and renamed at the end, so a failure never
    leaves a half-written bundle behind.
    """
    folder = Path(folder)
    if folder.exists():
        raise BundleError(f"{folder}: already exists; remove it or choose another folder")
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        hashes = {}
        for rel, src in files.items():
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            hashes[rel] = sha256_file(dst)
        manifest.files = hashes
        manifest.created = manifest.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        (tmp / MANIFEST_NAME).write_text(manifest.to_json())
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_manifest(folder: str | Path, verify: bool = True) -> ModelManifest:
    """Read a bundle's manifest; with ``verify`` refuse missing or altered files."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{folder}: not a MedGrade model bundle (no {MANIFEST_NAME})")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: unreadable manifest ({exc})") from exc
    manifest = ModelManifest.from_dict(data, str(path))
    if verify:
        verify_bundle(folder, manifest)
    return manifest


def verify_bundle(folder: str | Path, manifest: ModelManifest) -> None:
    folder = Path(folder)
    if not manifest.files:
        raise BundleError(f"{folder}: manifest lists no files")
    for rel, expected in manifest.files.items():
        f = folder / rel
        if not f.is_file():
            raise BundleError(f"{f}: listed in the manifest but missing from the bundle")
        actual = sha256_file(f)
        if actual != expected:
            raise BundleError(
                f"{f}: sha256 {actual[:12]}... does not match the manifest's {expected[:12]}...; "
                "the bundle was altered or damaged, refusing to load it")


def bundle_sha256(folder: str | Path) -> str:
    """The sha256 of the manifest file: one id for the whole bundle (it hashes every file)."""
    return sha256_file(Path(folder) / MANIFEST_NAME)


def save_state_dict(state: dict[str, Any], path: str | Path) -> None:
    """Save torch weights as safetensors."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path))


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """Load weights without unpickling: safetensors, or ``torch.load(weights_only=True)``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def zip_bundle(folder: str | Path, zip_path: str | Path) -> Path:
    folder, zip_path = Path(folder), Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, Path(folder.name) / f.relative_to(folder))
    return zip_path


def unzip_bundle(zip_path: str | Path, dest_dir: str | Path) -> Path:
    """Extract a bundle zip into ``dest_dir``; returns the bundle folder. Verified before use."""
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{zip_path}: not a readable zip file ({exc})") from exc
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        manifests = [n for n in names if Path(n).name == MANIFEST_NAME]
        if not manifests:
            raise BundleError(f"{zip_path}: no {MANIFEST_NAME} inside; not a MedGrade model bundle")
        for n in names:
            p = Path(n)
            if p.is_absolute() or ".." in p.parts:
                raise BundleError(f"{zip_path}: unsafe path {n!r} inside the zip")
        root = Path(manifests[0]).parent
        tmp = dest_dir / (zip_path.stem + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        zf.extractall(tmp)
    src = tmp / root
    manifest = read_manifest(src)  # refuses a tampered bundle before it is installed
    final = dest_dir / manifest.model_id
    if final.exists():
        shutil.rmtree(tmp, ignore_errors=True)
        raise BundleError(f"{final}: a model with id {manifest.model_id!r} is already installed")
    src.rename(final)
    shutil.rmtree(tmp, ignore_errors=True)
    return final
