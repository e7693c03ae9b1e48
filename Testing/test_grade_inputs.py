"""MIX / IMG / ROI inputs from a real case (TCGA-FG-6692 brats-space, model lesion label)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradeCoreLib.io import load_case
from MedGradeCoreLib.sample_data import fetch_dataset
from MedGradePredictLib.mix_inputs import build_slice_inputs, merge_in, sample_lesion_slices
from MedGradePredictLib.tasks import get_task


@pytest.fixture(scope="module")
def case():
    files = fetch_dataset("tcga-fg-6692-brats-space")
    return load_case(next(iter(files.values())).parent, ["t1c", "t2"])


def test_mix_inputs_on_real_case(case):
    # the whole slice (240 mm field of view, here at 5 mm to stay small), z-scored per volume in the brain
    mix = build_slice_inputs(case, ("t1c", "t2"), size=48, spacing=5.0)
    from MedGradePredictLib.mix_inputs import input_grid

    grid, mask, brain = input_grid(case, 5.0, 48)
    assert grid.GetSize()[:2] == (48, 48) and mask.shape[1:] == (48, 48)
    z = np.flatnonzero(mask.any((1, 2)))
    slices = sample_lesion_slices(mask, 20)
    assert len(slices) == 20 and slices[0] == z.min() and slices[-1] == z.max()
    assert mix.slices == slices and mix.arrays["t1c"].shape == (20, 2, 48, 48)
    np.testing.assert_array_equal(mix.areas, mask[slices].sum((1, 2)))
    img, roi = mix.arrays["t2"][:, 0], mix.arrays["t2"][:, 1]
    np.testing.assert_allclose(roi, img * mask[slices], atol=1e-6)  # ROI = IMG outside the lesion set to 0
    assert (img[10][~brain[slices[10]]] == 0).all()  # zero outside the brain
    per_slice_means = [float(img[i][brain[s]].mean()) for i, s in enumerate(slices)]
    assert np.std(per_slice_means) > 0.05  # per-volume normalisation: slices keep their own means
    only_img = build_slice_inputs(case, ("t1c", "t2"), size=48, mode="img", spacing=5.0)
    only_roi = build_slice_inputs(case, ("t1c", "t2"), size=48, mode="roi", spacing=5.0)
    np.testing.assert_allclose(only_img.arrays["t1c"][:, 0], mix.arrays["t1c"][:, 0], atol=1e-5)
    np.testing.assert_allclose(only_roi.arrays["t1c"][:, 0], mix.arrays["t1c"][:, 1], atol=1e-5)
    assert merge_in(mix.tensors(), ("t1c", "t2")).shape == (20, 4, 48, 48)
    # the lesion-centred crop stays an option
    crop = build_slice_inputs(case, ("t1c", "t2"), size=48, crop=True)
    y0, y1, x0, x1 = crop.box
    full = sitk.GetArrayFromImage(case.mask) > 0
    assert full[crop.slices][:, y0:y1, x0:x1].sum() == full[crop.slices].sum()  # the crop holds the whole lesion
    assert y1 - y0 < 240


def test_bad_inputs_and_tasks(case):
    with pytest.raises(InputError, match="missing sequence"):
        build_slice_inputs(case, ("t1c", "flair"))
    with pytest.raises(InputError, match="unknown input mode"):
        build_slice_inputs(case, ("t1c", "t2"), mode="both")
    ki67 = get_task("ki67")
    assert (ki67.encode(9.9), ki67.encode(10), ki67.encode("high"), ki67.encode("Low")) == (0, 1, 1, 0)
    assert get_task("grade").encode("HGG") == 1 and get_task("grade").decode(0) == "LGG"
    with pytest.raises(InputError, match="neither"):
        get_task("idh").encode("unknown")


@pytest.mark.parametrize("arch", ["kinet", "early", "late", "centralnet"])
def test_gradcam_heatmap_for_every_architecture(case, arch):
    from MedGradePredictLib.gradcam import gradcam_maps, heatmap_volume
    from MedGradePredictLib.model import GradingModel, GradingSettings
    from MedGradePredictLib.networks import build_network
    from MedGradePredictLib.tasks import get_task

    import torch

    torch.manual_seed(0)
    settings = GradingSettings(get_task("grade"), {"name": arch, "width": 4, "n_meta": 2}, size=64, metadata=True,
                               spacing=3.75)
    net = build_network(settings.architecture)
    with torch.no_grad():  # untrained: make every classifier weight positive so the map cannot be all zero
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.abs_()
    model = GradingModel(net, settings)
    inputs = build_slice_inputs(case, ("t1c", "t2"), k=6, size=64, spacing=3.75)
    maps = gradcam_maps(model, inputs, [2, 3], {"age": 50, "sex": "M"})
    assert maps.shape == (2, 64, 64) and np.isfinite(maps).all()
    heat = heatmap_volume(maps, inputs, [2, 3], case.mask)
    assert heat.GetSize() == case.mask.GetSize() and heat.GetOrigin() == case.mask.GetOrigin()
    arr = sitk.GetArrayViewFromImage(heat)
    assert maps.max() > 0  # an all-zero map is a failure, not a subset
    assert set(np.flatnonzero(arr.reshape(arr.shape[0], -1).any(1))) == {inputs.slices[2], inputs.slices[3]}


def test_numpy_resize_and_cam_scaling_are_monais(case):
    # what an ONNX model grades with (no torch, no MONAI) equals what MONAI does for a torch model
    import torch
    from monai.transforms import Resize
    from monai.visualize.class_activation_maps import default_normalizer, default_upsampler

    from MedGradePredictLib.gradcam import normalise_maps
    from MedGradePredictLib.mix_inputs import resize_bilinear

    inputs = build_slice_inputs(case, ("t1c", "t2"), k=4, size=64, spacing=3.75)
    chans = inputs.arrays["t1c"][:, 0]  # [4, 64, 64] real z-scored slices
    for shape in ((96, 80), (40, 52), (64, 64)):
        ours = resize_bilinear(chans, shape)
        monai = np.asarray(Resize(shape, mode="bilinear", anti_aliasing=False)(chans))
        assert ours.shape == monai.shape and ours.dtype == np.float32
        np.testing.assert_allclose(ours, monai, atol=2e-4)
    raw = np.maximum(chans[:, None, ::8, ::8], 0)  # [4, 1, 8, 8] like a Grad-CAM map before upsampling
    raw[1] = 0.5  # a constant map
    up = np.stack([resize_bilinear(r, (64, 64)) for r in raw])
    monai = default_normalizer(default_upsampler((64, 64))(torch.from_numpy(raw))).numpy()
    ours = normalise_maps(up)
    # hot = strongest evidence: MONAI's default maps (min, max) -> (1, 0); ours is its mirror image ...
    varying = [0, 2, 3]
    np.testing.assert_allclose(ours[varying], 1.0 - monai[varying], atol=1e-5)
    np.testing.assert_allclose(ours[1], up[1])  # ... and a constant map stays as it is
    for o, r in zip(ours[varying, 0], up[varying, 0]):  # the hottest pixel is where the raw map peaks
        assert o.flat[np.argmax(r)] == 1.0 and o.flat[np.argmin(r)] == 0.0


def test_grading_results_load_in_a_python_that_refuses_torch_and_monai(tmp_path):
    # what a panel runs in Slicer's own Python to show a grade (results read back, scene helpers imported) and the
    # modules an ONNX grading run loads: no torch, no MONAI (issue 20: no re-import of torch in Slicer)
    import subprocess
    import sys

    code = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "monai"):
            raise ImportError(f"{name} is refused")
sys.meta_path.insert(0, Refuse())
import MedGradePredictLib.cascade, MedGradePredictLib.cohort, MedGradePredictLib.predict, MedGradePredictLib.gradcam
import MedGradePredictLib.scene_cascade, MedGradePredictLib.scene_grading
from MedGradePredictLib.results_io import read_results
print(len(read_results(sys.argv[1])[0]))
"""
    from MedGradePredictLib.predict import GradingResult
    from MedGradePredictLib.results_io import write_results

    write_results([GradingResult("p1", "grade", "grade", "G3", "G2", "G2", 0.3, "near", [1], [1], [0.3], [5.0], "m",
                                 "0" * 64)], tmp_path)
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["1"]
