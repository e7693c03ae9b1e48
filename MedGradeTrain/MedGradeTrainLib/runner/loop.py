"""The training loop over a :class:`ModelKind`: every split of the run (patient-level folds, then the final
fit), each with mixed precision and channels-last on CUDA, gradient accumulation, an LR schedule from
``torch.optim.lr_scheduler``, early stopping on the validation metric, seeds, verified checkpoints every
epoch and every N optimizer steps (model, optimiser, scheduler, scaler, RNG states, data position), DDP
under torchrun, progress JSON lines, and the final bundle written and registered in the model library.

A run killed at any moment and resumed (:func:`run_training` with ``resume=True``) continues from the
newest checkpoint that verifies as if never stopped: the sampler is a deterministic function of
(seed, epoch), per-sample augmentation of (seed, epoch, index), and the RNG states are restored last.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from MedGradeCoreLib.devices import choose_device
from MedGradeCoreLib.errors import InputError, MedGradeError
from MedGradeCoreLib.progress import Progress

from . import checkpoint as ckpt
from .config import check_device_available, load_config, resolve_config
from .distributed import (ResumableBatchSampler, SeededDataset, World, all_reduce_sum, barrier, broadcast,
                          init_world, shutdown)
from .kind import ModelKind, SplitData, get_kind
from .progress_log import ProgressLog, gpu_memory_mb
from .splits import make_splits, merge_patients, read_split_file, validate_split_file

CONFIG_FILE, SPLIT_FILE, RUN_FILE, SUMMARY_FILE = "config.json", "split.json", "run.json", "summary.json"


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    splits: list[dict[str, Any]]
    model: nn.Module | None = None
    bundle: Path | None = None
    kind: ModelKind | None = None
    registered: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def build_optimizer(params, spec: dict[str, Any]) -> torch.optim.Optimizer:
    spec = dict(spec)
    name = spec.pop("name", "AdamW")
    cls = getattr(torch.optim, name, None)
    if not isinstance(cls, type):
        raise InputError(None, f"train.optimizer.name {name!r} is not a torch.optim optimizer")
    return cls(params, **spec)


def build_scheduler(opt: torch.optim.Optimizer, spec: dict[str, Any] | None, epochs: int, steps_per_epoch: int):
    """A ``torch.optim.lr_scheduler`` class by name; ``T_max``/``total_steps`` default to the run length."""
    if not spec:
        return None, "epoch"
    spec = dict(spec)
    name, interval = spec.pop("name"), spec.pop("interval", "epoch")
    cls = getattr(torch.optim.lr_scheduler, name, None)
    if not isinstance(cls, type):
        raise InputError(None, f"train.scheduler.name {name!r} is not a torch.optim.lr_scheduler class")
    length = epochs * max(steps_per_epoch, 1) if interval == "step" else epochs
    if name == "CosineAnnealingLR":
        spec.setdefault("T_max", max(length, 1))
    if name == "OneCycleLR":
        spec.setdefault("total_steps", max(length, 1))
        spec.setdefault("max_lr", opt.param_groups[0]["lr"])
    return cls(opt, **spec), interval


def _better(value: float | None, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _write_metrics(sdir: Path, history: list[dict[str, Any]]) -> None:
    """metrics.csv and metrics.jsonl of a split, rewritten whole (so a resume repeats no epoch)."""
    cols = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(history)
    sdir.mkdir(parents=True, exist_ok=True)  # a final split without validation or step checkpoints
    ckpt.atomic_write_text(sdir / "metrics.csv", buf.getvalue())
    ckpt.atomic_write_text(sdir / "metrics.jsonl", "".join(json.dumps(r, default=str) + "\n" for r in history))


class Runner:
    def __init__(self, cfg: dict[str, Any], run_dir: Path, kind: ModelKind | None = None,
                 progress: Progress | None = None, stdout: TextIO | None = sys.stdout, prefixed: bool = False,
                 resume: bool = False):
        self.cfg, self.run_dir, self.resume = cfg, Path(run_dir), resume
        self.tcfg = cfg["train"]
        self.world = init_world(self.tcfg["device"])
        self.progress = progress or Progress()
        dev = choose_device(self.tcfg["device"]).device
        if self.world.distributed and dev.startswith("cuda"):
            dev = f"cuda:{self.world.local_rank}"
        self.device = torch.device(dev)
        self.cuda = self.device.type == "cuda"
        self.use_amp = bool(self.tcfg["amp"]) and self.cuda
        self.channels_last = bool(self.tcfg["channels_last"]) and self.cuda
        if kind is None:
            cls = get_kind(cfg["kind"]["name"], cfg["kind"].get("module"))
            kind = cls({k: v for k, v in cfg["kind"].items() if k not in ("name", "module")}, self.run_dir)
        self.kind = kind
        self.kind.channels_last = self.channels_last  # type: ignore[attr-defined]
        if isinstance(getattr(self.kind, "progress", None), Progress):  # a kind's long set-up can be cancelled
            self.kind.progress = self.progress.sub(0.0, 0.0)  # type: ignore[attr-defined]
        self.run_id = self._run_record()
        self.log = ProgressLog(self.run_dir, self.run_id, stdout, prefixed, enabled=self.world.main)
        self.t_session, self.steps_session = time.perf_counter(), 0
        self.plan: list[dict[str, Any]] = []

    # --- bookkeeping -----------------------------------------------------------------------------
    def _run_record(self) -> str:
        path = self.run_dir / RUN_FILE
        rec = json.loads(path.read_text()) if path.is_file() else {}
        run_id = rec.get("run_id") or (f"{self.cfg.get('run_name') or self.run_dir.name}-"
                                       f"{time.strftime('%Y%m%d-%H%M%S')}")
        if self.world.main:
            from MedGradeCoreLib.processes import identity

            rec.update(run_id=run_id, status="running", pid=os.getpid(), process=identity(os.getpid()),
                       kind=self.cfg["kind"]["name"],
                       world_size=self.world.size, updated=time.time(), run_dir=str(self.run_dir.resolve()))
            rec.setdefault("started", time.time())
            rec.setdefault("launcher", os.environ.get("MEDGRADE_LAUNCHER", "local"))
            ckpt.atomic_write_text(path, json.dumps(rec, indent=1))
        return run_id

    def _status(self, status: str, **extra: Any) -> None:
        if not self.world.main:
            return
        path = self.run_dir / RUN_FILE
        rec = json.loads(path.read_text()) if path.is_file() else {}
        rec.update(status=status, updated=time.time(), **extra)
        ckpt.atomic_write_text(path, json.dumps(rec, indent=1))

    def _splits(self) -> dict[str, Any]:
        patients = merge_patients(self.kind.patients())
        known = {p.patient_id for p in patients}
        path = self.run_dir / SPLIT_FILE
        sc = self.cfg["split"]
        if sc.get("file"):
            data = read_split_file(sc["file"], known)
        else:
            data = make_splits(patients, sc["mode"], int(sc["folds"]), float(sc["val_fraction"]),
                               float(sc["test_fraction"]), int(sc["seed"]))
        if path.is_file():  # a resumed run must see the cohort it started with
            before = read_split_file(path, known)
            if [(s["train"], s["val"]) for s in before["splits"]] != [(s["train"], s["val"]) for s in data["splits"]] \
                    or before.get("test") != data.get("test"):
                raise InputError(path, "the cohort changed since this run started (its split differs); "
                                       "start a new run")
        validate_split_file(data, path)
        if self.world.main:
            ckpt.atomic_write_text(path, json.dumps(data, indent=1, default=str))
        all_train = sorted(known - set(data["test"]))
        plan = [dict(s) for s in data["splits"]]
        self._one_class_val: dict[str, str] = {}
        if getattr(self.kind, "classifies", False):
            # a patient may hold cases of both classes (e.g. the toy cohort's as-acquired and swapped slices)
            labels: dict[str, set[str]] = {}
            for p in self.kind.patients():  # before merge_patients, which keeps one label per patient
                if p.label is not None:
                    labels.setdefault(p.patient_id, set()).add(str(p.label))

            def classes_of(ids: list[str]) -> list[str]:
                return sorted(set().union(*(labels.get(i, set()) for i in ids)))

            classes = classes_of(all_train)
            if len(classes) == 1:  # (a kind that exposes no patient labels is not judged here)
                raise InputError(self.run_dir, f"every training patient is of class {classes[0]!r} (1 class): a "
                                               f"{self.kind.name} model needs at least two classes to learn anything")
            for s in plan:
                val = classes_of(s["val"])
                if len(val) == 1:
                    self._one_class_val[s["name"]] = f"its validation patients are all {', '.join(val) or 'unlabelled'}"
        if self.cfg["final_fit"] or not plan:
            plan.append({"name": "final", "train": all_train, "val": []})
        self.plan = plan
        return data

    # --- one split ---------------------------------------------------------------------------------
    def _emit(self, event: str, **f: Any) -> None:
        self.log.emit(event, **f)

    def _eta(self, remaining_steps: int) -> float | None:
        if not self.steps_session:
            return None
        return (time.perf_counter() - self.t_session) / self.steps_session * remaining_steps

    def _train_split(self, index: int, spec: dict[str, Any]) -> tuple[dict[str, Any], nn.Module, SplitData]:
        name = spec["name"]
        sdir = self.run_dir / "splits" / name
        cdir = sdir / "checkpoints"
        seed = int(self.cfg["seed"]) + index
        if self.world.main:
            sdir.mkdir(parents=True, exist_ok=True)
        seed_everything(seed)
        split = self.kind.split_data(name, list(spec["train"]), list(spec["val"]))
        split.test_patients = list(spec.get("test", []))
        model = self.kind.build_model(split).to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        done = sdir / "result.json"
        tc = self.tcfg
        final = name == "final"
        epochs = int(tc["final_epochs"] or tc["epochs"]) if final else int(tc["epochs"])
        if done.is_file() and self.resume:
            record = json.loads(done.read_text())
            if record["epochs_run"] < epochs and not record["stopped_early"] and self.world.main:
                done.unlink()  # the run was extended: continue this split from its last checkpoint
            barrier(self.world)
        if done.is_file():  # finished before a resume: its record and weights
            model.load_state_dict(ckpt.load_verified(sdir / "final.pt")["model"])
            record = json.loads(done.read_text())
            self._global_step0 = int(record["global_step"])
            return record, model.eval(), split

        opt = build_optimizer(model.parameters(), tc["optimizer"])
        ds = SeededDataset(split.train, seed)
        sampler = ResumableBatchSampler(ds, int(tc["batch_size"]), self.world, seed, True, tc["drop_last"])
        n_batches = sampler.batches_per_epoch()
        if tc["max_steps_per_epoch"]:
            n_batches = min(n_batches, int(tc["max_steps_per_epoch"]))
        if n_batches == 0:
            raise InputError(None, f"{name}: no training batch ({len(split.train)} samples, batch size "
                                   f"{tc['batch_size']})")
        accum = int(tc["accumulate"])
        opt_steps = math.ceil(n_batches / accum)
        self._steps_hint = opt_steps
        sched, interval = build_scheduler(opt, tc["scheduler"], epochs, opt_steps)
        scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        es = tc["early_stopping"] or None
        metric, mode = self.kind.metric, self.kind.metric_mode
        st: dict[str, Any] = {"epoch": 0, "batch": 0, "global_step": self._global_step0, "history": [],
                              "best": None, "best_epoch": -1, "bad_epochs": 0, "sums": {}, "n": 0,
                              "stopped_early": False}
        state = ckpt.latest_valid(cdir, warn=lambda m: print(m, file=sys.stderr)) if self.resume else None
        if state is not None:
            pos = state["position"]
            if pos["world_size"] != self.world.size:
                raise InputError(state["_path"], f"checkpoint was written by {pos['world_size']} process(es); "
                                                 f"resume it with the same number, not {self.world.size}")
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if sched is not None and state.get("scheduler") is not None:
                sched.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            st.update(json.loads(state["loop"]))
            st["epoch"], st["batch"] = pos["epoch"], pos["batch"]
            self.log.truncate(int(state["log_seq"]))
            if self.world.main:
                _write_metrics(sdir, st["history"])
            self._emit("resume", split=name, epoch=st["epoch"], step=st["global_step"], batch=st["batch"],
                       message=f"resumed {name} from {Path(state['_path']).name}")
            ckpt.set_rng_state(state["rng"][min(self.world.rank, len(state["rng"]) - 1)])
        net = model
        if self.world.distributed:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.cuda else None)

        def save(epoch: int, batch: int) -> None:
            rngs = [ckpt.rng_state()]
            if self.world.distributed:
                import torch.distributed as dist

                gathered: list[Any] = [None] * self.world.size
                dist.all_gather_object(gathered, rngs[0])
                rngs = gathered
            if self.world.main:
                loop = {k: st[k] for k in ("global_step", "history", "best", "best_epoch", "bad_epochs", "sums",
                                           "n", "stopped_early")}
                ckpt.save_verified({"model": _unwrap(net).state_dict(), "optimizer": opt.state_dict(),
                                    "scheduler": sched.state_dict() if sched is not None else None,
                                    "scaler": scaler.state_dict(), "rng": rngs, "loop": json.dumps(loop),
                                    "position": {"epoch": epoch, "batch": batch, "world_size": self.world.size,
                                                 "seed": seed},
                                    "log_seq": self.log.seq},
                                   cdir / f"step-{st['global_step']:09d}.pt")
                ckpt.prune(cdir, int(tc["keep_checkpoints"]))
            barrier(self.world)

        total_steps = epochs * opt_steps
        every = int(tc["checkpoint_every_steps"] or 0)
        for epoch in range(st["epoch"], epochs):
            t0 = time.perf_counter()
            ds.epoch = epoch
            sampler.set_epoch(epoch, st["batch"])
            loader = DataLoader(ds, batch_sampler=sampler, num_workers=int(tc["num_workers"]),
                                collate_fn=self.kind.collate_fn, pin_memory=self.cuda,
                                generator=torch.Generator())  # never draws from the global RNG
            net.train()
            b = st["batch"]
            for batch in loader:
                if b >= n_batches:
                    break
                split_frac = (epoch * n_batches + b) / (epochs * n_batches)
                self.progress((index + split_frac) / len(self.plan),
                              f"epoch {epoch + 1}/{epochs} step {b + 1}/{n_batches} ({name})")
                boundary = (b + 1) % accum == 0 or b + 1 == n_batches
                sync = net.no_sync() if (self.world.distributed and not boundary) else contextlib.nullcontext()
                with sync:
                    with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                        terms = self.kind.training_step(net, batch, self.device)
                    if not torch.isfinite(terms["loss"].detach()).all():
                        raise MedGradeError(f"{self.run_dir}: the loss is {float(terms['loss'].detach())} at {name} "
                                            f"epoch {epoch + 1} batch {b + 1}: training diverged (lower "
                                            f"train.optimizer.lr, now {opt.param_groups[0]['lr']:g}, or set "
                                            "train.clip_grad_norm); resume after fixing it")
                    scaler.scale(terms["loss"] / accum).backward()
                for k, v in terms.items():
                    st["sums"][k] = st["sums"].get(k, 0.0) + float(v.detach())
                st["n"] += 1
                b += 1
                if not boundary:
                    continue
                if tc["clip_grad_norm"]:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(net.parameters(), float(tc["clip_grad_norm"]))
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                if sched is not None and interval == "step":
                    sched.step()
                st["global_step"] += 1
                self.steps_session += 1
                done_steps = epoch * opt_steps + math.ceil(b / accum)
                self._emit("step", split=name, epoch=epoch + 1, step=st["global_step"], batch=b,
                           loss=float(terms["loss"].detach()), metric=st["best"], metric_name=metric,
                           lr=opt.param_groups[0]["lr"], eta_s=self._eta(self._remaining(index, total_steps - done_steps)),
                           gpu_mem_mb=gpu_memory_mb(), fraction=round((index + done_steps / total_steps) / len(self.plan), 4),
                           message=f"epoch {epoch + 1}/{epochs} step {b}/{n_batches} ({name})")
                st["batch"] = b
                if every and st["global_step"] % every == 0 and b < n_batches:
                    save(epoch, b)
            # --- end of epoch: reduce, validate, schedule, best, early stop, checkpoint
            n_samples = sum(len(b) for b in sampler._batches()[:n_batches])  # this rank's share of the epoch
            sums = all_reduce_sum([st["sums"].get(k, 0.0) for k in sorted(st["sums"])] + [n_samples, st["n"]],
                                  self.world)
            n_samples = int(sums.pop(-2))
            n = max(sums[-1], 1)
            means = dict(zip(sorted(st["sums"]), sums[:-1]))
            row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": means.pop("loss", math.nan) / n}
            row.update({"train_" + k: v / n for k, v in means.items()})
            val: dict[str, Any] = {}
            if split.val is not None:
                if self.world.main:
                    val = self.kind.validate(_unwrap(net).eval(), split, self.device)
                val = broadcast(val, self.world)
                if metric not in val:
                    raise InputError(None, f"kind {self.kind.name!r}: validate() returned no {metric!r}")
            row.update(val)
            row.update(lr=opt.param_groups[0]["lr"], seconds=round(time.perf_counter() - t0, 3), samples=n_samples,
                       samples_per_s=round(n_samples / max(time.perf_counter() - t0, 1e-9), 2))
            if sched is not None and interval == "epoch":
                if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    sched.step(val.get(metric, row["train_loss"]))
                else:
                    sched.step()
            st["history"].append(row)
            st["sums"], st["n"], st["batch"] = {}, 0, 0
            mval = val.get(metric)
            if split.val is not None:
                if _better(mval, st["best"], mode, float((es or {}).get("min_delta", 0.0))):
                    st["best"], st["best_epoch"], st["bad_epochs"] = mval, epoch + 1, 0
                    if self.world.main:
                        ckpt.save_verified({"model": _unwrap(net).state_dict(), "epoch": epoch + 1}, sdir / "best.pt")
                else:
                    st["bad_epochs"] += 1
                if es and st["bad_epochs"] >= int(es.get("patience", 5)):
                    st["stopped_early"] = True
            if self.world.main:
                _write_metrics(sdir, st["history"])
            self._emit("epoch", split=name, epoch=epoch + 1, step=st["global_step"], loss=row["train_loss"],
                       metric=mval, metric_name=metric, lr=row["lr"], gpu_mem_mb=gpu_memory_mb(),
                       fraction=round((index + (epoch + 1) / epochs) / len(self.plan), 4),
                       message=f"{name}: epoch {epoch + 1}/{epochs} done", row=row)
            save(epoch + 1, 0)
            if st["stopped_early"]:
                self._emit("early_stop", split=name, epoch=epoch + 1, step=st["global_step"],
                           message=f"{name}: no {metric} improvement for {st['bad_epochs']} epochs; stopped")
                break
        model = _unwrap(net)
        if split.val is not None and tc["restore_best"] and (sdir / "best.pt").is_file():
            model.load_state_dict(ckpt.load_verified(sdir / "best.pt")["model"])
        model.eval()
        finish = self.kind.finish_split(model, split, self.device) if self.world.main else {}
        finish = broadcast(finish, self.world)
        record = {"name": name, "train_patients": list(spec["train"]), "val_patients": list(spec["val"]),
                  "test_patients": list(spec.get("test", [])),
                  "epochs_run": len(st["history"]), "best_epoch": st["best_epoch"], "best_metric": st["best"],
                  "metric": metric, "stopped_early": st["stopped_early"], "global_step": st["global_step"],
                  "last": st["history"][-1] if st["history"] else {}, "finish": finish}
        if self.world.main:
            ckpt.save_verified({"model": model.state_dict()}, sdir / "final.pt")
            ckpt.atomic_write_text(done, json.dumps(record, indent=1, default=str))
        barrier(self.world)
        self._global_step0 = st["global_step"]
        self._emit("split", split=name, step=st["global_step"], metric=st["best"], metric_name=metric,
                   fraction=round((index + 1) / len(self.plan), 4), message=f"{name} done")
        return record, model, split

    def _remaining(self, index: int, in_split: int) -> int:
        per = int(self.tcfg["epochs"]) * max(self._steps_hint, 1)
        return in_split + per * (len(self.plan) - index - 1)

    # --- the run -------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        import signal
        import threading

        from MedGradeCoreLib.errors import CancelledError

        self._global_step0 = 0
        self._steps_hint = 1
        old_handler = None
        if threading.current_thread() is threading.main_thread():
            def _terminate(signum, frame):  # `medgrade cancel`, scancel: stop cleanly, stay resumable
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # repeated signals must not cut the clean-up
                raise CancelledError(f"stopped by signal {signum}")

            old_handler = signal.signal(signal.SIGTERM, _terminate)
        try:
            split_file = self._splits()
            self._emit("start", step=0, fraction=0.0, message=f"run {self.run_id}: {len(self.plan)} split(s), "
                                                              f"kind {self.kind.name}, device {self.device}")
            records, models = [], {}
            for i, spec in enumerate(self.plan):
                rec, model, split = self._train_split(i, spec)
                records.append(rec)
                models[spec["name"]] = (model, split)
            result = self._finish(records, models, split_file)
            self._status("done", summary=result.summary.get("metric_mean"), bundle=str(result.bundle or ""))
            return result
        except BaseException as exc:
            from MedGradeCoreLib.errors import CancelledError

            status = "cancelled" if isinstance(exc, (CancelledError, KeyboardInterrupt)) else "failed"
            self._status(status, error=str(exc))
            self._emit("error", message=f"{status}: {exc}", step=getattr(self, "_global_step0", 0))
            raise
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
            shutdown(self.world)

    def _finish(self, records: list[dict[str, Any]], models: dict[str, Any], split_file: dict[str, Any]) -> RunResult:
        metric, mode = self.kind.metric, self.kind.metric_mode
        folds = [r for r in records if r["name"] != "final"]
        unscored = getattr(self, "_one_class_val", {})
        vals = [r["best_metric"] for r in folds if r["best_metric"] is not None and r["name"] not in unscored]
        summary: dict[str, Any] = {"run_id": self.run_id, "kind": self.kind.name, "metric": metric,
                                   "metric_mode": mode, "device": str(self.device), "world_size": self.world.size,
                                   "seed": self.cfg["seed"], "splits": [{k: r[k] for k in (
                                       "name", "best_metric", "best_epoch", "epochs_run", "stopped_early")}
                                       for r in records],
                                   "metric_mean": float(np.mean(vals)) if vals else None,
                                   "metric_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
                                   "unscored_splits": {k: f"not scored: {v}" for k, v in unscored.items()}}
        if "final" in models:
            chosen = "final"
        else:
            key = [(r["best_metric"] if r["best_metric"] is not None else (math.inf if mode == "min" else -math.inf))
                   for r in folds]
            chosen = folds[int(np.argmin(key) if mode == "min" else np.argmax(key))]["name"]
        summary["bundle_from"] = chosen
        model, split = models[chosen]
        result = RunResult(self.run_dir, summary, records, model=model, kind=self.kind)
        if self.world.main:
            summary.update(self.kind.summarize(records))
            if split_file.get("test"):
                test = self.kind.split_data("test", list(split.train_patients), list(split_file["test"]))
                summary["test"] = self.kind.validate(model, test, self.device)
                summary["test"]["patients"] = len(split_file["test"])
            tmp = self.run_dir / "bundle.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
            if bad:
                raise MedGradeError(f"{self.run_dir}: the final model has non-finite weights ({', '.join(bad[:3])}); "
                                    "no bundle is written or registered")
            written = self.kind.write_bundle(model, split, tmp, summary)
            final = self.run_dir / "bundle"
            shutil.rmtree(final, ignore_errors=True)
            if written is None:  # the kind's config asks for no bundle
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.rename(final)
                written = Path(written)
                result.bundle = final / written.relative_to(tmp) if written != tmp else final
            if self.cfg["register"] and result.bundle is not None:
                from MedGradeCoreLib.model_library import import_bundle

                entry = import_bundle(result.bundle, self.cfg.get("models_root"))
                result.registered = entry.path
                summary["registered"] = entry.path
            summary["bundle"] = str(result.bundle) if result.bundle else None
            ckpt.atomic_write_text(self.run_dir / SUMMARY_FILE, json.dumps(summary, indent=1, default=str))
            self._emit("done", step=self._global_step0, fraction=1.0, metric=summary["metric_mean"],
                       metric_name=metric, message=f"run {self.run_id} done; bundle {result.bundle}")
        return result


def run_training(config: dict[str, Any] | str | Path | None, run_dir: str | Path, *, resume: bool = False,
                 kind: ModelKind | None = None, progress: Progress | None = None, stdout: TextIO | None = sys.stdout,
                 prefixed: bool = False, run_name: str | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None) -> RunResult:
    """Train ``config`` (file, dict, or None to resume) into ``run_dir``; see the module docstring.

    A new run refuses a folder that already holds one (resume it or choose another folder). ``overrides``
    (resume only): ``{"train": {"epochs": N}}`` extends a run; splits that ended at the old length (not by
    early stopping) continue from their last checkpoint."""
    run_dir = Path(run_dir)
    main = int(os.environ.get("RANK", "0")) == 0
    from MedGradeCoreLib.outputs import OutputLock

    # one trainer per run folder: a second `train --output` or a `resume` of a running run is refused
    with OutputLock(run_dir) if main else contextlib.nullcontext():
        return _run_training(config, run_dir, main, resume, kind, progress, stdout, prefixed, run_name, overrides)


def _run_training(config, run_dir: Path, main: bool, resume: bool, kind, progress, stdout, prefixed, run_name,
                  overrides) -> RunResult:
    recorded = run_dir / CONFIG_FILE
    if resume:
        if not recorded.is_file():
            raise InputError(run_dir, "not a run folder (no config.json); start it with 'medgrade train'")
        cfg = json.loads(recorded.read_text())
        for section, values in (overrides or {}).items():
            cfg[section].update({k: v for k, v in values.items() if v is not None})
        check_device_available(str(cfg["train"]["device"]), str(recorded))  # a resume never falls back either
        if overrides and main:
            ckpt.atomic_write_text(recorded, json.dumps(cfg, indent=1, default=str))
    else:
        if main and recorded.is_file():
            raise InputError(run_dir, "already holds a run; resume it ('medgrade resume') or choose another "
                                      "--output folder")
        if isinstance(config, (str, Path)):
            cfg = load_config(config)
        else:
            data = dict(config or {})
            name = data.get("kind", {}).get("name") if isinstance(data.get("kind"), dict) else data.get("kind")
            cls = get_kind(name, (data.get("kind") or {}).get("module") if isinstance(data.get("kind"), dict) else None) \
                if name else None
            cfg = resolve_config(data, "config", None, getattr(cls, "train_defaults", None))
        if run_name:
            cfg["run_name"] = run_name
        check_device_available(str(cfg["train"]["device"]), str(config) if isinstance(config, (str, Path))
                               else "config")
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.atomic_write_text(recorded, json.dumps(cfg, indent=1, default=str))
        else:
            for _ in range(600):  # rank 0 writes the run folder
                if recorded.is_file():
                    break
                time.sleep(0.1)
    return Runner(cfg, run_dir, kind, progress, stdout, prefixed, resume).run()
