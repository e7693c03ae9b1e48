"""Multi-view samples for (U)MAE pre-training and single-view fine-tuning.

A :class:`ViewSample` names its patient and, per view, where the image is: a 2D file, or a slice of a
3D volume. Readers:

* :func:`read_breakhis`: BreakHis, either its own layout
  ``<root>/{benign,malignant}/SOB/<type>/<patient>/<mag>X/*.png`` or a flat folder of its files;
  everything is parsed from the file name ``SOB_<B|M>_<type>-<year>-<slide>-<mag>-<seq>.png`` (the
  folders, when present, must agree). :func:`breakhis_samples` groups the images of one patient and
  tumour type into samples whose views are the magnifications: sample k takes the k-th image (by
  sequence number) of every magnification, cycling through a magnification with fewer images.
* :func:`read_views_csv`: generic ``sample_id, patient_id[, label], <view>, <view>...`` CSV (paths
  relative to the CSV; an empty cell is a missing view).
* :func:`read_mri_cohort`: the co-registered glioma-lgg-tcga cohort (``<root>/<case>/<sequence>.nii.gz``
  + ``clinical.csv``): every slice of a case is a sample whose views are its sequences; a sequence
  flagged unavailable (``t1_available``/``t1c_available`` = 0) is left out of the sample.

:class:`MultiViewDataset` returns ``views`` [V, C, H, W] (each view resized to the model's size and
z-scored on its own), ``present`` [V] and ``label`` (-1 when unlabelled); :class:`SingleViewDataset`
returns one view as ``image`` [C, H, W] for fine-tuning.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from MedGradeCoreLib.errors import InputError

BREAKHIS_NAME = re.compile(r"^SOB_(?P<cls>[BM])_(?P<type>[A-Z]+)-(?P<year>\d+)-(?P<slide>[0-9A-Za-z]+)"
                           r"-(?P<mag>\d+)-(?P<seq>\d+)\.png$")
BREAKHIS_CLASSES = {"B": "benign", "M": "malignant"}
MAGNIFICATIONS = (40, 100, 200, 400)


@dataclass
class ViewSample:
    sample_id: str
    patient_id: str
    views: dict[str, tuple[Path, int | None]]  # view name -> (file, slice index or None for a 2D file)
    label: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BreakHisImage:
    path: Path
    patient_id: str  # "SOB_B_F-14-25197": class, tumour type and patient, as BreakHis names them
    label: str  # "benign" | "malignant"
    tumour_type: str
    magnification: int
    seq: int


def parse_breakhis(path: Path) -> BreakHisImage:
    m = BREAKHIS_NAME.match(path.name)
    if not m:
        raise InputError(path, "not a BreakHis file name (expected SOB_<B|M>_<type>-<year>-<slide>-<mag>-<seq>.png)")
    img = BreakHisImage(path, f"SOB_{m['cls']}_{m['type']}-{m['year']}-{m['slide']}", BREAKHIS_CLASSES[m["cls"]],
                        m["type"], int(m["mag"]), int(m["seq"]))
    parent = path.parent.name
    if re.fullmatch(r"\d+X", parent, re.IGNORECASE) and int(parent[:-1]) != img.magnification:
        raise InputError(path, f"file name says {img.magnification}X but it lies in folder {parent}")
    for cls in BREAKHIS_CLASSES.values():
        if cls in path.parts[:-1] and cls != img.label:
            raise InputError(path, f"file name says {img.label} but it lies under a {cls!r} folder")
    return img


def read_breakhis(root: str | Path) -> list[BreakHisImage]:
    """Every BreakHis image under ``root`` (nested BreakHis layout or flat), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "BreakHis folder not found")
    pngs = sorted(p for p in root.rglob("*.png") if p.is_file())
    if not pngs:
        raise InputError(root, "no .png images in this BreakHis folder")
    return [parse_breakhis(p) for p in pngs]


def breakhis_samples(images: list[BreakHisImage], magnifications: tuple[int, ...] = MAGNIFICATIONS
                     ) -> tuple[list[ViewSample], list[str]]:
    """Samples of the patients that have every requested magnification, and the patients skipped."""
    groups: dict[str, dict[int, list[BreakHisImage]]] = {}
    for img in images:
        groups.setdefault(img.patient_id, {}).setdefault(img.magnification, []).append(img)
    samples, skipped = [], []
    for pid in sorted(groups):
        by_mag = groups[pid]
        if any(m not in by_mag for m in magnifications):
            skipped.append(pid)
            continue
        lists = {m: sorted(by_mag[m], key=lambda i: (i.seq, i.path.name)) for m in magnifications}
        n = max(len(v) for v in lists.values())
        first = lists[magnifications[0]][0]
        for k in range(n):
            views = {f"{m}x": (lists[m][k % len(lists[m])].path, None) for m in magnifications}
            samples.append(ViewSample(f"{pid}#{k}", pid, views, first.label, {"tumour_type": first.tumour_type}))
    return samples, skipped


def read_views_csv(path: str | Path, views: list[str]) -> list[ViewSample]:
    """Generic multi-view samples from a CSV (see the module docstring)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"unreadable views CSV ({exc})") from exc
    cols = set(rows[0]) if rows else set()
    missing = {"sample_id", "patient_id", *views} - cols
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(sorted(missing))}")
    samples = []
    for line, row in enumerate(rows, start=2):
        vs = {}
        for v in views:
            cell = (row.get(v) or "").strip()
            if cell:
                f = (path.parent / cell).resolve()
                if not f.is_file():
                    raise InputError(f, f"listed in {path.name} line {line} (view {v}) but not found")
                vs[v] = (f, None)
        if not vs:
            raise InputError(path, f"line {line}: sample {row['sample_id']!r} has none of the views {views}")
        label = (row.get("label") or "").strip() or None
        samples.append(ViewSample(row["sample_id"], row["patient_id"], vs, label))
    return samples


def read_mri_cohort(root: str | Path, sequences: list[str], patients: set[str] | None = None) -> list[ViewSample]:
    """One sample per non-blank slice of every case of a glioma-lgg-tcga-layout cohort (read with
    :func:`MedGradeCoreLib.io.read_lgg_cohort`, which applies the availability flags): the views are
    the case's acquired sequences among ``sequences``; label = the grade (None when unknown);
    ``extra["tumour"]`` says whether the manual mask touches the slice."""
    import SimpleITK as sitk

    from MedGradeCoreLib.io.lgg_tcga import MASK_FILE, SEQUENCE_FILES, read_lgg_cohort

    unknown = [s for s in sequences if s not in SEQUENCE_FILES]
    if unknown:
        raise InputError(root, f"this cohort has no {', '.join(unknown)} (it has {', '.join(SEQUENCE_FILES)})")
    records = read_lgg_cohort(root)
    if patients is not None and (unknown := sorted(set(patients) - {r.patient_id for r in records})):
        raise InputError(root, f"no patient {', '.join(unknown)} in this cohort")
    samples = []
    for rec in records:
        seqs = [s for s in sequences if s in rec.available]
        if not seqs or (patients is not None and rec.patient_id not in patients):
            continue
        arrays = {s: sitk.GetArrayFromImage(sitk.ReadImage(str(rec.folder / SEQUENCE_FILES[s]))) for s in seqs}
        shapes = {s: a.shape for s, a in arrays.items()}
        if len(set(shapes.values())) > 1:
            raise InputError(rec.folder, f"sequences are not co-registered (array shapes {shapes})")
        n = next(iter(shapes.values()))[0]
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(rec.folder / MASK_FILE)))
        if mask.shape != next(iter(shapes.values())):
            raise InputError(rec.folder / MASK_FILE, f"mask shape {mask.shape} differs from the images' {shapes}")
        tumour = mask.reshape(n, -1).max(1) > 0
        for z in range(n):
            if all(not a[z].any() for a in arrays.values()):
                continue  # blank slice
            views = {s: (rec.folder / SEQUENCE_FILES[s], z) for s in seqs}
            samples.append(ViewSample(f"{rec.case}#z{z}", rec.patient_id, views, rec.grade,
                                      {"case": rec.case, "slice": z, "tumour": bool(tumour[z]),
                                       "institution": rec.institution}))
    if not samples:
        raise InputError(root, f"no slices with any of the sequences {', '.join(sequences)}")
    return samples


class ImageCache:
    """Decoded images and volumes, read once (a slice sample would otherwise re-read its volume)."""

    def __init__(self) -> None:
        self._cache: dict[Path, np.ndarray] = {}

    def array(self, path: Path) -> np.ndarray:
        """2D file -> [C, H, W]; volume -> [Z, Y, X]."""
        if path not in self._cache:
            import SimpleITK as sitk

            from MedGradeCoreLib.io.images import read_image_file

            img = read_image_file(path)  # declared size checked before decoding
            a = sitk.GetArrayFromImage(img)
            if img.GetDimension() == 2:
                a = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
            self._cache[path] = a
        return self._cache[path]

    def view(self, path: Path, z: int | None) -> np.ndarray:
        a = self.array(path)
        return a if z is None else a[z][None]


def prepare(view: np.ndarray, size: tuple[int, int], channels: int) -> torch.Tensor:
    """[c, h, w] -> float [channels, H, W]: area resize, RGB->grey (mean) or grey->RGB, per-view z-score."""
    from monai.transforms import Resize

    t = torch.as_tensor(np.ascontiguousarray(view), dtype=torch.float32)
    if t.shape[0] != channels:
        t = t.mean(0, keepdim=True) if channels == 1 else t[:1].expand(channels, -1, -1)
    if tuple(t.shape[1:]) != tuple(size):
        t = Resize(tuple(size), mode="area")(t)
    t = torch.as_tensor(t)
    return (t - t.mean()) / (t.std() + 1e-6)


class MultiViewDataset(Dataset):
    def __init__(self, samples: list[ViewSample], views: list[str], size: tuple[int, int], channels: int,
                 labels: dict[str, int] | None = None, cache: ImageCache | None = None):
        self.samples, self.views, self.size, self.channels = samples, list(views), tuple(size), channels
        self.labels, self.cache = labels or {}, cache or ImageCache()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.samples[i]
        out = torch.zeros(len(self.views), self.channels, *self.size)
        present = torch.zeros(len(self.views), dtype=torch.bool)
        for j, v in enumerate(self.views):
            if v in s.views:
                out[j] = prepare(self.cache.view(*s.views[v]), self.size, self.channels)
                present[j] = True
        return {"views": out, "present": present, "label": torch.tensor(self.labels.get(s.label, -1)),
                "index": torch.tensor(i)}


class SingleViewDataset(Dataset):
    """Samples that have ``view``, one image each (fine-tuning on single-view input)."""

    def __init__(self, samples: list[ViewSample], view: str, size: tuple[int, int], channels: int,
                 labels: dict[str, int], cache: ImageCache | None = None):
        self.samples = [s for s in samples if view in s.views and s.label in labels]
        self.view, self.size, self.channels, self.labels = view, tuple(size), channels, labels
        self.cache = cache or ImageCache()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.samples[i]
        img = prepare(self.cache.view(*s.views[self.view]), self.size, self.channels)
        return {"image": img, "label": torch.tensor(self.labels[s.label]), "index": torch.tensor(i)}
