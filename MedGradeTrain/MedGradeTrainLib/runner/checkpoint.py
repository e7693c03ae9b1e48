"""Atomic, verified checkpoints: written to a temporary file, fsync'd, renamed, then their sha256 recorded
beside them. A checkpoint without a matching sha256 (killed mid-write, truncated, altered) is refused with
a message naming it, and the previous one is used (when none verifies, the warning says the split starts
over)."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from MedGradeCoreLib.atomic import atomic_write_bytes, atomic_write_text  # noqa: F401  (re-exported)
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.hashing import sha256_file

NAME = re.compile(r"^step-(\d{9})\.pt$")


def save_verified(obj: Any, path: Path) -> Path:
    """``torch.save`` to ``path`` atomically, then ``path.sha256``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    atomic_write_text(path.with_name(path.name + ".sha256"), digest + "\n")
    return path


def load_verified(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_verified`; :class:`InputError` when partial or corrupt."""
    sha = path.with_name(path.name + ".sha256")
    if not sha.is_file():
        raise InputError(path, "checkpoint is partial (its sha256 was never written: the run stopped while "
                               "saving it)")
    if sha256_file(path) != sha.read_text().strip():
        raise InputError(path, "checkpoint is corrupt (its sha256 does not match the one written with it)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for unreadable archives
        raise InputError(path, f"checkpoint cannot be read ({exc})") from None


def checkpoints(folder: Path) -> list[Path]:
    """Step checkpoints in ``folder``, newest first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if NAME.match(p.name)), key=lambda p: p.name, reverse=True)


def latest_valid(folder: Path, warn: Callable[[str], None] = print) -> dict[str, Any] | None:
    """The newest checkpoint that verifies; each refused one is reported through ``warn``, and so is a
    folder where none verifies (the split then starts again from its first step: said, not implied)."""
    found = checkpoints(folder)
    for i, path in enumerate(found):
        try:
            state = load_verified(path)
        except InputError as exc:
            more = i + 1 < len(found)
            warn(f"warning: {exc}; " + ("using the previous checkpoint" if more else
                                        f"no checkpoint of {folder} verifies ({len(found)} refused): this split "
                                        "starts again from its first step"))
            continue
        state["_path"] = str(path)
        return state
    return None


def prune(folder: Path, keep: int) -> None:
    for path in checkpoints(folder)[max(keep, 1):]:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) generator states, storable with ``weights_only``."""
    np_state = np.random.get_state()
    state = {"python": list(random.getstate()[1]), "python_version": random.getstate()[0],
             "python_gauss": random.getstate()[2],
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                       int(np_state[3]), float(np_state[4])],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
