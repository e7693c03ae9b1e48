"""The ``data`` section shared by the pre-training and fine-tuning kinds -> :class:`ViewSample` list.

``{"source": "breakhis" | "lgg" | "csv", "root": FOLDER | "sample:<registry dataset>", "csv": FILE,
"views": [...], "magnifications": [40, 100, 200, 400], "sequences": ["t1", "t1c", "flair"],
"patients": [...] (lgg: only these patients)}``.
Relative paths resolve against the config file's folder; ``sample:<name>`` is a dataset of the
sample-data registry (verified local copy, e.g. ``sample:breakhis-sample``, ``sample:glioma-lgg-tcga``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError

from .data import MAGNIFICATIONS, ViewSample, breakhis_samples, read_breakhis, read_mri_cohort, read_views_csv

SOURCES = ("breakhis", "lgg", "csv")


def resolve_path(value: str, config_dir: str | None) -> Path:
    if value.startswith("sample:"):
        from MedGradeCoreLib.sample_data import fetch_dataset

        files = list(fetch_dataset(value[len("sample:"):]).values())
        parents = {f.parent for f in files}
        root = min(parents, key=lambda p: len(p.parts))
        while not all(root in f.parents for f in files):
            root = root.parent
        return root
    p = Path(value).expanduser()
    return p if p.is_absolute() or not config_dir else Path(config_dir) / p


def view_names(data: dict[str, Any]) -> list[str]:
    if data.get("views"):
        return [str(v) for v in data["views"]]
    if data.get("source") == "breakhis":
        return [f"{int(m)}x" for m in data.get("magnifications", MAGNIFICATIONS)]
    if data.get("source") == "lgg":
        return list(data.get("sequences", ["t1", "t1c", "flair"]))
    raise InputError(None, "data.views must name the views of a 'csv' source")


def read_samples(data: dict[str, Any], config_dir: str | None = None) -> list[ViewSample]:
    source = data.get("source")
    if source not in SOURCES:
        raise InputError(None, f"data.source must be one of {', '.join(SOURCES)}, got {source!r}")
    if source == "csv":
        return read_views_csv(resolve_path(str(data["csv"]), config_dir), view_names(data))
    if "root" not in data:
        raise InputError(None, f"data.root is needed for a {source!r} source")
    root = resolve_path(str(data["root"]), config_dir)
    if source == "breakhis":
        mags = tuple(int(m) for m in data.get("magnifications", MAGNIFICATIONS))
        samples, _ = breakhis_samples(read_breakhis(root), mags)
        if not samples:
            raise InputError(root, f"no patient has images at every magnification {', '.join(map(str, mags))}")
        return samples
    patients = set(map(str, data["patients"])) if data.get("patients") else None
    return read_mri_cohort(root, view_names(data), patients)
