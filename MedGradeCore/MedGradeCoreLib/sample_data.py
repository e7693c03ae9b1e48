"""The sample-data registry: public URL + sha256 for each sample file, with a cache and mirrors.

``fetch_dataset("brain1")`` returns local paths, looking in this order:
1. mirror folders (``MEDGRADE_SAMPLE_MIRROR``, ``os.pathsep``-separated, or ``mirrors=``), laid out
   like the registry's relative paths (tests and CI point it at ``../shared/data``);
2. the cache folder (``MEDGRADE_CACHE``, default ``~/.cache/medgrade``) under ``sample-data/``;
3. a download from the public URL into the cache.
Every file is checked against its sha256; a mismatch is refused and never used.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.hashing import sha256_file
from MedGradeCoreLib.progress import Progress

REGISTRY_FILE = Path(__file__).with_name("sample_data.json")


@dataclass(frozen=True)
class SampleFile:
    path: str  # relative path, also the layout of a mirror folder
    url: str | None
    sha256: str


@lru_cache(maxsize=1)
def registry() -> dict[str, dict]:
    return json.loads(REGISTRY_FILE.read_text())["datasets"]


def dataset_names() -> list[str]:
    return sorted(registry())


def dataset_files(name: str) -> list[SampleFile]:
    try:
        entry = registry()[name]
    except KeyError:
        raise InputError(None, f"unknown sample dataset {name!r}; known: {', '.join(dataset_names())}") from None
    return [SampleFile(f["path"], f.get("url"), f["sha256"]) for f in entry["files"]]


def cache_dir() -> Path:
    return Path(os.environ.get("MEDGRADE_CACHE", Path.home() / ".cache" / "medgrade"))


def mirror_dirs(extra: list[str | Path] | None = None) -> list[Path]:
    env = [p for p in os.environ.get("MEDGRADE_SAMPLE_MIRROR", "").split(os.pathsep) if p]
    return [Path(p) for p in [*(extra or []), *env]]


_verified: dict[tuple[str, int, float], str] = {}


def _matches(path: Path, sha256: str) -> bool:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key not in _verified:
        _verified[key] = sha256_file(path)
    return _verified[key] == sha256


def local_file(f: SampleFile, mirrors: list[str | Path] | None = None) -> Path | None:
    """``f`` from a mirror or the cache when a copy with its sha256 is there (never downloads)."""
    for root in mirror_dirs(mirrors):
        p = root / f.path
        if p.is_file() and _matches(p, f.sha256):
            return p
    cached = cache_dir() / "sample-data" / f.path
    return cached if cached.is_file() and _matches(cached, f.sha256) else None


def fetch_file(f: SampleFile, mirrors: list[str | Path] | None = None, progress: Progress | None = None) -> Path:
    local = local_file(f, mirrors)
    if local is not None:
        return local
    cached = cache_dir() / "sample-data" / f.path
    if not f.url:
        raise InputError(f.path, "not found in any sample-data mirror and it has no public download URL; "
                                 "set MEDGRADE_SAMPLE_MIRROR to a folder that holds it")
    cached.parent.mkdir(parents=True, exist_ok=True)
    part = cached.with_name(cached.name + ".part")
    try:
        with urllib.request.urlopen(f.url, timeout=60) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while block := resp.read(1 << 20):
                out.write(block)
                done += len(block)
                if progress is not None and total:
                    progress(done / total, f"downloading {Path(f.path).name}")
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise InputError(f.url, f"download failed ({exc})") from exc
    actual = sha256_file(part)
    if actual != f.sha256:
        part.unlink(missing_ok=True)
        raise InputError(f.url, f"downloaded file has sha256 {actual[:12]}..., expected {f.sha256[:12]}...; refused")
    shutil.move(part, cached)
    return cached


def fetch_dataset(name: str, mirrors: list[str | Path] | None = None,
                  progress: Progress | None = None) -> dict[str, Path]:
    """Local, verified paths of every file of a sample dataset (relative path -> local path)."""
    files = dataset_files(name)
    out = {}
    for i, f in enumerate(files):
        sub = progress.sub(i / len(files), (i + 1) / len(files)) if progress else None
        out[f.path] = fetch_file(f, mirrors, sub)
    return out


def sample_path(relative: str, mirrors: list[str | Path] | None = None) -> Path:
    """Local path of one registered sample file, by its relative path (e.g. ``brain-mr/brain1_image.nrrd``)."""
    for name in dataset_names():
        for f in dataset_files(name):
            if f.path == relative:
                return fetch_file(f, mirrors)
    raise InputError(relative, "not in the sample-data registry")
