"""BraTS file naming: 2020/2021 ``<id>_t1.nii.gz, _t1ce, _t2, _flair, _seg``; 2023 ``<id>-t1c/-t1n/-t2w/-t2f[-seg]``.

The sequence names themselves are resolved by :func:`MedGradeCoreLib.sequence_names.guess_sequence`;
this module only tells the two conventions apart and knows their label values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Label values of BraTS segmentations: 2020/2021 use 4 for enhancing tumour, 2023 uses 3.
BRATS2021_LABELS = {1: "necrotic core", 2: "oedema", 4: "enhancing tumour"}
BRATS2023_LABELS = {1: "necrotic core", 2: "oedema", 3: "enhancing tumour"}

_B2023 = re.compile(r"-(t1c|t1n|t2w|t2f)\.nii(\.gz)?$", re.IGNORECASE)
_B2021 = re.compile(r"_(t1ce|t1|t2|flair)\.nii(\.gz)?$", re.IGNORECASE)


def brats_layout(file_names: Iterable[str]) -> str | None:
    """``"brats2023"`` or ``"brats2021"`` when the names follow a BraTS convention, else None."""
    names = list(file_names)
    if sum(bool(_B2023.search(n)) for n in names) >= 2:
        return "brats2023"
    if sum(bool(_B2021.search(n)) for n in names) >= 2 and any(re.search(r"_t1ce\.nii", n, re.I) for n in names):
        return "brats2021"
    return None
