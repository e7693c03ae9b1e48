"""The model library: installed model bundles, bundles shipped with the package, and installing more.

One folder holds the installed bundles, one sub-folder each (named by ``model_id``):
``MEDGRADE_MODELS``, else ``<MEDGRADE_CACHE or ~/.cache/medgrade>/models``; Slicer passes its own.
Bundles shipped inside the packages (``<Lib>/bundled_models/<id>/``) are listed read-only.
Installing from a URL downloads with progress into a ``.part`` file that an interrupted transfer
resumes with an HTTP Range request, checks the zip's sha256 against the source entry (a mismatch is
refused and nothing is installed), then unpacks it with :func:`bundle.unzip_bundle`, which verifies
every file against the manifest. Offline machines import the same zip (or folder) instead.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from MedGradeCoreLib.bundle import (MANIFEST_NAME, bundle_sha256, check_model_id, check_zip, ModelManifest, read_manifest,
                     remove_tree, unzip_bundle)
from MedGradeCoreLib.errors import BundleError, MedGradeError
from MedGradeCoreLib.hashing import sha256_file
from MedGradeCoreLib.progress import Progress
from MedGradeCoreLib.resources import resource_file
from MedGradeCoreLib.sample_data import cache_dir

SOURCES_FILE = "model-sources.json"
SOURCE_KEYS = ("model_id", "url", "sha256")
_CHUNK = 1 << 16
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def check_sha256(value: object, what: str = "--sha256") -> str:
    """``value`` lower-cased when it is 64 hex digits; :class:`BundleError` otherwise (it is never a path)."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise BundleError(f"{what} {value!r} is not a sha256: expected 64 hexadecimal digits")
    return value.lower()


def inside_library(root: Path, path: Path) -> Path:
    """``path`` when it resolves (links followed) to an entry directly inside ``root``; refuses anything else.

    Every path the library writes, renames or deletes goes through this check.
    """
    real_root = root.resolve()
    real = path.resolve()
    if real.parent != real_root or path.parent.resolve() != real_root:
        raise BundleError(f"{path}: resolves to {real}, outside the model library {real_root}; refused")
    return path


@dataclass
class LibraryEntry:
    """One model as the library shows it (a table row in the panel, a line of ``models list``)."""

    model_id: str
    kind: str
    source: str  # "installed" | "bundled"
    path: str
    task: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    architecture: str = ""
    trained_on: str = ""
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    min_gpu_memory_mb: int = 0
    size_bytes: int = 0
    sha256: str = ""  # of the manifest, which hashes every file: one id for the whole bundle
    error: str = ""  # non-empty when the folder is not a readable bundle

    @property
    def read_only(self) -> bool:
        return self.source == "bundled"

    def metrics_summary(self) -> str:
        return metrics_summary(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelSource:
    """An installable bundle listed in ``Resources/model-sources.json``."""

    model_id: str
    url: str
    sha256: str  # of the zip file
    title: str = ""
    kind: str = ""
    size_bytes: int = 0
    min_gpu_memory_mb: int = 0


def library_root(root: str | Path | None = None) -> Path:
    """The folder of installed bundles (created on demand)."""
    if root is None:
        env = os.environ.get("MEDGRADE_MODELS")
        root = Path(env) if env else cache_dir() / "models"
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def bundled_dirs() -> list[Path]:
    """``bundled_models`` folders of the MedGrade packages present (found without importing them)."""
    from .command_packages import command_package_names

    dirs = []
    for name in command_package_names():  # every MedGrade*Lib present (the core names none of them)
        spec = importlib.util.find_spec(name)
        for loc in (spec.submodule_search_locations or []) if spec else []:
            d = Path(loc) / "bundled_models"
            if d.is_dir():
                dirs.append(d)
    return dirs


def metrics_summary(metrics: dict[str, Any], limit: int = 4) -> str:
    """``"dsc=0.812, hd95=12.3"`` from the pooled (or top-level) scalar metrics."""
    pooled = metrics.get("pooled") if isinstance(metrics.get("pooled"), dict) else metrics
    items = [(k, v) for k, v in pooled.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(f"{k}={v:.3g}" for k, v in items[:limit])


def _folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def library_entry(folder: Path, source: str) -> LibraryEntry:
    try:
        m = read_manifest(folder, verify=False)
    except BundleError as exc:
        return LibraryEntry(folder.name, "?", source, str(folder), error=str(exc))
    return LibraryEntry(
        model_id=m.model_id, kind=m.kind, source=source, path=str(folder), task=dict(m.task),
        inputs=list(m.inputs), architecture=str(m.architecture.get("name", "")), trained_on=m.trained_on,
        description=m.description, metrics=dict(m.metrics), min_gpu_memory_mb=int(m.min_gpu_memory_mb or 0),
        size_bytes=_folder_size(folder), sha256=bundle_sha256(folder))


def _bundle_folders(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and not p.name.endswith(".partial"))


def list_models(root: str | Path | None = None, include_bundled: bool = True,
                kind: str | None = None) -> list[LibraryEntry]:
    """Installed bundles, then shipped ones (an installed bundle hides a shipped one of the same id)."""
    entries = [library_entry(p, "installed") for p in _bundle_folders(library_root(root))]
    if include_bundled:
        seen = {e.model_id for e in entries}
        for d in bundled_dirs():
            for p in _bundle_folders(d):
                e = library_entry(p, "bundled")
                if e.model_id not in seen:
                    entries.append(e)
                    seen.add(e.model_id)
    return [e for e in entries if kind is None or e.kind == kind]


def find_model(model_id: str, root: str | Path | None = None) -> LibraryEntry:
    for e in list_models(root):
        if e.model_id == model_id:
            return e
    known = ", ".join(e.model_id for e in list_models(root)) or "none"
    raise BundleError(f"model {model_id!r} is not in the library ({library_root(root)}); installed: {known}")


def resolve_bundle(model: str | Path, root: str | Path | None = None) -> Path:
    """The one bundle resolver: a bundle folder given as a path, else a model id looked up in the library under
    ``root`` (``$MEDGRADE_MODELS`` ...) and then among the shipped bundles. A zip must be imported first."""
    path = Path(model)
    if path.is_dir():
        return path
    if path.suffix == ".zip":
        raise BundleError(f"{path}: import the zip into the model library first (medgrade models import)")
    return Path(find_model(str(model), root).path)


def load_model_manifest(model_id: str, root: str | Path | None = None) -> tuple[Path, ModelManifest]:
    """The bundle folder and its verified manifest (refuses altered files)."""
    e = find_model(model_id, root)
    return Path(e.path), read_manifest(e.path, verify=True)


# --- sources (Resources/model-sources.json) -------------------------------------------------------

def load_sources(path: str | Path | None = None) -> list[ModelSource]:
    """Installable bundles; an empty list when the extension lists none (or the file is absent)."""
    path = Path(path) if path else (Path(os.environ["MEDGRADE_MODEL_SOURCES"])
                                    if os.environ.get("MEDGRADE_MODEL_SOURCES") else resource_file(SOURCES_FILE))
    if path is None or not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from exc
    problems = validate_sources(data)
    if problems:
        raise BundleError(f"{path}: {'; '.join(problems)}")
    known = set(ModelSource.__dataclass_fields__)
    return [ModelSource(**{k: v for k, v in m.items() if k in known}) for m in data["models"]]


def validate_sources(data: Any) -> list[str]:
    """Problems with a model-sources document (empty when valid)."""
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return ["expected an object with a 'models' list"]
    problems = []
    for i, m in enumerate(data["models"]):
        missing = [k for k in SOURCE_KEYS if not isinstance(m, dict) or not m.get(k)]
        if missing:
            problems.append(f"models[{i}] lacks {', '.join(missing)}")
        elif len(m["sha256"]) != 64 or any(c not in "0123456789abcdef" for c in m["sha256"]):
            problems.append(f"models[{i}] sha256 is not 64 lower-case hex digits")
        elif not m["url"].startswith(("https://", "http://")):
            problems.append(f"models[{i}] url is not http(s)")
    return problems


def find_source(model_id: str, path: str | Path | None = None) -> ModelSource:
    for s in load_sources(path):
        if s.model_id == model_id:
            return s
    raise BundleError(f"no installable model {model_id!r} in {SOURCES_FILE}; "
                      "give its URL and sha256, or import a zip with 'medgrade models import'")


# --- downloading -------------------------------------------------------------------------------

class _Interrupted(Exception):
    pass


def _fetch_once(url: str, part: Path, progress: Progress | None, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the .part is already complete
            return
        raise
    with resp:
        length = int(resp.headers.get("Content-Length") or 0)
        if have and resp.status == 206:
            mode, done = "ab", have
        else:  # the server ignored the Range request: start again
            mode, done = "wb", 0
        total = done + length if length else 0
        with open(part, mode) as out:
            while block := resp.read(_CHUNK):
                out.write(block)
                done += len(block)
                if progress is not None and total:
                    progress(done / total, f"downloading {done >> 20} of {total >> 20} MB")
    if total and done < total:
        raise _Interrupted(f"connection closed after {done} of {total} bytes")


def download(url: str, dest: str | Path, sha256: str, progress: Progress | None = None,
             retries: int = 3, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` (Range), refusing a wrong sha256."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            _fetch_once(url, part, progress, timeout)
            break
        except (_Interrupted, OSError, http.client.HTTPException) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
                raise BundleError(f"{url}: download refused by the server (HTTP {exc.code})") from exc
            if attempt >= retries:
                kept = part.stat().st_size if part.exists() else 0
                raise BundleError(f"{url}: download interrupted ({exc}); {kept} bytes kept, "
                                  "install again to resume") from exc
            attempt += 1
    actual = sha256_file(part)
    if actual != sha256:
        part.unlink(missing_ok=True)
        raise BundleError(f"{url}: downloaded file has sha256 {actual[:12]}..., the model list says "
                          f"{sha256[:12]}...; refused, nothing installed")
    part.replace(dest)
    return dest


# --- installing, importing, removing ---------------------------------------------------------

def _zip_manifest(zip_path: Path) -> tuple[ModelManifest, str]:
    """The manifest inside a bundle zip and the sha256 of its bytes, after the zip's member list was
    checked against it (:func:`bundle.check_zip`); nothing is extracted."""
    import hashlib

    try:
        with zipfile.ZipFile(zip_path) as zf:
            prefix, manifest, _ = check_zip(zf, zip_path)
            raw = zf.read(prefix + MANIFEST_NAME)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{zip_path}: not a readable zip file ({exc})") from exc
    return manifest, hashlib.sha256(raw).hexdigest()


def _already_installed(root: Path, model_id: str, manifest_sha: str) -> Path | None:
    """The installed folder when the identical bundle is there; an error when a different one is."""
    final = inside_library(root, root / check_model_id(model_id))
    if not final.exists() and not final.is_symlink():
        return None
    if (final / MANIFEST_NAME).is_file() and bundle_sha256(final) == manifest_sha:
        return final
    raise BundleError(f"{final}: a different model with id {model_id!r} is installed; remove it first "
                      f"('medgrade models remove {model_id}')")


def _copy_folder_bundle(path: Path, manifest: ModelManifest, root: Path) -> Path:
    """Copy a verified bundle folder into the library: only the listed files, refusing links and unlisted files."""
    listed = set(manifest.files) | {MANIFEST_NAME}
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path).as_posix()
        if f.is_symlink():
            raise BundleError(f"{f}: a symbolic link inside the bundle folder; refused")
        if f.is_file() and rel not in listed:
            raise BundleError(f"{f}: not listed in the bundle's manifest; unlisted files are refused")
    final = inside_library(root, root / manifest.model_id)
    tmp = inside_library(root, root / f".{manifest.model_id}.partial")
    remove_tree(tmp)
    try:
        for rel in sorted(listed):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path / rel, tmp / rel)
        read_manifest(tmp, verify=True)
        os.rename(tmp, final)
    finally:
        remove_tree(tmp)
    return final


def bundle_kind_loaders() -> dict[str, str]:
    """Model kind -> ``"module:function"`` loader, as the Lib packages declare them (``BUNDLE_KINDS`` of their
    ``commands`` package; the core names none)."""
    from .command_packages import command_modules

    out: dict[str, str] = {}
    for mod in command_modules():
        out.update(getattr(mod, "BUNDLE_KINDS", {}) or {})
    return out


def check_bundle_kind(folder: Path, manifest: ModelManifest) -> None:
    """Load the bundle with its kind's loader: an unknown kind, or files that do not fit the kind the manifest
    claims (a breast model relabelled ``grading``), are refused."""
    import importlib

    loaders = bundle_kind_loaders()
    target = loaders.get(manifest.kind)
    if target is None:
        raise BundleError(f"{folder}: unknown model kind {manifest.kind!r} (this MedGrade loads "
                          f"{', '.join(sorted(loaders)) or 'none'})")
    module, func = target.split(":")
    try:
        getattr(importlib.import_module(module), func)(folder, device="cpu")
    except MedGradeError as exc:
        raise BundleError(f"{folder}: not a usable {manifest.kind!r} model: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a loader failing in any way means the bundle is not accepted
        raise BundleError(f"{folder}: not a usable {manifest.kind!r} model ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:200]})") from None


def _checked_install(folder: Path, manifest: ModelManifest) -> Path:
    """``folder`` just installed: kept only when its kind's loader accepts it."""
    try:
        check_bundle_kind(folder, manifest)
    except BaseException:
        remove_tree(folder)
        raise
    return folder


def import_bundle(path: str | Path, root: str | Path | None = None) -> LibraryEntry:
    """Install a bundle from a local zip or folder (offline machines). Verified, and loaded by its kind's
    loader, before it is listed; a refused import leaves nothing in the library."""
    path, root = Path(path), library_root(root)
    if path.is_dir():
        manifest = read_manifest(path, verify=True)
        existing = _already_installed(root, manifest.model_id, bundle_sha256(path))
        folder = existing or _checked_install(_copy_folder_bundle(path, manifest, root), manifest)
        return library_entry(folder, "installed")
    if not path.is_file():
        raise BundleError(f"{path}: no such file or folder")
    manifest, manifest_sha = _zip_manifest(path)
    folder = _already_installed(root, manifest.model_id, manifest_sha) or _checked_install(unzip_bundle(path, root),
                                                                                          manifest)
    return library_entry(folder, "installed")


def install_from_url(url: str, sha256: str, root: str | Path | None = None,
                     progress: Progress | None = None, retries: int = 3, timeout: float = 60.0) -> LibraryEntry:
    """Download a bundle zip (resumable, sha256-checked) and install it. A refused download or bundle
    leaves nothing behind; only an interrupted transfer keeps its ``.part`` file, to resume."""
    if not sha256:
        raise BundleError(f"{url}: no sha256 given; MedGrade installs only files it can verify")
    sha256 = check_sha256(sha256)
    if not url.startswith(("https://", "http://")):
        raise BundleError(f"{url}: not an http(s) URL")
    root = library_root(root)
    downloads = root / ".downloads"
    zip_path = downloads / f"{sha256[:16]}.zip"
    if downloads.is_symlink() or (downloads.exists() and downloads.resolve() != root.resolve() / ".downloads"):
        raise BundleError(f"{downloads}: not a plain folder inside the library; refused")
    try:
        if zip_path.is_file() and sha256_file(zip_path) != sha256:
            zip_path.unlink()
        if not zip_path.is_file():
            download(url, zip_path, sha256, progress, retries, timeout)
        entry = import_bundle(zip_path, root)
    except BundleError as exc:
        if "install again to resume" not in str(exc):
            zip_path.unlink(missing_ok=True)
            zip_path.with_name(zip_path.name + ".part").unlink(missing_ok=True)
            _drop_if_empty(downloads)
        raise
    zip_path.unlink(missing_ok=True)
    _drop_if_empty(downloads)
    return entry


def _drop_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def install_source(model_id: str, root: str | Path | None = None, progress: Progress | None = None,
                   sources: str | Path | None = None) -> LibraryEntry:
    """Install a bundle listed in ``Resources/model-sources.json`` by its id."""
    src = find_source(model_id, sources)
    return install_from_url(src.url, src.sha256, root, progress)


def remove_model(model_id: str, root: str | Path | None = None) -> Path:
    """Delete an installed bundle (shipped bundles are read-only). Only a folder inside the library is touched."""
    check_model_id(model_id, "model id")
    entry = find_model(model_id, root)
    if entry.read_only:
        raise BundleError(f"{entry.path}: model {model_id!r} ships with MedGrade and cannot be removed")
    lib = library_root(root)
    folder = inside_library(lib, Path(entry.path))
    if folder.is_symlink():
        raise BundleError(f"{folder}: a link, not a bundle folder of the library; refused")
    trash = inside_library(lib, folder.with_name(f".{folder.name}.removing"))
    remove_tree(trash)
    os.rename(folder, trash)
    shutil.rmtree(trash)
    return folder
