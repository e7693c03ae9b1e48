"""Guess the MR sequence (t1, t1c, t2, flair) from a file name or a DICOM series description.

Used by the readers to name the images of a case and by the Slicer panel to pre-fill its
sequence selectors. The rules are keyword rules on the lower-cased name split into tokens
(``_``, ``-``, ``.``, spaces separate tokens); they cover BraTS 2020/2021 (``_t1ce``) and 2023
(``-t1c/-t1n/-t2w/-t2f``) names and common scanner series descriptions (Siemens, GE, Philips).
"""

from __future__ import annotations

import re

from MedGradeCoreLib.case import SEQUENCES

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", ".png", ".jpg", ".jpeg",
                   ".tif", ".tiff", ".bmp")

# Token boundaries: a keyword must not be glued to letters/digits on its left.
_L = r"(?<![a-z0-9])"
_R = r"(?![a-z0-9])"

_FLAIR = re.compile(rf"flair|{_L}t2f{_R}|{_L}fla{_R}|dark ?fluid|{_L}tirm|{_L}fl(?:uid)? ?att")
_T2STAR = re.compile(rf"t2 ?\*|t2 ?star|{_L}swi{_R}|{_L}swan{_R}|{_L}gre{_R}|{_L}hemo")
_OTHER = re.compile(rf"{_L}(?:dwi|adc|dti|trace|perf|pwi|dsc|asl|localizer|localiser|scout|survey|"
                    rf"mra|tof|fa|b0|b1000)(?:{_R}|\d)")
_T1 = re.compile(rf"{_L}t1(?:w|wi|n|c|ce|gd|post|pre)?{_R}|{_L}t1(?=[a-z0-9]*(?:gd|ce|km|post|pre|se|tse|fs))"
                 rf"|mprage|mp ?rage|{_L}spgr|fspgr|{_L}bravo|tfl ?3d|{_L}vibe|{_L}t1 ?w")
_T2 = re.compile(rf"{_L}t2(?:w|wi)?{_R}|{_L}t2(?=[a-z0-9]*(?:se|tse|fse|frfse|fs))|{_L}t2 ?w")
_PRE = re.compile(rf"{_L}pre{_R}|pre ?contrast|{_L}native|{_L}nativ{_R}|{_L}t1n{_R}|{_L}(?:without|w ?o) ?(?:c|gd|contrast)")
_CONTRAST = re.compile(
    rf"{_L}t1 ?c{_R}|t1 ?ce|{_L}ce{_R}|{_L}t1 ?gd|gd{_R}|{_L}gad|gado|contrast|{_L}post|\+ ?c{_R}|\+ ?gd|"
    rf"{_L}c ?\+|{_L}km{_R}|{_L}enhanc|{_L}mdc{_R}|{_L}(?:with|w) ?(?:c|gd|contrast){_R}")
_MASK = re.compile(rf"{_L}(?:seg|segmentation|label|labels|labelmap|mask|roi|lesion|tumou?r|gt|groundtruth)(?:{_R}|\d)"
                   rf"|{_L}seg(?=[a-z])")
_BRAIN_MASK = re.compile(rf"brain ?mask|{_L}brainmask|skull ?strip(?:ped)? ?mask")


def normalise_name(name: str) -> str:
    """Lower-case ``name`` without its image-file suffix, with ``_ - .`` turned into spaces."""
    low = name.strip().lower()
    for suffix in _IMAGE_SUFFIXES:
        if low.endswith(suffix):
            low = low[: -len(suffix)]
            break
    return re.sub(r"[\s_\-.]+", " ", low).strip()


def is_lesion_mask_name(name: str) -> bool:
    """True for names of lesion masks / label maps (``_seg``, ``label``, ``mask`` ...), not brain masks."""
    n = normalise_name(name)
    return bool(_MASK.search(n)) and not _BRAIN_MASK.search(n)


def is_brain_mask_name(name: str) -> bool:
    """True for names of brain (skull-stripping) masks."""
    return bool(_BRAIN_MASK.search(normalise_name(name)))


def guess_sequence(name: str) -> str | None:
    """The canonical sequence (``t1``, ``t1c``, ``t2``, ``flair``) a name describes, or None.

    Masks, T2*/SWI, diffusion, perfusion and localisers give None, as do names that mention
    both T1 and T2 or nothing recognisable.
    """
    n = normalise_name(name)
    if not n or _MASK.search(n) or _BRAIN_MASK.search(n):
        return None
    if n in SEQUENCES:
        return n
    if _FLAIR.search(n):
        return "flair"
    if _T2STAR.search(n) or _OTHER.search(n):
        return None
    t1, t2 = bool(_T1.search(n)), bool(_T2.search(n))
    if t1 and t2:
        return None
    if t1:
        if _PRE.search(n):
            return "t1"
        return "t1c" if _CONTRAST.search(n) else "t1"
    if t2:
        return "t2"
    if _CONTRAST.search(n) and not _PRE.search(n):
        return "t1c"  # e.g. "AX POST GAD": post-contrast series are T1-weighted
    return None
