"""What the MedGradeTrain panel needs, without Qt: the effective config of a panel run (the chosen config
file with the cohort, labels and the common fields the panel shows as widgets), the ``medgrade`` command
lines it starts, the curves it plots, and the retrain summary it shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from MedGradeCoreLib.errors import InputError

from MedGradeCoreLib.atomic import atomic_write_text
from .runner.config import read_config_file
from .runner.progress_log import FILE as PROGRESS_FILE

PANEL_KINDS = ("segmentation", "grading", "breast-fusion", "umae-pretrain", "umae-finetune", "toy-regression")
REQUESTED = "requested-config.json"
# where each kind reads its cohort folder and labels CSV ("a.b": nested key; a list value: the cohort as one item)
COHORT_KEYS = {"segmentation": ("cohort", "labels"), "grading": ("cohort", "labels_csv"),
               "breast-fusion": ("inputs", None), "umae-pretrain": ("data.root", None),
               "umae-finetune": ("data.root", None), "toy-regression": (None, None)}
# installed with the module (package data; CMake resources): one starting config per kind
DEFAULT_CONFIGS = Path(__file__).resolve().with_name("default_configs")


def default_config(kind: str) -> Path | None:
    """The config the module ships for ``kind`` (the starting point when the user picks no config file)."""
    path = DEFAULT_CONFIGS / f"{kind}.json"
    return path if path.is_file() else None


def _set(kind_cfg: dict[str, Any], key: str, value: str) -> None:
    """``kind_cfg[key] = value`` (``a.b``: nested; a list-valued key gets ``[value]``)."""
    *parents, last = key.split(".")
    node = kind_cfg
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = [value] if isinstance(node.get(last), list) else value


def effective_config(kind: str, config: str | Path | None, cohort: str | Path | None = None,
                     labels: str | Path | None = None, epochs: int = 0, batch_size: int = 0, lr: float = 0.0,
                     folds: int = 0, device: str = "", models_root: str | None = None) -> dict[str, Any]:
    """The run config the panel starts: ``config`` (or the kind's shipped tiny config) with the widgets'
    values applied (0 / empty: keep the file's). Relative paths of the file are made absolute."""
    path = Path(config) if config else default_config(kind)
    if path is None:
        raise InputError(None, f"no default config for the kind {kind!r}: choose a config file (configs/ has examples)")
    data = read_config_file(path)
    k = data.get("kind") if isinstance(data.get("kind"), dict) else {"name": data.get("kind") or kind}
    k["name"] = kind
    base = path.resolve().parent
    for key in ("cohort", "labels", "labels_csv", "clinical_csv", "template"):
        if isinstance(k.get(key), str) and k[key] and not Path(k[key]).is_absolute() and (base / k[key]).exists():
            k[key] = str((base / k[key]).resolve())
    c_key, l_key = COHORT_KEYS.get(kind, ("cohort", "labels"))
    if cohort and c_key:
        _set(k, c_key, str(cohort))
        k.pop("patients", None)  # a tiny config's patient subset belongs to its own cohort
        if isinstance(k.get("data"), dict):
            k["data"].pop("patients", None)
    if labels and l_key:
        _set(k, l_key, str(labels))
    data["kind"] = k
    train = dict(data.get("train") or {})
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("device", device)):
        if value:
            train[key] = value
    if lr:
        train["optimizer"] = {**dict(train.get("optimizer") or {"name": "AdamW"}), "lr": float(lr)}
    data["train"] = train
    if folds:
        data["split"] = {**dict(data.get("split") or {}), "mode": "kfold" if folds > 1 else "none",
                         "folds": max(folds, 2)}
    data["register"] = True
    if models_root:
        data["models_root"] = models_root
    return data


def write_requested(run_dir: str | Path, data: dict[str, Any]) -> Path:
    """The panel's config, written into the (new) run folder before ``medgrade train`` reads it."""
    run_dir = Path(run_dir)
    if (run_dir / "config.json").is_file():
        raise InputError(run_dir, "already holds a run: Resume it, or choose another run folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / REQUESTED
    atomic_write_text(path, json.dumps(data, indent=1))
    return path


def train_args(config: str | Path, run_dir: str | Path, launcher: str = "local", gpus: int = 0,
               partition: str = "", print_script: bool = False) -> list[str]:
    """``medgrade train`` as the panel starts it (local and torchrun runs detached: they survive closing Slicer
    and the panel never waits on them)."""
    args = ["train", "--config", str(config), "--output", str(run_dir), "--launcher", launcher,
            "--gpus", str(int(gpus))]
    if print_script:
        args.append("--print-script")
    elif launcher in ("local", "torchrun"):
        args.append("--detach")
    if launcher == "slurm" and partition:
        args += ["--partition", partition]
    return args


def resume_args(run_dir: str | Path, launcher: str = "local", gpus: int = 0, partition: str = "") -> list[str]:
    args = ["resume", str(run_dir), "--launcher", launcher, "--gpus", str(int(gpus))]
    if launcher in ("local", "torchrun"):
        args.append("--detach")
    if launcher == "slurm" and partition:
        args += ["--partition", partition]
    return args


def cancel_args(run_dir: str | Path) -> list[str]:
    return ["cancel", str(run_dir)]


class ProgressReader:
    """New progress records of a run since the last call (the panel polls it from a QTimer)."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / PROGRESS_FILE
        self.pos, self.buf = 0, ""

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        size = self.path.stat().st_size
        if size < self.pos:  # rewritten by a resume: read again from the start
            self.pos, self.buf = 0, ""
        with self.path.open() as f:
            f.seek(self.pos)
            self.buf += f.read()
            self.pos = f.tell()
        *lines, self.buf = self.buf.split("\n")
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def curves(run_dir: str | Path) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Per split: ``{"train loss": (epochs, values), "<metric>": (epochs, values)}`` from its metrics."""
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    root = Path(run_dir) / "splits"
    summary_metric = None
    for split in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        f = split / "metrics.jsonl"
        if not f.is_file():
            continue
        rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        series: dict[str, tuple[list[float], list[float]]] = {}
        for key in ["train_loss"] + sorted({k for r in rows for k in r if k.startswith("val_")}):
            pts = [(r["epoch"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
            if pts:
                series[key.replace("_", " ")] = ([float(e) for e, _ in pts], [float(v) for _, v in pts])
        out[split.name] = series
        summary_metric = summary_metric or next((k for k in series if k != "train loss"), None)
    return out


def retrain_summary(cohort: str | Path, model: str | None = None, top: int = 3) -> str:
    """The panel's one-paragraph correction-to-retrain status."""
    from .retrain import corrected_since, model_time, uncertainty_ranking

    since = None
    if model:
        try:
            since = model_time(model)
        except Exception:  # noqa: BLE001 - a model without a creation time: count every correction
            since = None
    new = corrected_since(cohort, since)
    lines = [f"{len(new)} corrected case(s) in the cohort since {'model ' + model if model else 'ever'}."]
    ranking = uncertainty_ranking(cohort)[:top]
    if ranking:
        lines.append("Correct next (most uncertain AI masks first):")
        lines += [f"{r['rank']}. {r['case']}: {r['reason']}" for r in ranking]
    return "\n".join(lines)
