"""PACS access: a study pulled by StudyInstanceUID and results pushed back, over DICOMweb (``dicomweb``) or DIMSE
(``dimse``), with settings from a file or the environment (``settings``)."""

from __future__ import annotations

from pathlib import Path
from MedGradeCoreLib.pacs.settings import PacsSettings, load_settings
from MedGradeCoreLib.pacs.transfer import PacsError, StoreReport

VIAS = ("dicomweb", "dimse")


def connect(settings: PacsSettings, via: str):
    """The peer object of ``via`` (``dicomweb`` or ``dimse``)."""
    if via == "dicomweb":
        from MedGradeCoreLib.pacs.dicomweb import DicomWebPeer

        return DicomWebPeer(settings)
    from MedGradeCoreLib.pacs.dimse import DimsePeer

    return DimsePeer(settings)


def pull_mr_study(peer, study: str, dest: Path) -> tuple[list[Path], list[str]]:
    """Pull the study's MR series into ``dest``: (files, notes on the series left out). No MR series is an error
    naming the study, the peer and what it holds."""
    series = peer.series(study)
    mr = [s for s in series if s["modality"].upper() == "MR"]
    if not mr:
        held = ", ".join(f"{s['modality'] or '?'} '{s['description']}'" for s in series)
        raise PacsError(peer.name, study, f"has no MR series (it holds {held})")
    notes = [f"series '{s['description']}' ({s['modality']}) not pulled: not MR" for s in series if s not in mr]
    files = peer.pull(study, [s["uid"] for s in mr], dest)
    if not files:
        raise PacsError(peer.name, study, "the MR series were listed but no instance arrived")
    return files, notes


__all__ = ["PacsError", "PacsSettings", "StoreReport", "VIAS", "connect", "load_settings", "pull_mr_study"]
