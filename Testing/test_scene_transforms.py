"""SimpleITK linear transforms -> linear transform nodes: same point mapping, LPS -> RAS."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from MedGradeCoreLib.scene.transforms import linear_transform_node_to_sitk, sitk_transform_to_node

FLIP = np.array([-1.0, -1.0, 1.0])


def _euler() -> sitk.Euler3DTransform:
    t = sitk.Euler3DTransform()
    t.SetCenter((10.0, -20.0, 35.0))
    t.SetRotation(np.deg2rad(5.0), np.deg2rad(-3.0), np.deg2rad(12.0))
    t.SetTranslation((4.0, -2.5, 1.5))
    return t


POINTS = [(0.0, 0.0, 0.0), (-87.5, 120.25, 33.0), (15.0, -40.0, -60.0)]


def test_euler_transform_maps_points_like_sitk(slicer_app):
    transform = _euler()
    node = sitk_transform_to_node(slicer_app.scene, transform, "t1c to t2")
    from_parent = node.GetTransformFromParent()
    to_parent = node.GetTransformToParent()
    for p in POINTS:
        q = np.array(transform.TransformPoint(p))  # fixed (reference) LPS -> moving LPS
        ras = np.array(from_parent.TransformPoint(tuple(np.array(p) * FLIP)))
        np.testing.assert_allclose(ras, q * FLIP, atol=1e-9)
        # "to parent" is the inverse: moving -> reference.
        np.testing.assert_allclose(to_parent.TransformPoint(tuple(q * FLIP)), np.array(p) * FLIP, atol=1e-9)


def test_round_trip_and_composite(slicer_app):
    affine = sitk.AffineTransform(3)
    affine.SetMatrix((1.05, 0.02, 0.0, -0.01, 0.97, 0.03, 0.0, 0.01, 1.1))
    affine.SetTranslation((-3.0, 2.0, 7.0))
    composite = sitk.CompositeTransform([_euler(), affine])
    node = sitk_transform_to_node(slicer_app.scene, composite, "composite")
    back = linear_transform_node_to_sitk(node)
    for p in POINTS:
        np.testing.assert_allclose(back.TransformPoint(p), composite.TransformPoint(p), atol=1e-9)


def test_read_tfm_file_round_trip(slicer_app, tmp_path):
    path = tmp_path / "t2_to_t1c.tfm"
    sitk.WriteTransform(_euler(), str(path))
    node = sitk_transform_to_node(slicer_app.scene, sitk.ReadTransform(str(path)), "from file")
    for p in POINTS:
        np.testing.assert_allclose(linear_transform_node_to_sitk(node).TransformPoint(p), _euler().TransformPoint(p), atol=1e-9)


def test_non_linear_transform_is_refused(slicer_app):
    bspline = sitk.BSplineTransformInitializer(sitk.Image([8, 8, 8], sitk.sitkUInt8), [3, 3, 3])
    params = np.zeros(bspline.GetNumberOfParameters())
    params[::7] = 3.0
    bspline.SetParameters(tuple(params))
    with pytest.raises(ValueError, match="not a linear"):
        sitk_transform_to_node(slicer_app.scene, bspline, "warp")
