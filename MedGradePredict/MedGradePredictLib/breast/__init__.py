"""Breast lesion grading: cases with any of mammography (MG), ultrasound (US) and MRI (DCE phases),
readers for the public layouts (BUSI, BUS-BRA), a radiomics baseline, a deep late-fusion model (a kind
of the training runner), prediction and evaluation.

No public data set here has histological grade: benign vs malignant and BI-RADS {2-3, 4, 5} are the
stand-in tasks for "grade III vs I+II" and "I/II/III"; every figure says so.
"""

MODALITIES = ("mg", "us", "mri")
