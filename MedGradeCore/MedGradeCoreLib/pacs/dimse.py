"""DIMSE peer (pynetdicom): C-FIND (study root, series level) to list the study's series, C-GET to pull them on
the same association (no port of ours the PACS must reach), C-STORE to push. Every association has the
settings' time-outs; a refused association, a failure status or a time-out is a one-line :class:`PacsError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pydicom
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from MedGradeCoreLib.pacs.settings import PacsSettings
from MedGradeCoreLib.pacs.transfer import PacsError, StoreReport, kind

PULLED = ("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1")  # MR Image, Enhanced MR Image


class DimsePeer:
    def __init__(self, settings: PacsSettings):
        if not settings.host or not settings.port:
            raise PacsError(settings.source, None, "no DIMSE peer (set [dimse] host and port in the PACS settings "
                                                   "file or MEDGRADE_PACS_HOST / MEDGRADE_PACS_PORT)")
        self.settings = settings
        self.name = settings.peer("dimse")

    def _ae(self):
        from pynetdicom import AE

        ae = AE(ae_title=self.settings.calling_aet)
        t = self.settings.timeout_s
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = t
        ae.connection_timeout = t
        return ae

    def _associate(self, ae, study: str | None, what: str, **kw):
        s = self.settings
        assoc = ae.associate(s.host, int(s.port), ae_title=s.called_aet, **kw)
        if not assoc.is_established:
            why = "rejected the association" if assoc.is_rejected else \
                "aborted the association" if assoc.is_aborted else "did not answer (refused or timed out)"
            raise PacsError(self.name, study, f"{what}: the peer {why}")
        return assoc

    def series(self, study: str) -> list[dict[str, str]]:
        """C-FIND at series level: ``[{"uid", "modality", "description"}]``; an unknown study is an error."""
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        query = pydicom.Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID = "SERIES", study
        query.SeriesInstanceUID = query.Modality = query.SeriesDescription = ""
        assoc = self._associate(ae, study, "C-FIND")
        found = []
        try:
            for status, ident in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                code = getattr(status, "Status", None)
                if code is None:
                    raise PacsError(self.name, study, "C-FIND: no answer (timed out or aborted)")
                if code in (0xFF00, 0xFF01) and ident is not None:
                    found.append({"uid": str(ident.SeriesInstanceUID), "modality": str(ident.get("Modality", "")),
                                  "description": str(ident.get("SeriesDescription", ""))})
                elif code not in (0x0000, 0xFF00, 0xFF01):
                    raise PacsError(self.name, study, f"C-FIND failed with status 0x{code:04X}")
        finally:
            assoc.release()
        if not found:
            raise PacsError(self.name, study, "not found on this peer")
        return found

    def pull(self, study: str, series: Sequence[str], dest: Path) -> list[Path]:
        """C-GET of each of ``series`` into ``dest/<series uid>/<sop uid>.dcm``."""
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet

        files: list[Path] = []

        def on_store(event) -> int:
            ds = event.dataset
            ds.file_meta = event.file_meta
            folder = dest / str(ds.SeriesInstanceUID)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
            return 0x0000

        ae = self._ae()
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for uid in PULLED:
            ae.add_requested_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        roles = [build_role(uid, scp_role=True) for uid in PULLED]
        assoc = self._associate(ae, study, "C-GET", ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
        try:
            for uid in series:
                query = pydicom.Dataset()
                query.QueryRetrieveLevel, query.StudyInstanceUID, query.SeriesInstanceUID = "SERIES", study, uid
                for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
                    code = getattr(status, "Status", None)
                    if code is None:
                        raise PacsError(self.name, study, f"C-GET of series {uid}: no answer (timed out)")
                    if code not in (0x0000, 0xFF00) and code not in range(0xB000, 0xB010):
                        raise PacsError(self.name, study, f"C-GET of series {uid} failed with status 0x{code:04X}")
        finally:
            assoc.release()
        return files

    def store(self, study: str, datasets: Sequence[pydicom.Dataset]) -> StoreReport:
        """C-STORE of each dataset on one association; the statuses say what arrived."""
        ae = self._ae()
        for uid in sorted({str(ds.SOPClassUID) for ds in datasets}):
            ae.add_requested_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        assoc = self._associate(ae, study, "C-STORE")
        report = StoreReport(self.name, study)
        try:
            for ds in datasets:
                try:
                    status = assoc.send_c_store(ds)
                except (ValueError, RuntimeError) as exc:  # no accepted context, association gone
                    report.refused.append(f"{kind(ds)} {ds.SOPInstanceUID}: {str(exc)[:120]}")
                    continue
                code = getattr(status, "Status", None)
                if code in (0x0000, 0xB000, 0xB007, 0xB006):
                    report.arrived.append(f"{kind(ds)} {ds.SOPInstanceUID}")
                else:
                    why = f"status 0x{code:04X}" if code is not None else "no answer (timed out)"
                    report.refused.append(f"{kind(ds)} {ds.SOPInstanceUID}: {why}")
        finally:
            assoc.release()
        return report
