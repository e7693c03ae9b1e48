"""Site configs: what one hospital's SuperNode trains on (its own cohort folder, nothing else).

A site config is a small JSON file kept at the hospital::

    {"name": "CS", "cohort": "/data/lgg-cs", "patients": null, "val_fraction": 0.25, "threads": 0}

``cohort`` is a folder in any layout the model kind reads (the glioma-lgg-tcga layout or preprocessed case
folders); ``patients`` optionally keeps only those ids; ``root_certificates`` (the CA certificate the site's
SuperNode verifies a TLS SuperLink with) and ``auth_private_key`` (its SuperNode authentication key) are
used only by whoever starts that SuperNode, never sent. :func:`check_site` refuses, naming the site, a
cohort without cases, one lacking a sequence the run needs, or one whose labels (mask values, grades) are
not the run's. :func:`split_by_institution` writes one such folder per institution of a multi-centre
cohort (links to the case folders and the institution's rows of ``clinical.csv``; the cohort is not
modified)."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError

SITE_KEYS = ("name", "cohort", "patients", "val_fraction", "labels_csv", "threads", "root_certificates",
             "auth_private_key")


@dataclass
class Site:
    name: str
    cohort: str
    source: str  # the site config file (or "site N" of a federated config)
    patients: list[str] | None = None
    val_fraction: float = 0.25
    labels_csv: str | None = None
    threads: int = 0  # torch CPU threads of the local training (0: torch's default)
    root_certificates: str | None = None  # CA certificate the site's SuperNode verifies the SuperLink with
    auth_private_key: str | None = None  # the SuperNode's authentication key (OpenSSH EC; never sent)

    def where(self) -> str:
        return f"site {self.name} ({self.cohort})"


def load_site(spec: str | Path | dict[str, Any], base: Path | None = None, source: str | None = None) -> Site:
    """A :class:`Site` from a site config file or mapping (relative paths resolve against its folder)."""
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise InputError(path, f"cannot read the site config ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise InputError(path, f"site config is not valid JSON ({exc})") from None
        base, source = path.resolve().parent, str(path)
    else:
        data, source = dict(spec), source or "site config"
    if not isinstance(data, dict):
        raise InputError(source, "a site config must be a JSON object")
    unknown = sorted(set(data) - set(SITE_KEYS))
    if unknown:
        raise InputError(source, f"unknown site setting(s): {', '.join(unknown)} (known: {', '.join(SITE_KEYS)})")
    if not data.get("name") or not data.get("cohort"):
        raise InputError(source, "a site config needs 'name' and 'cohort'")
    cohort = Path(data["cohort"])
    if not cohort.is_absolute() and base is not None:
        cohort = (base / cohort).resolve()
    frac = float(data.get("val_fraction", 0.25))
    if not 0.0 <= frac < 1.0:
        raise InputError(source, f"site {data['name']}: val_fraction must be in [0, 1), got {frac}")
    files = {k: str(base / data[k]) if base is not None and not Path(data[k]).is_absolute() else data[k]
             for k in ("root_certificates", "auth_private_key") if data.get(k)}
    return Site(str(data["name"]), str(cohort), source, data.get("patients"), frac, data.get("labels_csv"),
                int(data.get("threads") or 0), files.get("root_certificates"), files.get("auth_private_key"))


def site_settings(kind_settings: dict[str, Any], site: Site) -> dict[str, Any]:
    """The run's kind settings with the site's own data (its cohort, its patients) in place of any data the
    coordinator's config named."""
    out = {k: v for k, v in kind_settings.items() if k not in ("cohort", "patients", "cases", "labels")}
    out["cohort"] = site.cohort
    if site.patients:
        out["patients"] = list(site.patients)
    if site.labels_csv:
        out["labels"] = site.labels_csv
    return out


def check_site(site: Site, kind_settings: dict[str, Any], labels: dict[str, Any] | None = None) -> dict[str, int]:
    """Refuse a site the run cannot use (naming it); returns its case count. ``labels``: the run's
    ``mask_values`` and ``grades`` (each checked when given)."""
    from MedGradeCoreLib.io.lgg_tcga import MASK_FILE, is_lgg_tcga_cohort, read_lgg_cohort

    root = Path(site.cohort)
    if not root.is_dir():
        raise InputError(site.cohort, f"site {site.name}: cohort folder not found")
    need = list(kind_settings.get("sequences") or [])
    labels = labels or {}
    mask_values = set(labels.get("mask_values") or [])
    grades = set(labels.get("grades") or [])
    if not is_lgg_tcga_cohort(root):
        cases = sorted(d for d in root.iterdir() if (d / "case.json").is_file())
        if site.patients:
            cases = [d for d in cases if d.name in set(site.patients)]
        if not cases:
            raise InputError(site.cohort, f"site {site.name}: no cases (no case folders with case.json)")
        return {"cases": len(cases)}
    try:
        records = read_lgg_cohort(root)
    except InputError as exc:
        raise InputError(site.cohort, f"site {site.name}: {exc.problem}") from None
    if site.patients:
        records = [r for r in records if r.patient_id in set(site.patients)]
    if not records:
        raise InputError(site.cohort, f"site {site.name}: no cases")
    have = sorted({s for r in records for s in r.available})
    missing = [s for s in need if s not in have]
    if missing:
        raise InputError(site.cohort, f"site {site.name}: another sequence set: the cohort has "
                                      f"{', '.join(have)}, the run needs {', '.join(need)} (no {', '.join(missing)})")
    usable = [r for r in records if r.has(need)]
    if not usable:
        raise InputError(site.cohort, f"site {site.name}: no case has every sequence of the run ({', '.join(need)})")
    if kind_settings.get("name") == "grading":  # the grading kind learns from every patient's grade
        ungraded = sum(1 for r in usable if not r.grade)
        if ungraded:
            raise InputError(site.cohort, f"site {site.name}: no grade label for {ungraded} of {len(usable)} cases "
                                          "(the grading kind needs the clinical.csv grade of every patient)")
    bad_grades = sorted({r.grade for r in usable if r.grade and grades and r.grade not in grades})
    if bad_grades:
        raise InputError(site.cohort, f"site {site.name}: another label set: grades {', '.join(bad_grades)} are not "
                                      f"among the run's {', '.join(sorted(grades))}")
    if not mask_values:
        return {"cases": len(usable)}
    import numpy as np
    import SimpleITK as sitk

    seen: set[int] = set()
    for r in usable:
        seen |= {int(v) for v in np.unique(sitk.GetArrayViewFromImage(sitk.ReadImage(str(r.folder / MASK_FILE))))}
    extra = sorted(seen - mask_values)
    if extra:
        raise InputError(site.cohort, f"site {site.name}: another label set: mask values {extra} are not among the "
                                      f"run's {sorted(mask_values)}")
    return {"cases": len(usable)}


def split_by_institution(cohort: str | Path, out: str | Path, per_site: int | None = None,
                         institutions: list[str] | None = None) -> list[Path]:
    """One site folder per institution of a glioma-lgg-tcga cohort (``out/<inst>/``: links to its case
    folders and its rows of ``clinical.csv``) and its site config ``out/<inst>.json``; the first
    ``per_site`` patients of each when given. Returns the site config files."""
    from MedGradeCoreLib.io.lgg_tcga import CLINICAL_CSV, is_lgg_tcga_cohort

    src = Path(cohort).resolve()
    if not is_lgg_tcga_cohort(src):
        raise InputError(src, "not a glioma-lgg-tcga cohort (no clinical.csv with case/availability columns)")
    with open(src / CLINICAL_CSV, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields, rows = list(reader.fieldnames or []), list(reader)
    by_site: dict[str, list[dict[str, str]]] = {}
    for row in sorted(rows, key=lambda r: r["case"]):
        by_site.setdefault(row["institution"], []).append(row)
    wanted = institutions or sorted(by_site)
    unknown = [i for i in wanted if i not in by_site]
    if unknown:
        raise InputError(src, f"no institution {', '.join(unknown)} (it has {', '.join(sorted(by_site))})")
    out = Path(out)
    configs = []
    for inst in wanted:
        chosen = by_site[inst][:per_site] if per_site else by_site[inst]
        folder = out / inst
        folder.mkdir(parents=True, exist_ok=True)
        for row in chosen:
            link = folder / row["case"]
            if not link.exists():
                os.symlink(src / row["case"], link, target_is_directory=True)
        tmp = folder / (CLINICAL_CSV + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(chosen)
        os.replace(tmp, folder / CLINICAL_CSV)
        cfg = out / f"{inst}.json"
        cfg.write_text(json.dumps({"name": inst, "cohort": inst}, indent=1) + "\n")
        configs.append(cfg)
    return configs
