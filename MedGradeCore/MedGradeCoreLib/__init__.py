"""MedGradeCoreLib: the ground every MedGrade module shares.

The case and its folder, image readers (``io``), the model library and bundles, background jobs, runtime
(progress, devices, dependencies, hashing, sample data, Slicer version), the scene layer (the only code
that touches MRML) and the headless application, and the ``medgrade`` entry point (``cli``). Plain Python,
no Qt; torch and MONAI are never imported here at module load.
"""

__version__ = "0.1.0"
