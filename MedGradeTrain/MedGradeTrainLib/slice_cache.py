"""Memory-mapped slice cache: the preprocessed training slices of one case for one setting, computed once
(SimpleITK resampling, z-scoring, FPG weights) and then read as ``np.load(mmap_mode="c")`` views (copy-on-write: transforms never touch the file), so the
loader never waits on SimpleITK. The key hashes every input file (path, size, modification time), the
settings that shape the slices, the fold's FPG atlas and the case's template registration: change any and
the case is recomputed under a new key."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

ARRAYS = ("image", "label", "weight")
META = ("patient_id", "sequence", "z", "grade")


def cache_root() -> Path:
    from MedGradeCoreLib.sample_data import cache_dir

    return cache_dir() / "slices"


def file_signature(paths: list[str | Path]) -> list[list[Any]]:
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    return out


def key_of(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load(folder: Path) -> list[dict[str, Any]] | None:
    if not (folder / "done.json").is_file():
        return None
    meta = json.loads((folder / "meta.json").read_text())
    arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="c") for k in ARRAYS if (folder / f"{k}.npy").is_file()}
    return [{**{k: a[i] for k, a in arrays.items()}, **m} for i, m in enumerate(meta)]


def store(folder: Path, samples: list[dict[str, Any]]) -> None:
    """Write ``samples`` (same-shape slices of one case) under ``folder`` atomically."""
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if samples:
        for k in ARRAYS:
            if k in samples[0]:
                np.save(tmp / f"{k}.npy", np.stack([np.asarray(s[k], np.float32) for s in samples]))
    (tmp / "meta.json").write_text(json.dumps([{k: s.get(k) for k in META} for s in samples], default=str))
    (tmp / "done.json").write_text("{}")
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    try:
        tmp.rename(folder)
    except OSError:  # another process stored it first
        shutil.rmtree(tmp, ignore_errors=True)


def cached(parts: dict[str, Any], compute: Callable[[], list[dict[str, Any]]], root: Path | None = None
           ) -> tuple[list[dict[str, Any]], bool]:
    """(samples, hit): from the cache when the key is there, else computed and stored."""
    folder = (root or cache_root()) / key_of(parts)
    hit = load(folder)
    if hit is not None:
        return hit, True
    samples = compute()
    shapes = {tuple(np.shape(s["image"])) for s in samples}
    if len(shapes) > 1:  # a case's slices share one grid; anything else is not cached
        return samples, False
    store(folder, samples)
    return load(folder) or samples, False
