"""Device choice: auto / CUDA / MPS / CPU, fallbacks, and the GPU-memory warning."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from MedGradeCoreLib.devices import choose_device


def fake_torch(cuda: bool = False, mps: bool = False, total_mb: int = 8192, count: int = 1):
    props = SimpleNamespace(name="Fake GPU", total_memory=total_mb << 20)
    return SimpleNamespace(
        cuda=SimpleNamespace(is_available=lambda: cuda, device_count=lambda: count if cuda else 0,
                             get_device_properties=lambda i: props),
        backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)))


def test_auto_prefers_cuda_then_mps_then_cpu():
    assert choose_device("auto", torch_module=fake_torch(cuda=True)).device == "cuda:0"
    assert choose_device("auto", torch_module=fake_torch(mps=True)).device == "mps"
    c = choose_device("auto", torch_module=fake_torch())
    assert c.device == "cpu" and c.warnings == []


def test_unavailable_choice_falls_back_to_cpu_with_a_warning():
    c = choose_device("cuda", torch_module=fake_torch())
    assert c.device == "cpu" and "no such CUDA GPU" in c.warnings[0]
    c = choose_device("cuda:3", torch_module=fake_torch(cuda=True, count=1))
    assert c.device == "cpu"
    c = choose_device("mps", torch_module=fake_torch())
    assert c.device == "cpu" and "MPS" in c.warnings[0]


def test_gpu_memory_below_the_manifest_warns_or_falls_back():
    c = choose_device("auto", min_gpu_memory_mb=16000, torch_module=fake_torch(cuda=True, total_mb=8192))
    assert c.device == "cuda:0" and c.memory_mb == 8192 and "asks for 16000 MB" in c.warnings[0]
    c = choose_device("auto", min_gpu_memory_mb=16000, strict_memory=True,
                      torch_module=fake_torch(cuda=True, total_mb=8192))
    assert c.device == "cpu" and "using the CPU" in c.warnings[0]
    assert choose_device("auto", min_gpu_memory_mb=4000, torch_module=fake_torch(cuda=True)).warnings == []


def test_real_torch_gives_a_usable_device():
    import torch

    c = choose_device("auto")
    x = torch.ones(2, device=c.device)
    assert float(x.sum()) == 2.0
    assert choose_device("cpu").device == "cpu"


def test_unknown_choice_is_refused():
    with pytest.raises(ValueError, match="unknown device"):
        choose_device("tpu")
