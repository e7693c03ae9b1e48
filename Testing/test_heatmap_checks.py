"""Issue 17's heat-map measure: the hottest brain voxels near the lesion, against a uniform map."""

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.errors import InputError
from MedGradePredictLib.heatmap_checks import hot_share_near_lesion


def _image(arr: np.ndarray) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((2.0, 2.0, 2.0))  # distances are physical: 5 voxels = 10 mm
    return img


@pytest.fixture
def masks():
    brain = np.zeros((20, 60, 60), np.uint8)
    brain[:, 5:55, 5:55] = 1
    lesion = np.zeros_like(brain)
    lesion[8:12, 10:16, 10:16] = 1
    return brain, lesion


def test_a_map_on_the_lesion_scores_one_and_a_map_away_from_it_zero(masks):
    brain, lesion = masks
    on = np.zeros(brain.shape, np.float32)
    on[8:12, 10:16, 10:16] = 1.0
    r = hot_share_near_lesion(_image(on), _image(lesion), _image(brain), top=0.01)
    assert r["share_near"] == 1.0 and 0 < r["uniform_share"] < 0.2
    away = np.zeros(brain.shape, np.float32)
    away[:, 40:55, 40:55] = 1.0  # far corner: > 10 mm from the lesion
    assert hot_share_near_lesion(_image(away), _image(lesion), _image(brain), top=0.05)["share_near"] == 0.0


def test_a_random_map_scores_about_the_uniform_share(masks):
    brain, lesion = masks
    noise = np.random.default_rng(0).random(brain.shape).astype(np.float32)
    r = hot_share_near_lesion(_image(noise), _image(lesion), _image(brain))
    assert abs(r["share_near"] - r["uniform_share"]) < 0.02


def test_distance_is_physical_and_grids_must_match(masks):
    brain, lesion = masks
    ring = np.zeros(brain.shape, np.float32)
    ring[8:12, 10:16, 20:22] = 1.0  # 5-6 voxels right of the lesion: 10-12 mm at 2 mm spacing
    r2 = hot_share_near_lesion(_image(ring), _image(lesion), _image(brain), top=0.002, within_mm=12.5)
    r1 = hot_share_near_lesion(_image(ring), _image(lesion), _image(brain), top=0.002, within_mm=8.0)  # 5-6 voxels but 10-12 mm
    assert r2["share_near"] == 1.0 and r1["share_near"] == 0.0
    with pytest.raises(InputError, match="zero everywhere"):
        hot_share_near_lesion(_image(0 * ring), _image(lesion), _image(brain))
    with pytest.raises(InputError, match="grids differ"):
        hot_share_near_lesion(_image(ring[:10]), _image(lesion), _image(brain))
