"""A site's side of a federated round (runs inside Flower's ClientApp, next to the site's cohort).

Each round is one short run of MedGrade's training runner on the site's own patients: the model kind's
data set, model and loss (the kind is the run's, the cohort the site's), the runner's step (optimiser, AMP,
accumulation, clipping, seeds), started from the global model; FedProx adds its proximal term to the
kind's loss. The site's run folder is temporary. What goes back: the weights, the training sample count
(the aggregation weight) and aggregates (counts, loss, Dice on the site's own validation patients) — no
file name, no patient id. A refused input is reported to the server as the site name and the kind of
problem only; the full message stays in the site's log."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from MedGradeCoreLib.errors import InputError

from .sites import Site, check_site, load_site, site_settings


def round_config(run: dict[str, Any], site: Site, server_round: int, seed: int, local_epochs: int,
                 n_patients: int) -> dict[str, Any]:
    """The runner config of one local round: the run's training settings, the site's validation split
    (fixed over the rounds), ``local_epochs`` epochs, a seed per round, no bundle, no schedule."""
    cfg = json.loads(json.dumps(run))
    cfg["kind"] = {"name": run["kind"]["name"]}
    cfg["seed"] = int(seed) + int(server_round)
    n_val = int(round(site.val_fraction * n_patients))
    holdout = site.val_fraction > 0 and n_patients >= 3 and n_val >= 1
    cfg["split"] = ({"mode": "holdout", "val_fraction": site.val_fraction, "seed": int(seed), "folds": 5,
                     "test_fraction": 0.0, "file": None} if holdout else
                    {"mode": "none", "folds": 5, "val_fraction": 0.0, "test_fraction": 0.0, "seed": int(seed),
                     "file": None})
    cfg["final_fit"] = not holdout
    cfg["register"] = False
    tr = cfg["train"]
    tr.update(epochs=int(local_epochs), final_epochs=None, early_stopping=None, restore_best=False, scheduler=None)
    return cfg


def site_kind(base, global_state: dict[str, Any], proximal_mu: float):
    """``base`` (a model kind holding the site's cohort) starting from ``global_state``; with
    ``proximal_mu`` > 0 the loss gains FedProx's ``mu/2 * ||w - w_global||^2``."""
    import torch

    from ..runner.kind import ModelKind

    class SiteKind(ModelKind):
        name = base.name
        metric, metric_mode = base.metric, base.metric_mode
        collate_fn = base.collate_fn

        def __init__(self) -> None:
            super().__init__(base.settings, base.run_dir)
            self.n_train = 0
            self.anchor: list[torch.Tensor] = []

        def patients(self):
            return base.patients()

        def split_data(self, name, train_patients, val_patients):
            split = base.split_data(name, train_patients, val_patients)
            self.n_train = len(split.train)
            return split

        def build_model(self, split):
            model = base.build_model(split)
            model.load_state_dict(global_state)
            self.anchor = [p.detach().clone() for p in model.parameters()]
            return model

        def training_step(self, model, batch, device):
            terms = base.training_step(model, batch, device)
            if proximal_mu > 0:
                params = model.module.parameters() if hasattr(model, "module") else model.parameters()
                prox = sum(((p - a.to(p.device)) ** 2).sum() for p, a in zip(params, self.anchor))
                terms["loss"] = terms["loss"] + 0.5 * proximal_mu * prox
                terms["proximal"] = prox.detach()
            return terms

        def validate(self, model, split, device):
            return base.validate(model, split, device)

        def write_bundle(self, model, split, out_dir, summary):
            return None

    return SiteKind()


def train_round(site: Site, run: dict[str, Any], arrays: list[np.ndarray], server_round: int, seed: int,
                local_epochs: int, proximal_mu: float = 0.0, labels: dict[str, Any] | None = None
                ) -> tuple[list[np.ndarray], int, dict[str, Any]]:
    """One local round on ``site``: (new weights, training sample count, aggregate metrics)."""
    import torch

    from ..runner.kind import SplitData, get_kind
    from ..runner.loop import run_training
    from .server import arrays_to_state, state_to_arrays

    if site.threads:
        torch.set_num_threads(int(site.threads))
    kind_cfg = run["kind"]
    check_site(site, kind_cfg, labels)
    cls = get_kind(kind_cfg["name"], kind_cfg.get("module"))
    with tempfile.TemporaryDirectory(prefix=f"medgrade-fl-{site.name}-") as tmp:
        rdir = Path(tmp) / f"round-{server_round:04d}"
        base = cls({k: v for k, v in site_settings(kind_cfg, site).items() if k not in ("name", "module")}, rdir)
        n_patients = len({p.patient_id for p in base.patients()})
        # the model's own layout (names, shapes, dtypes) maps the flat arrays back onto a state dict
        empty = SplitData("layout", [], None, [], [], {"atlas": None, "train_samples": []})
        state = arrays_to_state(base.build_model(empty).state_dict(), arrays)
        kind = site_kind(base, state, proximal_mu)
        res = run_training(round_config(run, site, server_round, seed, local_epochs, n_patients), rdir, kind=kind,
                           stdout=None)
        rec = res.splits[0]
        last = rec.get("last") or {}
        metrics: dict[str, Any] = {"site": site.name, "train_patients": len(rec["train_patients"]),
                                   "val_patients": len(rec["val_patients"]), "train_samples": int(kind.n_train),
                                   "train_loss": float(last.get("train_loss", float("nan")))}
        for k, v in last.items():
            if k.startswith("val_") and isinstance(v, (int, float)):
                metrics[k] = float(v)
        return state_to_arrays(res.model.state_dict()), int(kind.n_train), metrics


def make_client(site_spec: str | dict[str, Any]):
    """Flower NumPyClient of one site."""
    from flwr.client import NumPyClient

    class SiteClient(NumPyClient):
        def __init__(self) -> None:
            self.site = load_site(site_spec)

        def get_parameters(self, config):
            raise RuntimeError("the coordinator holds the initial model")

        def fit(self, parameters, config):
            try:
                return train_round(self.site, json.loads(str(config["run"])), list(parameters), int(config["round"]),
                                   int(config["seed"]), int(config["local_epochs"]),
                                   float(config.get("proximal_mu", 0.0)), json.loads(str(config.get("labels", "{}"))))
            except InputError as exc:  # the site's log has the full message; the server gets no path
                print(f"error: {exc}", file=sys.stderr)
                raise RuntimeError(f"site {self.site.name} refused its inputs (see the site's log)") from None
            except Exception as exc:  # noqa: BLE001 - any failure: reported without its details
                print(f"error: site {self.site.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                raise RuntimeError(f"site {self.site.name}: local training failed ({type(exc).__name__}; "
                                   "see the site's log)") from None

    return SiteClient()
