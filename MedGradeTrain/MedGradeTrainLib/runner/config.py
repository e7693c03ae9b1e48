"""Run configuration: a JSON or YAML file -> :class:`RunConfig` (defaults filled in, unknown keys refused).

```
kind:  {name: segmentation, module: optional.plugin.module, ...settings of the kind}
run_name, seed
split: {mode: kfold|holdout|none, folds, val_fraction, test_fraction, seed, file}
train: {epochs, final_epochs, batch_size, accumulate, max_steps_per_epoch, optimizer: {name, lr, ...},
        scheduler: {name, interval: epoch|step, ...} | null, amp, channels_last, clip_grad_norm,
        early_stopping: {patience, min_delta} | null, restore_best, checkpoint_every_steps,
        keep_checkpoints, num_workers, device, drop_last}
final_fit, register, models_root
```
The effective config (everything resolved) is what a run directory records and what ``resume`` reads.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError

SPLIT_DEFAULTS: dict[str, Any] = {"mode": "kfold", "folds": 5, "val_fraction": 0.2, "test_fraction": 0.0,
                                  "seed": None, "file": None}
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 10, "final_epochs": None, "batch_size": 8, "accumulate": 1, "max_steps_per_epoch": None,
    "optimizer": {"name": "AdamW", "lr": 3e-4, "weight_decay": 1e-4},
    "scheduler": None, "amp": True, "channels_last": True, "clip_grad_norm": None,
    "early_stopping": None, "restore_best": True, "checkpoint_every_steps": 0, "keep_checkpoints": 2,
    "num_workers": 0, "device": "auto", "drop_last": "auto",
}
TOP_DEFAULTS: dict[str, Any] = {"run_name": "", "seed": 0, "final_fit": True, "register": True,
                                "models_root": None}
SPLIT_MODES = ("kfold", "holdout", "none")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON (``.json``) or YAML (``.yaml``/``.yml``) mapping; a clear error otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(path, f"cannot read the run config ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - json/yaml parse errors of several types
        raise InputError(path, f"not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: "
                               f"{exc}") from None
    if not isinstance(data, dict):
        raise InputError(path, "a run config must be a mapping (an object at the top level)")
    return data


def _merge(defaults: dict[str, Any], given: dict[str, Any] | None, where: str, source: str) -> dict[str, Any]:
    given = given or {}
    if not isinstance(given, dict):
        raise InputError(source, f"'{where}' must be a mapping")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise InputError(source, f"unknown setting(s) in '{where}': {', '.join(unknown)} "
                                 f"(known: {', '.join(sorted(defaults))})")
    return {**copy.deepcopy(defaults), **copy.deepcopy(given)}


def resolve_config(data: dict[str, Any], source: str = "config", base: Path | None = None,
                   kind_defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill defaults (the kind's ``train`` defaults between the runner's and the user's), check types."""
    data = copy.deepcopy(data)
    known = set(TOP_DEFAULTS) | {"kind", "split", "train"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(source, f"unknown top-level setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    kind = data.get("kind")
    if isinstance(kind, str):
        kind = {"name": kind}
    if not isinstance(kind, dict) or not kind.get("name"):
        raise InputError(source, "the config needs 'kind': {\"name\": <model kind>, ...its settings}")
    out = {**TOP_DEFAULTS, **{k: data[k] for k in TOP_DEFAULTS if k in data}}
    out["kind"] = kind
    out["split"] = _merge(SPLIT_DEFAULTS, data.get("split"), "split", source)
    train_defaults = {**TRAIN_DEFAULTS, **(kind_defaults or {})}
    out["train"] = _merge(train_defaults, data.get("train"), "train", source)
    if out["split"]["mode"] not in SPLIT_MODES:
        raise InputError(source, f"split.mode must be one of {', '.join(SPLIT_MODES)}, got {out['split']['mode']!r}")
    if out["split"]["mode"] == "kfold" and int(out["split"]["folds"]) < 2:
        raise InputError(source, "split.folds must be at least 2 for k-fold (use mode 'holdout' or 'none')")
    tr = out["train"]
    for key in ("epochs", "batch_size", "accumulate"):
        if not isinstance(tr[key], int) or tr[key] < 1:
            raise InputError(source, f"train.{key} must be a positive integer, got {tr[key]!r}")
    if out["split"]["seed"] is None:
        out["split"]["seed"] = out["seed"]
    if base is not None:  # relative paths of the file's own settings resolve against its folder
        if out["split"]["file"] and not Path(out["split"]["file"]).is_absolute():
            out["split"]["file"] = str((base / out["split"]["file"]).resolve())
        kind["config_dir"] = str(base.resolve())
    return out


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a run config file (JSON/YAML); relative paths in it are later resolved against its folder."""
    path = Path(path)
    data = read_config_file(path)
    from .kind import get_kind

    name = data.get("kind", {}).get("name") if isinstance(data.get("kind"), dict) else data.get("kind")
    module = data.get("kind", {}).get("module") if isinstance(data.get("kind"), dict) else None
    cls = get_kind(name, module, str(path)) if name else None
    return resolve_config(data, str(path), path.parent, getattr(cls, "train_defaults", None))
