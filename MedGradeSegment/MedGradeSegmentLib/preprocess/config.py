"""Every preprocessing parameter in one dataclass; its ``to_dict()`` is recorded in ``case.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


# Brain-extraction methods (MedGradeSegmentLib.preprocess.brain_extraction runs them); named here so that
# the configuration is checked without importing the extractors.
DEEP_METHODS = ("deepbet", "hd-bet")
METHODS = ("auto", *DEEP_METHODS, "swiss")


@dataclass
class PreprocessConfig:
    """Preprocessing parameters, defaults as in the thesis (1 mm, z-score in the brain, K = 20 slices)."""

    reference: str = "t1c"                 # sequence everything is registered and resampled to
    orientation: str | None = "LPS"        # DICOM orientation code, None keeps the input's
    # N4 bias-field correction (optional; fitted on a shrunk copy, applied at full resolution)
    n4: bool = False
    n4_shrink: int = 4
    n4_iterations: tuple[int, ...] = (50, 50, 30)
    # brain mask of the reference: a deep brain extractor (default) or the atlas-based Swiss Skull Stripper;
    # skull_strip=False thresholds already-stripped inputs instead
    skull_strip: bool = True
    brain_extraction: str = "auto"         # "auto" (hd-bet on a CUDA GPU, deepbet otherwise) | "deepbet" | "hd-bet" | "swiss"
    brain_device: str = "auto"             # device of the deep extractor: auto, cpu, cuda, cuda:N, mps
    lesion_margin_mm: float = 3.0          # the lesion is searched and kept up to this far outside the brain mask
                                           # (a lesion touching the dura is not cut); z-score statistics use the tight mask
    strip_mode: str = "fast"               # swiss only: "fast" (coarse scale) | "full" (the plain filter)
    strip_scale: float = 1.5               # fast path: the filter works at strip_scale mm instead of 1 mm (bench: Dice 0.97)
    strip_prealign: bool = True            # fast path: hand the filter a pre-aligned atlas (its registration stops early)
    strip_smooth_mm: float = 1.0           # fast path: Gaussian sigma before re-thresholding the mask
    stripped_threshold: str = "nonzero"    # skull_strip=False: "nonzero" (image > 0) | "otsu"
    # co-registration of every sequence to the reference (Mattes MI, rigid then optional affine)
    register: bool = True
    affine: bool = False
    reg_init: str = "scanner"              # "scanner" (same-session frame) | "geometry" | "moments"
    reg_bins: int = 32
    reg_sampling: float = 0.1              # share of voxels sampled by the metric (finer levels)
    reg_coarse_sampling: float = 0.5       # ... at the coarsest level, where the starts are compared
    reg_start_deg: float = 0.0             # extra coarse starts at +-this about each axis (0: none; TCGA-FG-6692
                                           # converges from up to 40 deg without them once the mask is right)
    reg_iterations: int = 100
    reg_learning_rate: float = 2.0
    reg_min_step: float = 1e-3
    reg_shrink: tuple[int, ...] = (4, 2, 1)
    reg_smoothing_mm: tuple[float, ...] = (2.0, 1.0, 0.0)
    reg_brain_mask: bool = True            # restrict the metric to the (dilated) reference brain mask
    reg_mask_dilate_mm: float = 25.0       # dilation: the skull and scalp outline carry T1c-vs-T2 alignment
    reg_seed: int = 42                     # seed of the metric's random voxel sampling (recorded in case.json)
    reg_threads: int = 1                   # ITK threads of *one* registration's metric: 1 gives bit-identical results
                                           # run to run; >1 (0 = all cores) is faster but ITK's multi-threaded
                                           # Mattes MI sums in a varying order (last-digit differences)
    reg_workers: int = 0                   # registrations (sequences, starts, flip checks) run side by side, each on
                                           # reg_threads ITK threads: every core in use, still bit-identical; 0 = all cores
    reg_skip_same_grid: bool = False       # a sequence on exactly the reference's grid is taken as co-registered
                                           # upstream (BraTS space): not registered, the reason recorded. Off by
                                           # default: TCGA-FG-6692's T1 shares T1c's grid, yet the patient turned
                                           # ~8 deg between them (skipping it: brain surface 2.1 mm off)
    reg_cross_starts: bool = True          # each sequence's coarse level is also run from the others' results
    check_sequences: bool = True           # warn when a sequence's contrast or left-right orientation looks wrong
    # resampling, normalisation, slices
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    normalize: bool = True
    clip_percentiles: tuple[float, float] = (0.5, 99.5)   # intensities clipped inside the brain first
    clip_z: float = 5.0                    # z-scores clipped to [-clip_z, clip_z]
    n_slices: int = 20
    # quality thresholds
    min_brain_ml: float = 200.0
    min_overlap: float = 0.8
    extreme_z: float = 20.0
    weak_metric_ratio: float = 0.4         # warn when a sequence's |metric| < this x the best sequence's

    def __post_init__(self) -> None:
        if isinstance(self.spacing, (int, float)):
            self.spacing = (float(self.spacing),) * 3
        self.spacing = tuple(float(s) for s in self.spacing)
        for name in ("n4_iterations", "reg_shrink", "reg_smoothing_mm", "clip_percentiles"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.strip_mode not in ("fast", "full"):
            raise ValueError(f"strip_mode must be 'fast' or 'full', not {self.strip_mode!r}")
        if self.brain_extraction not in METHODS:
            raise ValueError(f"brain_extraction must be one of {', '.join(METHODS)}, not {self.brain_extraction!r}")
        if self.lesion_margin_mm < 0:
            raise ValueError("lesion_margin_mm must be >= 0")
        if self.stripped_threshold not in ("nonzero", "otsu"):
            raise ValueError(f"stripped_threshold must be 'nonzero' or 'otsu', not {self.stripped_threshold!r}")
        if self.reg_init not in ("scanner", "geometry", "moments"):
            raise ValueError(f"reg_init must be 'scanner', 'geometry' or 'moments', not {self.reg_init!r}")
        if len(self.reg_shrink) != len(self.reg_smoothing_mm):
            raise ValueError("reg_shrink and reg_smoothing_mm need one entry per resolution level")
        if self.n_slices < 1 or min(self.spacing) <= 0:
            raise ValueError("n_slices must be >= 1 and spacing > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "PreprocessConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored (older/newer folders)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
