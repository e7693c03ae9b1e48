"""The model kinds as the coordinator holds them: model and bundle only, no cohort (the data stay at the
sites). Segmentation is supported; an architecture that needs the FPG atlas (built from every training
mask) is refused, since the atlas would have to pool the sites' masks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError


def coordinator_kind(run_cfg: dict[str, Any], run_dir: Path):
    name = run_cfg["kind"]["name"]
    settings = {k: v for k, v in run_cfg["kind"].items() if k not in ("name", "module")}
    if name == "segmentation":
        return _segmentation(settings, run_dir)
    raise InputError(None, f"federated training supports the segmentation kind, not {name!r}")


def atlas_free(arch: dict[str, Any]) -> bool:
    return not (arch.get("fpg_loss") or arch.get("dual_guidance"))


def _segmentation(settings: dict[str, Any], run_dir: Path):
    from MedGradeSegmentLib.segmentation.config import TrainConfig
    from MedGradeSegmentLib.segmentation.train import resolve_architecture

    from ..kinds.segmentation import KIND_ONLY, SegmentationKind
    from ..runner.kind import ModelKind, SplitData

    class CoordinatorSegmentation(SegmentationKind):
        def __init__(self) -> None:
            ModelKind.__init__(self, settings, run_dir)
            data = {k: v for k, v in settings.items() if k not in KIND_ONLY}
            self.cfg = TrainConfig.from_dict({**data, "cases": [], "output_dir": str(run_dir)}, "kind")
            self.arch = resolve_architecture(self.cfg)
            if not atlas_free(self.arch):
                raise InputError(None, "federated training needs an architecture without the FPG atlas "
                                       "(fpg_loss/dual_guidance pool every site's masks); e.g. UNet or a "
                                       "MIG-Net ablation row without FPG")
            self.needs_atlas, self.template = False, None
            self.split = SplitData("federated", [], None, [], [], {"atlas": None, "train_samples": []})

        def build(self):
            return self.build_model(self.split)

        def write_federated_bundle(self, model, out_dir: Path, summary: dict[str, Any]) -> Path:
            fed = summary["federated"]
            self.cfg.trained_on = (f"{self.cfg.trained_on + '; ' if self.cfg.trained_on else ''}federated: "
                                   f"{fed['sites']['count']} sites, {fed['rounds_run']} rounds, "
                                   f"{fed['strategy']['name']} (Flower)")
            return self.write_bundle(model, self.split, out_dir, summary)

    return CoordinatorSegmentation()
