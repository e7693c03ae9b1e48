"""Federated run config (JSON or YAML): the runner config every site trains with, plus the federation.

```
run:       path of a runner config (configs/tiny-segmentation.json) or the mapping itself
sites:     [site config files or mappings]  (the local launcher and the simulation give one to each SuperNode)
rounds, local_epochs, min_sites, round_timeout_s, seed
strategy:  {name: FedAvg | FedProx | FedAdam, proximal_mu, eta, eta_l, beta_1, beta_2, tau}
privacy:   {secagg: {num_shares, reconstruction_threshold, clipping_range, quantization_range} | null,
            dp: {noise_multiplier, clipping_norm} | null}
labels:    {mask_values: [0, 1], grades: [G2, G3]}   (what a site's cohort may hold; checked at the start)
```
The coordinator (ServerApp) reads only the model and training settings of ``run``; every data setting
(``cohort``, ``patients``, ``cases``, ``labels``) is the sites' own and is dropped before anything is sent."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError

STRATEGIES = ("FedAvg", "FedProx", "FedAdam")
DATA_KEYS = ("cohort", "patients", "cases", "labels", "config_dir")
DEFAULTS: dict[str, Any] = {"run": None, "sites": [], "rounds": 3, "local_epochs": 1, "min_sites": 2,
                            "round_timeout_s": 600.0, "seed": None, "strategy": {"name": "FedAvg"},
                            "privacy": {"secagg": None, "dp": None}, "labels": {}}
STRATEGY_KEYS = {"FedAvg": (), "FedProx": ("proximal_mu",),
                 "FedAdam": ("eta", "eta_l", "beta_1", "beta_2", "tau")}
SECAGG_KEYS = ("num_shares", "reconstruction_threshold", "clipping_range", "quantization_range")
DP_KEYS = ("noise_multiplier", "clipping_norm")


def load_federated_config(path: str | Path) -> dict[str, Any]:
    """Read and check a federated config; the runner config and site paths are resolved to absolute."""
    from ..runner.config import load_config, read_config_file, resolve_config
    from ..runner.kind import get_kind

    path = Path(path)
    data = read_config_file(path)
    src = str(path)
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise InputError(src, f"unknown federated setting(s): {', '.join(unknown)} (known: {', '.join(DEFAULTS)})")
    cfg = {**copy.deepcopy(DEFAULTS), **copy.deepcopy(data)}
    base = path.resolve().parent
    run = cfg["run"]
    if isinstance(run, str):
        run_path = Path(run) if Path(run).is_absolute() else base / run
        cfg["run"] = load_config(run_path)
    elif isinstance(run, dict):
        kind = run.get("kind") or {}
        cls = get_kind(kind.get("name") if isinstance(kind, dict) else kind, None, src)
        cfg["run"] = resolve_config(run, src, base, getattr(cls, "train_defaults", None))
    else:
        raise InputError(src, "'run' must name a runner config file or hold one")
    sites = []
    for i, s in enumerate(cfg["sites"]):
        if isinstance(s, str):
            sites.append(str(Path(s) if Path(s).is_absolute() else (base / s).resolve()))
        elif isinstance(s, dict):
            sites.append({**s, "cohort": str((base / s["cohort"]).resolve()) if s.get("cohort") else None})
        else:
            raise InputError(src, f"sites[{i}] must be a site config file or mapping")
    cfg["sites"] = sites
    check_federation(cfg, src)
    if cfg["seed"] is None:
        cfg["seed"] = int(cfg["run"]["seed"])
    return cfg


def check_federation(cfg: dict[str, Any], src: str) -> None:
    for key in ("rounds", "local_epochs", "min_sites"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise InputError(src, f"{key} must be a positive integer, got {cfg[key]!r}")
    st = cfg["strategy"] if isinstance(cfg["strategy"], dict) else {"name": cfg["strategy"]}
    cfg["strategy"] = st
    if st.get("name") not in STRATEGIES:
        raise InputError(src, f"strategy.name must be one of {', '.join(STRATEGIES)}, got {st.get('name')!r}")
    bad = sorted(set(st) - {"name", *STRATEGY_KEYS[st["name"]]})
    if bad:
        raise InputError(src, f"strategy {st['name']}: unknown setting(s) {', '.join(bad)}")
    priv = {"secagg": None, "dp": None, **(cfg["privacy"] or {})}
    cfg["privacy"] = priv
    bad = sorted(set(priv) - {"secagg", "dp"})
    if bad:
        raise InputError(src, f"privacy: unknown setting(s) {', '.join(bad)} (known: secagg, dp)")
    for name, keys in (("secagg", SECAGG_KEYS), ("dp", DP_KEYS)):
        if priv[name] is not None:
            if not isinstance(priv[name], dict) or sorted(set(priv[name]) - set(keys)):
                raise InputError(src, f"privacy.{name} must be a mapping of {', '.join(keys)}")
    if priv["dp"] is not None:
        for k in DP_KEYS:
            if not isinstance(priv["dp"].get(k), (int, float)) or priv["dp"][k] <= 0:
                raise InputError(src, f"privacy.dp.{k} must be a positive number")
    kind = cfg["run"]["kind"]
    if kind["name"] not in ("segmentation", "grading"):
        raise InputError(src, f"federated training supports the segmentation and grading kinds, "
                              f"not {kind['name']!r}")


def model_settings(run_cfg: dict[str, Any]) -> dict[str, Any]:
    """The runner config without any data setting: what the coordinator keeps and sends to the sites."""
    out = copy.deepcopy(run_cfg)
    out["kind"] = {k: v for k, v in out["kind"].items() if k not in DATA_KEYS}
    out["split"] = {**out["split"], "file": None}
    return out
