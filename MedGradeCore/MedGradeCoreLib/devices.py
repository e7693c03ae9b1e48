"""Choosing the compute device: auto / CUDA / MPS / CPU, with fallback and a memory warning.

``choose_device("auto", min_gpu_memory_mb=manifest.min_gpu_memory_mb)`` picks CUDA, then Apple MPS,
then the CPU; an explicit choice that is not available falls back to the CPU with a warning, and a
GPU with less memory than the model's manifest asks for is used with a warning (or skipped with
``strict_memory``). Never raises for a missing GPU: work always has somewhere to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


@dataclass
class DeviceChoice:
    device: str  # a torch device string: "cuda:0", "mps" or "cpu"
    description: str
    memory_mb: int | None = None  # total memory of the GPU, when known
    warnings: list[str] = field(default_factory=list)


def _torch() -> Any | None:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _mps_available(torch: Any) -> bool:
    mps = getattr(getattr(torch, "backends", None), "mps", None)
    return bool(mps is not None and mps.is_available())


def _cuda(torch: Any, index: int, need_mb: int, strict: bool) -> DeviceChoice | None:
    props = torch.cuda.get_device_properties(index)
    total_mb = int(props.total_memory // (1 << 20))
    choice = DeviceChoice(f"cuda:{index}", f"{props.name} ({total_mb} MB)", total_mb)
    if need_mb and total_mb < need_mb:
        msg = f"{props.name} has {total_mb} MB of memory; this model's manifest asks for {need_mb} MB"
        if strict:
            return DeviceChoice("cpu", "CPU", None, [msg + "; using the CPU instead"])
        choice.warnings.append(msg + "; it may run out of memory (choose CPU if it does)")
    return choice


def choose_device(preference: str = "auto", min_gpu_memory_mb: int = 0, strict_memory: bool = False,
                  torch_module: Any | None = None) -> DeviceChoice:
    """The device to run on for ``preference`` (``auto``, ``cuda``, ``cuda:N``, ``mps``, ``cpu``)."""
    torch = torch_module if torch_module is not None else _torch()
    pref = (preference or "auto").lower()
    if pref not in DEVICE_CHOICES and not pref.startswith("cuda:"):
        raise ValueError(f"unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if torch is None:
        warn = [] if pref in ("auto", "cpu") else [f"{preference} requested but PyTorch is not installed"]
        return DeviceChoice("cpu", "CPU", None, warn)
    cuda_ok = bool(torch.cuda.is_available())
    if pref.startswith("cuda"):
        index = int(pref.split(":")[1]) if ":" in pref else 0
        if cuda_ok and index < torch.cuda.device_count():
            return _cuda(torch, index, min_gpu_memory_mb, strict_memory)
        return DeviceChoice("cpu", "CPU", None, [f"{preference} requested but no such CUDA GPU is available; "
                                                 "using the CPU (check the PyTorch build and the driver)"])
    if pref == "mps":
        if _mps_available(torch):
            return DeviceChoice("mps", "Apple GPU (MPS)")
        return DeviceChoice("cpu", "CPU", None, ["mps requested but Apple MPS is not available; using the CPU"])
    if pref == "auto":
        if cuda_ok:
            return _cuda(torch, 0, min_gpu_memory_mb, strict_memory)
        if _mps_available(torch):
            return DeviceChoice("mps", "Apple GPU (MPS)")
    return DeviceChoice("cpu", "CPU")
