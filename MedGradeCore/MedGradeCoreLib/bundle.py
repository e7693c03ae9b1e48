"""Model bundles: a folder (or zip) of weights + extra files + ``manifest.json``.

One :class:`ModelManifest` type describes every trained model (segmentation, grading, breast).
Every file of the bundle is listed in the manifest with its sha256, and loading refuses a bundle
whose files do not match. Weights are ``safetensors`` (or ``torch.load(weights_only=True)``);
nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from MedGradeCoreLib import __version__
from MedGradeCoreLib.errors import BundleError
from MedGradeCoreLib.hashing import sha256_file

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
# A model id names a folder of the library: letters, digits and ``._-``, starting with a letter or digit.
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Bounds on what a bundle zip may expand to (refused before anything is extracted).
MAX_BUNDLE_BYTES = int(os.environ.get("MEDGRADE_MAX_BUNDLE_BYTES", 8 << 30))
MAX_COMPRESSION_RATIO = 100.0  # weights and images barely compress; a zip bomb expands thousands of times
_RATIO_FLOOR = 1 << 20  # members smaller than this are not ratio-checked (JSON, text compress well)


def check_model_id(model_id: object, source: str = "manifest") -> str:
    """``model_id`` when it is a safe folder name (letters, digits, ``._-``); :class:`BundleError` otherwise."""
    if not isinstance(model_id, str) or not MODEL_ID_PATTERN.fullmatch(model_id):
        raise BundleError(f"{source}: model_id {model_id!r} is not allowed; a model id is 1-128 letters, digits, "
                          "'.', '_' or '-' starting with a letter or digit (no '/', '..', spaces or absolute paths)")
    return model_id


def check_member_name(rel: object, source: str = "manifest") -> str:
    """A file name listed in a manifest: relative, '/'-separated, inside the bundle (no '..', no drive)."""
    text = rel if isinstance(rel, str) else ""
    parts = text.split("/")
    if (not text or "\\" in text or ":" in text or text.startswith("/") or "\0" in text
            or any(part in ("", ".", "..") for part in parts) or text == MANIFEST_NAME):
        raise BundleError(f"{source}: file entry {rel!r} points outside the bundle or is not a plain relative "
                          "path; refused")
    return text


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
        if not isinstance(data, dict):
            raise BundleError(f"{source}: the manifest is not a JSON object")
        missing = {"model_id", "kind", "architecture", "inputs"} - set(data)
        if missing:
            raise BundleError(f"{source}: manifest lacks {', '.join(sorted(missing))}")
        check_model_id(data["model_id"], source)
        files = data.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise BundleError(f"{source}: 'files' must map file names to sha256 strings")
        for rel in files:
            check_member_name(rel, source)
        return cls(**{k: v for k, v in data.items() if k in known})


def write_bundle(folder: str | Path, manifest: ModelManifest, files: dict[str, str | Path]) -> Path:
    """Copy ``files`` (relative name -> source path) into ``folder`` and write the hashed manifest.

    The folder is written under a temporary name and renamed at the end, so a failure never
    leaves a half-written bundle behind.
    """
    folder = Path(folder)
    check_model_id(manifest.model_id, str(folder))
    for rel in files:
        check_member_name(rel, str(folder))
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
    root = folder.resolve()
    for rel, expected in manifest.files.items():
        f = folder / check_member_name(rel, str(folder / MANIFEST_NAME))
        if f.is_symlink() or not f.resolve().is_relative_to(root):
            raise BundleError(f"{f}: a link or a path leading outside the bundle; refused")
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
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read the weights ({exc})") from None
    except Exception as exc:  # safetensors' SafetensorError, pickle/zip errors of torch.load: a damaged file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BundleError(f"{path}: the weights file is corrupt or not a weights file ({reason})") from None


def zip_bundle(folder: str | Path, zip_path: str | Path) -> Path:
    folder, zip_path = Path(folder), Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, Path(folder.name) / f.relative_to(folder))
    return zip_path


def check_zip(zf: zipfile.ZipFile, zip_path: Path) -> tuple[str, ModelManifest, dict[str, zipfile.ZipInfo]]:
    """Check a bundle zip's member list against its manifest before anything is extracted.

    Returns (prefix of the bundle folder inside the zip, manifest, listed name -> member). Refuses: no or
    several manifests, duplicated or unsafe member names, links, members not listed in the manifest,
    listed files missing, a total uncompressed size above :data:`MAX_BUNDLE_BYTES` and members that
    expand more than :data:`MAX_COMPRESSION_RATIO` times (zip bombs).
    """
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise BundleError(f"{zip_path}: the zip lists a file twice; refused")
    files = [i for i in infos if not i.is_dir()]
    manifests = [i for i in files if i.filename.rsplit("/", 1)[-1] == MANIFEST_NAME]
    if not manifests:
        raise BundleError(f"{zip_path}: no {MANIFEST_NAME} inside; not a MedGrade model bundle")
    manifests.sort(key=lambda i: i.filename.count("/"))
    if len(manifests) > 1 and manifests[0].filename.count("/") == manifests[1].filename.count("/"):
        raise BundleError(f"{zip_path}: several {MANIFEST_NAME} files; one bundle per zip")
    top = manifests[0]
    prefix = top.filename[: -len(MANIFEST_NAME)]
    if prefix and not MODEL_ID_PATTERN.fullmatch(prefix.rstrip("/")):
        raise BundleError(f"{zip_path}: unsafe folder {prefix!r} inside the zip")
    if top.file_size > 1 << 20:
        raise BundleError(f"{zip_path}: {MANIFEST_NAME} is {top.file_size} bytes; refused")
    try:
        data = json.loads(zf.read(top))
    except (ValueError, zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{zip_path}: unreadable {MANIFEST_NAME} ({exc})") from None
    manifest = ModelManifest.from_dict(data, f"{zip_path}:{top.filename}")
    if not manifest.files:
        raise BundleError(f"{zip_path}: the manifest lists no files")
    listed: dict[str, zipfile.ZipInfo] = {}
    for info in files:
        if info is top:
            continue
        name = info.filename
        rel = name[len(prefix):] if name.startswith(prefix) else None
        if rel is None or rel not in manifest.files:
            raise BundleError(f"{zip_path}: {name!r} is not listed in the bundle's manifest; unlisted files are "
                              "refused")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise BundleError(f"{zip_path}: {name!r} is a symbolic link; refused")
        listed[rel] = info
    missing = sorted(set(manifest.files) - set(listed))
    if missing:
        raise BundleError(f"{zip_path}: the manifest lists {', '.join(missing[:3])} but the zip lacks "
                          f"{'it' if len(missing) == 1 else 'them'}")
    total = sum(i.file_size for i in files)
    if total > MAX_BUNDLE_BYTES:
        raise BundleError(f"{zip_path}: would expand to {total / 2**30:.1f} GiB, above the "
                          f"{MAX_BUNDLE_BYTES / 2**30:.1f} GiB limit for a model bundle; refused")
    for info in files:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR and ratio > MAX_COMPRESSION_RATIO:
            raise BundleError(f"{zip_path}: {info.filename!r} expands {ratio:.0f} times "
                              f"({info.compress_size} -> {info.file_size} bytes), a zip bomb; refused")
    return prefix, manifest, listed


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst: Path, expected_sha: str, zip_path: Path) -> None:
    """Stream one member to ``dst`` (never more than its declared size) and check its sha256."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    h, written = hashlib.sha256(), 0
    try:
        with zf.open(info) as src, open(dst, "xb") as out:
            while block := src.read(1 << 20):
                written += len(block)
                if written > info.file_size:
                    raise BundleError(f"{zip_path}: {info.filename!r} is larger than the zip declares; refused")
                h.update(block)
                out.write(block)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:  # CRC errors, truncated data
        raise BundleError(f"{zip_path}: {info.filename!r} is damaged ({exc})") from None
    if h.hexdigest() != expected_sha:
        raise BundleError(f"{zip_path}: {info.filename!r} has sha256 {h.hexdigest()[:12]}..., the manifest says "
                          f"{expected_sha[:12]}...; the bundle was altered or damaged, refused")


def unzip_bundle(zip_path: str | Path, dest_dir: str | Path) -> Path:
    """Install a bundle zip as ``<dest_dir>/<model_id>``; returns the bundle folder.

    The member list is checked against the manifest first (:func:`check_zip`); only the listed files are
    extracted, each hashed while it is written, into a hidden ``.<model_id>.partial`` folder that is
    renamed at the end, or removed on any failure.
    """
    zip_path, dest_dir = Path(zip_path), Path(dest_dir)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{zip_path}: not a readable zip file ({exc})") from exc
    with zf:
        prefix, manifest, listed = check_zip(zf, zip_path)
        root = dest_dir.resolve()
        final = dest_dir / manifest.model_id
        tmp = dest_dir / f".{manifest.model_id}.partial"
        for p in (final, tmp):
            if not p.resolve().is_relative_to(root) or p.resolve().parent != root:
                raise BundleError(f"{p}: outside the library folder {root}; refused")
        if final.exists() or final.is_symlink():
            raise BundleError(f"{final}: a model with id {manifest.model_id!r} is already installed")
        need = sum(i.file_size for i in listed.values())
        free = shutil.disk_usage(root).free
        if need > free:
            raise BundleError(f"{zip_path}: needs {need / 2**20:.0f} MB, only {free / 2**20:.0f} MB free in {root}")
        remove_tree(tmp)
        tmp.mkdir()
        try:
            for rel, info in listed.items():
                _extract_member(zf, info, tmp / rel, manifest.files[rel], zip_path)
            (tmp / MANIFEST_NAME).write_bytes(zf.read(prefix + MANIFEST_NAME))  # byte for byte: its sha256 is the id
            os.rename(tmp, final)
        except BaseException:
            remove_tree(tmp)
            raise
    return final


def remove_tree(path: Path) -> None:
    """Remove a folder (or a link/file in its place) without following links."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
