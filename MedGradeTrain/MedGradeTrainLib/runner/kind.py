"""The contract between the training runner and a model kind.

The runner (:mod:`MedGradeTrainLib.runner`) owns everything generic: the loop, mixed precision and
channels-last on GPUs, gradient accumulation, the LR schedule, early stopping on the validation metric,
seeds, checkpoints and resume, progress lines, DDP and the final bundle's registration. A model kind
owns only what is specific to it: which patients there are, the data sets of one split, the model, the
loss of one batch, the validation metrics and the bundle writer. No kind keeps a training loop of its own.

A kind is registered by name (``register_kind``) and built from the ``kind`` section of a run config; a
config loads only shipped kinds and ``medgrade.kinds`` entry points (:func:`get_kind`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset


@dataclass
class Patient:
    """One patient of a cohort as the splitter sees it: folds are made of patients, never of cases."""

    patient_id: str
    label: Any = None  # the stratification label (class), or None
    site: str | None = None  # institution / scanner, also used for stratification when given
    cases: list[str] = field(default_factory=list)


@dataclass
class SplitData:
    """The data of one split (a fold, or the final fit on every training patient)."""

    name: str  # "fold0", ..., "final"
    train: Dataset
    val: Dataset | None = None
    train_patients: list[str] = field(default_factory=list)
    val_patients: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific (e.g. the fold's FPG atlas)
    # a three-part split's held-out test patients (split file entries with "test"): never trained on, never
    # used for selection; the kind's finish_split scores them (the validation patients pick the checkpoint)
    test_patients: list[str] = field(default_factory=list)


class ModelKind(ABC):
    """One trainable model kind. Subclasses set ``name`` and the validation ``metric``/``metric_mode``."""

    name: ClassVar[str]
    metric: ClassVar[str] = "val_loss"  # key of validate()'s result used for early stopping / best model
    metric_mode: ClassVar[str] = "min"  # "min" or "max"
    # Optional: the kind's defaults for the config's ``train`` section (the user's values override them).
    train_defaults: ClassVar[dict[str, Any]] = {}
    collate_fn: ClassVar[Any] = None  # optional DataLoader collate function (None: torch's default)
    # a classifier: its training set needs two classes, and a fold validated on one class is not scored
    classifies: ClassVar[bool] = False

    def __init__(self, settings: dict[str, Any], run_dir: Path):
        self.settings = settings
        self.run_dir = Path(run_dir)

    @abstractmethod
    def patients(self) -> list[Patient]:
        """Every patient of the cohort (the runner splits them and records the split file)."""

    @abstractmethod
    def split_data(self, name: str, train_patients: list[str], val_patients: list[str]) -> SplitData:
        """Data sets of one split; nothing of ``val_patients`` may be used to fit anything here."""

    @abstractmethod
    def build_model(self, split: SplitData) -> nn.Module:
        """A freshly initialised model for this split (seeded by the runner before the call)."""

    @abstractmethod
    def training_step(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
        """Loss terms of one batch; ``"loss"`` is the one back-propagated (other terms are logged)."""

    @abstractmethod
    def validate(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, float]:
        """Validation metrics of ``model`` on ``split.val`` (must contain ``self.metric``)."""

    def finish_split(self, model: nn.Module, split: SplitData, device: torch.device) -> dict[str, Any]:
        """After training a split (e.g. fit a LightGBM head, predict the held-out patients); returns
        what goes into that split's metrics file."""
        return {}

    def summarize(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        """After every split: the run's summary (e.g. pooled out-of-fold AUC with its CI) from each split's
        record (``name``, ``best_metric``, ``finish`` = what :meth:`finish_split` returned, ...)."""
        return {}

    @abstractmethod
    def write_bundle(self, model: nn.Module, split: SplitData, out_dir: Path, summary: dict[str, Any]) -> Path | None:
        """Write a model-library bundle of the final model into ``out_dir`` (or a folder inside it) and return
        it; ``None`` when the kind's settings ask for no bundle."""


KINDS: dict[str, type[ModelKind]] = {}


# Kinds shipped with MedGrade: imported on first use (a plugin package registers a ``medgrade.kinds`` entry
# point ``name = "package.module"``; a config cannot name any other module).
KIND_MODULES: dict[str, str] = {"segmentation": "MedGradeTrainLib.kinds.segmentation",
                                "grading": "MedGradeTrainLib.kinds.grading",
                                "toy-regression": "MedGradeTrainLib.kinds.toy",
                                "breast-fusion": "MedGradeTrainLib.kinds.breast_fusion",
                                "umae-pretrain": "MedGradeTrainLib.kinds.umae",
                                "umae-finetune": "MedGradeTrainLib.kinds.umae"}


def register_kind(cls: type[ModelKind]) -> type[ModelKind]:
    """Class decorator: make ``cls`` available to run configs as ``"kind": {"name": cls.name, ...}``."""
    KINDS[cls.name] = cls
    return cls


def registered_kind_modules() -> dict[str, str]:
    """Kind name -> module for the shipped kinds and the ``medgrade.kinds`` entry points of installed
    packages: the only modules a run config can have imported (a config file must not run arbitrary code)."""
    from importlib.metadata import entry_points

    mods = dict(KIND_MODULES)
    try:
        for ep in entry_points(group="medgrade.kinds"):
            mods.setdefault(ep.name, ep.value.split(":")[0])
    except Exception:  # noqa: BLE001 - broken package metadata: the shipped kinds still load
        pass
    return mods


def get_kind(name: str, module: str | None = None, source: str = "config") -> type[ModelKind]:
    """The registered kind ``name``: one defined in this process, else imported from its registered module
    (shipped, or a ``medgrade.kinds`` entry point). ``module`` may only repeat that registered module."""
    import importlib

    from MedGradeCoreLib.errors import InputError

    if not isinstance(name, str) or not name:
        raise InputError(source, f"kind.name must be a kind's name (text), got {name!r}"[:200])
    if module is not None and not isinstance(module, str):
        raise InputError(source, f"kind.module must be text, got {module!r}"[:200])
    if name in KINDS and module is None:
        return KINDS[name]
    registered = registered_kind_modules()
    if module is not None and module != registered.get(name):
        raise InputError(source, f"kind.module {module!r} is not the registered module of kind {name!r}; only "
                                 "shipped kinds and kinds registered as 'medgrade.kinds' entry points load by name")
    mod = registered.get(name)
    if mod and name not in KINDS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            raise InputError(source, f"model kind module {mod!r} cannot be imported ({exc})") from None
    if name not in KINDS:
        known = sorted(set(KINDS) | set(registered))
        raise InputError(source, f"unknown model kind {name!r} (known: {', '.join(known)}; a plugin package "
                                 "registers its kind as a 'medgrade.kinds' entry point)")
    return KINDS[name]
