"""Glioma lesion segmentation: MIG-Net with the Focus Prior Graph (FPG) loss.

Modules: :mod:`fpg` (atlas + weight map), :mod:`losses`, :mod:`blocks`, :mod:`mignet`,
:mod:`baselines`, :mod:`ablation`, :mod:`data`, :mod:`train`, :mod:`infer`, :mod:`model_bundle`,
:mod:`corrections`. Plain Python + torch/MONAI/SimpleITK; no Qt, no MRML.
"""
