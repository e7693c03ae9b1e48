"""What both PACS paths share: the report of a push and the one-line errors naming the study and the peer."""

from __future__ import annotations

from dataclasses import dataclass, field

import pydicom

from MedGradeCoreLib.errors import MedGradeError

KIND = {"1.2.840.10008.5.1.4.1.1.66.4": "SEG", "1.2.840.10008.5.1.4.1.1.88.34": "SR",
        "1.2.840.10008.5.1.4.1.1.104.1": "PDF", "1.2.840.10008.5.1.4.1.1.4": "MR"}


class PacsError(MedGradeError):
    """A PACS that refused, timed out or does not hold what was asked: ``<peer>: study <uid>: <problem>``."""

    def __init__(self, peer: str, study: str | None, problem: str):
        super().__init__(f"{peer}: study {study}: {problem}" if study else f"{peer}: {problem}")


def kind(ds: pydicom.Dataset) -> str:
    return KIND.get(str(ds.SOPClassUID), str(ds.SOPClassUID))


@dataclass
class StoreReport:
    """Which instances arrived and which were refused (with the peer's reason)."""

    peer: str
    study: str
    arrived: list[str] = field(default_factory=list)  # "SEG 1.2.3..."
    refused: list[str] = field(default_factory=list)  # "PDF 1.2.3...: reason"

    def check(self) -> "StoreReport":
        """Raise a :class:`PacsError` listing what did and did not arrive when anything was refused."""
        if self.refused:
            got = ", ".join(self.arrived) or "nothing"
            raise PacsError(self.peer, self.study, f"partial push: arrived {got}; NOT stored "
                                                   f"{'; '.join(self.refused)}")
        return self
