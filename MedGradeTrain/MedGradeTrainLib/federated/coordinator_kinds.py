"""The model kinds as the coordinator holds them: model and bundle only, no cohort (the data stay at the
sites). Segmentation: an architecture that needs the FPG atlas (built from every training mask) is
refused, since the atlas would have to pool the sites' masks. Grading: the network is federated and
decides itself (``head: network``, its own classifier layer averaged with the rest). The LightGBM head is
refused: fitting it at the coordinator would need the sites' slice features on the wire, and trees fitted
at each site cannot be averaged by FedAvg/FedProx/FedAdam (nor pass SecAgg+ or DP as weights do)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError


def coordinator_kind(run_cfg: dict[str, Any], run_dir: Path):
    name = run_cfg["kind"]["name"]
    settings = {k: v for k, v in run_cfg["kind"].items() if k not in ("name", "module")}
    if name == "segmentation":
        return _segmentation(settings, run_dir)
    if name == "grading":
        return _grading(settings, run_dir)
    raise InputError(None, f"federated training supports the segmentation and grading kinds, not {name!r}")


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


def _grading(settings: dict[str, Any], run_dir: Path):
    from MedGradePredictLib.model import GradingModel
    from MedGradePredictLib.model_bundle import save_grading_bundle
    from MedGradePredictLib.networks import build_network
    from MedGradePredictLib.train import config_dict

    from ..kinds.grading import GradingKind, grading_config
    from ..runner.kind import ModelKind

    class CoordinatorGrading(GradingKind):
        def __init__(self) -> None:
            ModelKind.__init__(self, settings, run_dir)
            self.cfg = grading_config(settings)
            self.gsettings = self.cfg.settings()
            if self.gsettings.head != "network":
                raise InputError(None, "federated grading trains the network only: set the kind's \"head\": "
                                       "\"network\" (a LightGBM head is fitted on pooled training slices)")

        def build(self):
            return build_network(self.gsettings.architecture)

        def write_federated_bundle(self, model, out_dir: Path, summary: dict[str, Any]) -> Path:
            fed = summary["federated"]
            trained_on = (f"{self.cfg.trained_on + '; ' if self.cfg.trained_on else ''}federated: "
                          f"{fed['sites']['count']} sites, {fed['rounds_run']} rounds, "
                          f"{fed['strategy']['name']} (Flower)")
            gm = GradingModel(model.eval(), self.gsettings, None, self.cfg.model_id, device="cpu")
            return save_grading_bundle(gm, out_dir / self.cfg.model_id, {"summary": summary}, trained_on,
                                       training=dict(config_dict(self.cfg), federated=True))

    return CoordinatorGrading()
