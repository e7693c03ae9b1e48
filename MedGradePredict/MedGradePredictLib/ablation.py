"""The eight-row KiNet ablation: every combination of the BMS loss, the Merge-IN input and metadata,
and the input-combination comparison (MIX vs IMG-only vs ROI-only), as TrainConfigs (trained through
the runner by :func:`MedGradeTrainLib.kinds.grading.run_ablation`)."""

from __future__ import annotations

import dataclasses
import itertools

from .train import TrainConfig


def ablation_configs(base: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """Eight rows: (BMS, Merge-IN, metadata) in {off, on}^3, KiNet otherwise as ``base``."""
    rows = []
    for bms, merge, meta in itertools.product((False, True), repeat=3):
        name = f"BMS={'on' if bms else 'off'} Merge-IN={'on' if merge else 'off'} meta={'on' if meta else 'off'}"
        cfg = dataclasses.replace(base, architecture=dict(base.architecture, name="kinet", merge_in=merge),
                                  loss=dict(base.loss, bms=bms), metadata=meta,
                                  model_id=f"{base.model_id}-bms{int(bms)}-merge{int(merge)}-meta{int(meta)}")
        rows.append((name, cfg))
    return rows


def input_mode_configs(base: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """MIX vs IMG-only vs ROI-only inputs (the cohort must be built with the matching mode)."""
    return [(m, dataclasses.replace(base, input_mode=m, model_id=f"{base.model_id}-{m}"))
            for m in ("mix", "img", "roi")]
