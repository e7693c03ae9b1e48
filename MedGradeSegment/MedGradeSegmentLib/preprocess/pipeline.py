"""``preprocess_case``: orientation, N4, brain mask, co-registration, 1 mm grid, z-score, slices, quality."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import SimpleITK as sitk

from MedGradeCoreLib import __version__
from MedGradeCoreLib.case import Case
from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io.images import check_not_blank, validate_image
from MedGradeCoreLib.progress import Progress
from .bias import n4_correct
from .config import PreprocessConfig
from .normalize import zscore
from .orient import orient, to_float
from .quality import QualityReport, volume_ml, weak_registrations
from .resample import footprint_overlap, reference_grid, resample_image, resample_mask
from .skullstrip import skull_strip, threshold_mask
from .slices import sample_slices

# progress ranges of the stages
_STAGES = {"orient": (0.0, 0.02), "n4": (0.02, 0.15), "brain_mask": (0.15, 0.45), "registration": (0.45, 0.9),
           "resample": (0.9, 0.95), "normalize": (0.95, 0.98), "slices": (0.98, 1.0)}


@dataclass
class PreprocessResult:
    """A preprocessed case: every image, the brain and lesion masks on one grid, transforms, slices, quality.

    ``brain_mask`` is the tight brain (z-score statistics); ``search_mask`` extends it by the configured margin:
    images keep their values there and the lesion is searched and kept inside it."""

    patient_id: str
    reference: str
    images: dict[str, sitk.Image]
    brain_mask: sitk.Image
    transforms: dict[str, sitk.Transform]  # sequence -> transform mapping reference points to its points
    lesion_mask: sitk.Image | None
    slices: list[int]
    quality: QualityReport
    config: PreprocessConfig
    clinical: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    version: str = __version__
    search_mask: sitk.Image | None = None
    brain_extraction: dict[str, Any] = field(default_factory=dict)

    def to_case(self) -> Case:
        """The preprocessed images as a :class:`Case` (brain mask and slices in ``meta``)."""
        return Case(patient_id=self.patient_id, images=dict(self.images), mask=self.lesion_mask,
                    clinical=dict(self.clinical), labels=dict(self.labels), sources=dict(self.sources),
                    meta={"brain_mask": self.brain_mask, "search_mask": self.lesion_search_mask(),
                          "slices": list(self.slices), "brain_extraction": dict(self.brain_extraction)},
                    reference=self.reference)

    def lesion_search_mask(self) -> sitk.Image:
        return self.search_mask if self.search_mask is not None else self.brain_mask


def choose_reference(case: Case, wanted: str) -> tuple[str, list[str]]:
    """``wanted`` when the case has it, else the case's own reference or first sequence, with a warning."""
    if wanted in case.images:
        return wanted, []
    fallback = case.reference if case.reference in case.images else next(iter(case.images))
    return fallback, [f"reference sequence {wanted} is missing; registered to {fallback} instead"]


def _source(case: Case, seq: str) -> str:
    return case.sources.get(seq, f"{case.patient_id}/{seq}")


def dilated(mask: sitk.Image, mm: float) -> sitk.Image:
    """``mask`` grown by ``mm`` millimetres (Euclidean, physical units)."""
    distance = sitk.SignedMaurerDistanceMap(sitk.Cast(mask, sitk.sitkUInt8), insideIsPositive=False,
                                            squaredDistance=False, useImageSpacing=True)
    return sitk.Cast(distance <= mm, sitk.sitkUInt8)


def brain_mask_of(image: sitk.Image, config: PreprocessConfig, progress: Progress | None = None,
                  atlas: tuple[sitk.Image, sitk.Image] | None = None) -> tuple[sitk.Image, dict[str, Any]]:
    """(brain mask, what ran) of a reference image with the configured method (recorded in case.json)."""
    if not config.skull_strip:
        return threshold_mask(image, config.stripped_threshold), {"method": f"threshold-{config.stripped_threshold}"}
    from MedGradeCoreLib.devices import choose_device
    from .brain_extraction import DEEP_METHODS, deep_brain_mask, resolve_method

    device = choose_device(config.brain_device).device if config.brain_extraction != "swiss" else "cpu"
    method = resolve_method(config.brain_extraction, device)
    if method in DEEP_METHODS:
        return deep_brain_mask(image, method, device)
    start = time.perf_counter()
    mask = skull_strip(image, config.strip_mode, config.strip_scale, config.strip_smooth_mm, atlas, progress,
                       config.strip_prealign)
    return mask, {"method": "swiss", "mode": config.strip_mode, "device": "cpu",
                  "seconds": round(time.perf_counter() - start, 3)}


def preprocess_case(case: Case, config: PreprocessConfig | None = None, progress: Progress | None = None,
                    atlas: tuple[sitk.Image, sitk.Image] | None = None) -> PreprocessResult:
    """Run every enabled step on ``case``; raises :class:`InputError` naming the file for unusable inputs."""
    config = config or PreprocessConfig()
    progress = progress or Progress()
    if not case.images:
        raise InputError(case.patient_id, "the case has no images")
    for seq, image in case.images.items():
        validate_image(image, _source(case, seq))
        check_not_blank(image, _source(case, seq))
    quality = QualityReport()
    ref, warnings = choose_reference(case, config.reference)
    quality.warnings += warnings + list(case.meta.get("warnings", []))

    @contextmanager
    def stage(name: str) -> Iterator[Progress]:
        start = time.perf_counter()
        sub = progress.sub(*_STAGES[name])
        sub(0.0, name.replace("_", " "))
        yield sub
        quality.seconds[name] = quality.seconds.get(name, 0.0) + time.perf_counter() - start

    with stage("orient"):
        images = {seq: to_float(orient(img, config.orientation)) for seq, img in case.images.items()}
        lesion = orient(case.mask, config.orientation) if case.mask is not None else None
    if config.n4:
        with stage("n4") as p:
            for i, seq in enumerate(list(images)):
                images[seq] = n4_correct(images[seq], None, config.n4_shrink, config.n4_iterations,
                                         p.sub(i / len(images), (i + 1) / len(images)))
    with stage("brain_mask") as p:
        brain, extraction = brain_mask_of(images[ref], config, p, atlas)
        if not sitk.GetArrayViewFromImage(brain).any():
            raise InputError(_source(case, ref), "the brain mask is empty: no brain found in the reference image")
        found_ml = volume_ml(brain)
        if found_ml < config.min_brain_ml:  # breast, body or a few slices: nothing MedGrade can grade
            raise InputError(_source(case, ref), f"no usable brain found: the brain mask is {found_ml:.0f} ml (a "
                                                 f"brain is about 1000-1700 ml; under {config.min_brain_ml:.0f} ml "
                                                 "is refused). Is this a brain MR covering the head? MedGrade "
                                                 "grades brain lesions")
    transforms: dict[str, sitk.Transform] = {}
    with stage("registration") as p:
        transforms = _register_all(case, images, ref, brain, config, quality, p)
        quality.warnings += weak_registrations(quality.registration, config.weak_metric_ratio)
    with stage("resample"):
        grid = reference_grid(images[ref], config.spacing)
        on_grid = {s: resample_image(img, grid, transforms.get(s)) for s, img in images.items()}
        brain_grid = resample_mask(brain, grid)
        search_grid = dilated(brain_grid, config.lesion_margin_mm) if config.lesion_margin_mm > 0 else brain_grid
        lesion_grid = resample_mask(lesion, grid) if lesion is not None else None
    quality.brain_volume_ml = round(volume_ml(brain_grid), 2)
    if quality.brain_volume_ml < config.min_brain_ml:
        quality.warnings.append(f"tiny brain mask: {quality.brain_volume_ml:.0f} ml (< {config.min_brain_ml:.0f} ml)")
    if config.check_sequences:  # on the raw intensities, before normalisation
        from .consistency import contrast_warnings

        quality.warnings += contrast_warnings(on_grid, brain_grid)
    with stage("normalize"):
        for seq in on_grid:
            if config.normalize:
                on_grid[seq], stats = zscore(on_grid[seq], brain_grid, config.clip_percentiles, config.clip_z,
                                             keep=search_grid)
            else:
                on_grid[seq] = sitk.Mask(on_grid[seq], search_grid, 0.0)
                stats = {}
            quality.intensity[seq] = {k: round(v, 4) for k, v in stats.items()}
            if stats.get("max_abs_z", 0.0) > config.extreme_z:
                quality.warnings.append(f"{seq}: extreme intensities in the brain (|z| up to "
                                        f"{stats['max_abs_z']:.1f} before clipping)")
    with stage("slices"):
        has_lesion = lesion_grid is not None and sitk.GetArrayViewFromImage(lesion_grid).any()
        slices = sample_slices(lesion_grid if has_lesion else brain_grid, config.n_slices)
    progress(1.0, "preprocessing done")
    return PreprocessResult(case.patient_id, ref, on_grid, brain_grid, transforms, lesion_grid, slices, quality,
                            config, dict(case.clinical), dict(case.labels), dict(case.sources),
                            search_mask=search_grid, brain_extraction=extraction)


def _register_all(case: Case, images: dict[str, sitk.Image], ref: str, brain: sitk.Image, config: PreprocessConfig,
                  quality: QualityReport, progress: Progress) -> dict[str, sitk.Transform]:
    """Register every sequence to ``ref`` (or keep the scanner frame) side by side (:mod:`.coregister`) and
    record metric, overlap and any skip reason per sequence."""
    from .coregister import SequenceRegistration, coregister

    others = [s for s in images if s != ref]
    if config.reg_init == "scanner":
        for seq in others:
            if footprint_overlap(images[seq], brain) == 0.0:
                raise InputError(_source(case, seq), f"does not overlap the reference sequence {ref} "
                                                     f"({_source(case, ref)}) at all: no common field of view")
    if config.register:
        mask = dilated(brain, config.reg_mask_dilate_mm) if config.reg_brain_mask else None

        def failed(seq: str, exc: RuntimeError) -> Exception:
            reason = str(exc).strip().splitlines()[-1][:200]
            return InputError(_source(case, seq), f"registration to {ref} failed: {reason}")

        done = coregister(ref, images, mask, brain, config, progress, failed)
    else:
        done = {seq: SequenceRegistration(sitk.Euler3DTransform(), skipped="registration off") for seq in others}
    transforms: dict[str, sitk.Transform] = {}
    for seq in others:
        result = done[seq]
        if result.flip_warning:
            quality.warnings.append(result.flip_warning)
        overlap = footprint_overlap(images[seq], brain, result.transform)
        if overlap == 0.0:
            raise InputError(_source(case, seq), f"does not overlap the reference sequence {ref} after registration")
        if overlap < config.min_overlap:
            quality.warnings.append(f"{seq}: covers only {overlap:.0%} of the brain in {ref}")
        quality.registration[seq] = {"metric": round(result.metric, 5), "overlap": round(overlap, 4)}
        if result.skipped:
            quality.registration[seq]["skipped"] = result.skipped
        elif result.start != "own":
            quality.registration[seq]["start"] = result.start
        transforms[seq] = result.transform
    return transforms
