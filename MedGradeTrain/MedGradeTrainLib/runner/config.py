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
import math
import re
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
MAX_CONFIG_BYTES = 1 << 20  # a run config is a few kB; a larger file is refused before parsing


def _yaml_without_aliases(text: str, path: Path) -> Any:
    """``yaml.safe_load`` refusing anchors/aliases: an alias bomb (``&a [*b, *b, ...]``) never expands."""
    import yaml

    class _NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):  # type: ignore[override]
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise InputError(path, f"YAML aliases (*{event.anchor}) are not allowed in a run config "
                                       f"(line {event.start_mark.line + 1}); write the values out")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON (``.json``) or YAML (``.yaml``/``.yml``) mapping; a clear error otherwise."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise InputError(path, f"is {path.stat().st_size} bytes; a run config is at most {MAX_CONFIG_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read the run config ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(path, "is not UTF-8 text") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = _yaml_without_aliases(text, path)
        else:
            data = json.loads(text, parse_constant=_no_constant)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - json/yaml parse errors of several types (RecursionError too)
        raise InputError(path, f"not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: "
                               f"{' '.join(str(exc).split())[:300]}") from None
    if not isinstance(data, dict):
        raise InputError(path, "a run config must be a mapping (an object at the top level)")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a run config accepts")


def _merge(defaults: dict[str, Any], given: dict[str, Any] | None, where: str, source: str) -> dict[str, Any]:
    given = given or {}
    if not isinstance(given, dict):
        raise InputError(source, f"'{where}' must be a mapping")
    unknown = sorted(map(str, set(given) - set(defaults)))
    if unknown:
        raise InputError(source, f"unknown setting(s) in '{where}': {', '.join(unknown)} "
                                 f"(known: {', '.join(sorted(defaults))})")
    return {**copy.deepcopy(defaults), **copy.deepcopy(given)}


def resolve_config(data: dict[str, Any], source: str = "config", base: Path | None = None,
                   kind_defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fill defaults (the kind's ``train`` defaults between the runner's and the user's), check types."""
    data = copy.deepcopy(data)
    known = set(TOP_DEFAULTS) | {"kind", "split", "train"}
    unknown = sorted(map(str, set(data) - known))
    if unknown:
        raise InputError(source, f"unknown top-level setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    kind = data.get("kind")
    if isinstance(kind, dict) and kind.get("name") is not None and not isinstance(kind.get("name"), str):
        raise InputError(source, f"kind.name must be text, got {kind.get('name')!r}"[:200])
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
    if not _int(out["split"]["folds"]):
        raise InputError(source, f"split.folds must be an integer, got {out['split']['folds']!r}"[:300])
    if out["split"]["mode"] == "kfold" and int(out["split"]["folds"]) < 2:
        raise InputError(source, "split.folds must be at least 2 for k-fold (use mode 'holdout' or 'none')")
    _check_values(out, source)
    if out["split"]["seed"] is None:
        out["split"]["seed"] = out["seed"]
    if base is not None:  # relative paths of the file's own settings resolve against its folder
        if out["split"]["file"] and not Path(out["split"]["file"]).is_absolute():
            out["split"]["file"] = str((base / out["split"]["file"]).resolve())
        kind["config_dir"] = str(base.resolve())
    return out


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_values(cfg: dict[str, Any], source: str) -> None:
    """Types and ranges of every runner setting, before the run folder exists (a bad value never leaves a
    half-made run that blocks the retry)."""
    tr, sp = cfg["train"], cfg["split"]

    def bad(key: str, want: str, value: Any) -> InputError:
        return InputError(source, f"{key} must be {want}, got {value!r}"[:300])

    for key in ("epochs", "batch_size", "accumulate", "keep_checkpoints"):
        if not _int(tr[key]) or tr[key] < 1:
            raise bad(f"train.{key}", "a positive integer", tr[key])
    for key in ("final_epochs", "max_steps_per_epoch"):
        if tr[key] is not None and (not _int(tr[key]) or tr[key] < 1):
            raise bad(f"train.{key}", "a positive integer or null", tr[key])
    for key in ("checkpoint_every_steps", "num_workers"):
        if not _int(tr[key]) or tr[key] < 0:
            raise bad(f"train.{key}", "a non-negative integer", tr[key])
    for key in ("amp", "channels_last", "restore_best"):
        if not isinstance(tr[key], bool):
            raise bad(f"train.{key}", "true or false", tr[key])
    if tr["drop_last"] != "auto" and not isinstance(tr["drop_last"], bool):
        raise bad("train.drop_last", "auto, true or false", tr["drop_last"])
    if tr["clip_grad_norm"] is not None and (not _finite(tr["clip_grad_norm"]) or tr["clip_grad_norm"] <= 0):
        raise bad("train.clip_grad_norm", "a positive number or null", tr["clip_grad_norm"])
    opt = tr["optimizer"]
    if not isinstance(opt, dict) or not isinstance(opt.get("name"), str):
        raise bad("train.optimizer", "a mapping with a name", opt)
    for key, value in opt.items():
        if key in ("lr", "weight_decay", "momentum", "eps") and (not _finite(value) or value < 0):
            raise bad(f"train.optimizer.{key}", "a finite number >= 0", value)
    for key in ("scheduler", "early_stopping"):
        if tr[key] is not None and not isinstance(tr[key], dict):
            raise bad(f"train.{key}", "a mapping or null", tr[key])
    dev = tr["device"]
    if not isinstance(dev, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:[0-9]{1,2})?", dev.lower()):
        raise bad("train.device", "auto, cpu, cuda, cuda:N or mps", dev)
    if not _int(cfg["seed"]) or not (_int(sp["seed"]) or sp["seed"] is None):
        raise bad("seed", "an integer", cfg["seed"] if not _int(cfg["seed"]) else sp["seed"])
    if not _int(sp["folds"]):
        raise bad("split.folds", "an integer", sp["folds"])
    for key in ("val_fraction", "test_fraction"):
        if not _finite(sp[key]) or not 0 <= sp[key] < 1:
            raise bad(f"split.{key}", "a number in [0, 1)", sp[key])
    for key in ("final_fit", "register"):
        if not isinstance(cfg[key], bool):
            raise bad(key, "true or false", cfg[key])


def check_device_available(device: str, source: str = "config") -> None:
    """An explicitly requested GPU that is not there is an error (never a silent CPU fallback)."""
    if device.lower() in ("auto", "cpu"):
        return
    from MedGradeCoreLib.devices import choose_device

    choice = choose_device(device)
    if choice.device == "cpu":
        raise InputError(source, f"train.device {device!r}: {choice.warnings[0] if choice.warnings else 'not available'}"
                                 " (use 'auto' or 'cpu')")


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a run config file (JSON/YAML); relative paths in it are later resolved against its folder."""
    path = Path(path)
    data = read_config_file(path)
    from .kind import get_kind

    name = data.get("kind", {}).get("name") if isinstance(data.get("kind"), dict) else data.get("kind")
    module = data.get("kind", {}).get("module") if isinstance(data.get("kind"), dict) else None
    cls = get_kind(name, module, str(path)) if name else None
    return resolve_config(data, str(path), path.parent, getattr(cls, "train_defaults", None))
