"""DICOMweb peer (dicomweb-client): QIDO-RS to find the study's series, WADO-RS to pull them, STOW-RS to push.

TLS is verified (against ``ca_bundle`` when set); user and password go into a requests session (basic auth);
every request has the settings' time-out. HTTP errors, refused connections and time-outs become one-line
:class:`PacsError` messages naming the study and the URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, TypeVar

import pydicom
import requests

from MedGradeCoreLib.pacs.settings import PacsSettings
from MedGradeCoreLib.pacs.transfer import PacsError, StoreReport, kind

T = TypeVar("T")
SERIES_UID, MODALITY, DESCRIPTION = "0020000E", "00080060", "0008103E"


def _value(record: dict, tag: str) -> str:
    return str((record.get(tag, {}).get("Value") or [""])[0])


class DicomWebPeer:
    def __init__(self, settings: PacsSettings):
        from dicomweb_client.api import DICOMwebClient

        if not settings.url:
            raise PacsError(settings.source, None, "no DICOMweb url (set [dicomweb] url in the PACS settings file "
                                                   "or MEDGRADE_PACS_URL)")
        self.name = settings.url
        session = requests.Session()
        if settings.username:
            session.auth = (settings.username, settings.password or "")
        session.verify = str(Path(settings.ca_bundle).expanduser()) if settings.ca_bundle else True
        self.client = DICOMwebClient(settings.url, session=session, timeout=settings.timeout_s)
        self.timeout_s = settings.timeout_s

    def _call(self, study: str | None, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except requests.exceptions.SSLError as exc:
            raise PacsError(self.name, study, f"{what}: TLS verification failed ({str(exc)[:160]})") from None
        except requests.exceptions.Timeout:
            raise PacsError(self.name, study, f"{what}: no answer within {self.timeout_s:g} s") from None
        except requests.exceptions.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            reason = exc.response.reason if exc.response is not None else str(exc)
            raise PacsError(self.name, study, f"{what}: the server answered HTTP {code} {reason}") from None
        except requests.exceptions.RequestException as exc:
            raise PacsError(self.name, study, f"{what}: cannot connect ({type(exc).__name__})") from None

    def series(self, study: str) -> list[dict[str, str]]:
        """QIDO-RS: ``[{"uid", "modality", "description"}]`` of the study; a study it does not hold is an error."""
        found = self._call(study, "QIDO-RS search", lambda: self.client.search_for_series(study_instance_uid=study))
        if not found:
            raise PacsError(self.name, study, "not found on this server")
        return [{"uid": _value(r, SERIES_UID), "modality": _value(r, MODALITY), "description": _value(r, DESCRIPTION)}
                for r in found]

    def pull(self, study: str, series: Sequence[str], dest: Path) -> list[Path]:
        """WADO-RS: each of ``series`` into ``dest/<series uid>/<sop uid>.dcm``."""
        files = []
        for uid in series:
            datasets = self._call(study, f"WADO-RS retrieve of series {uid}",
                                  lambda uid=uid: self.client.retrieve_series(study, uid))
            folder = dest / uid
            folder.mkdir(parents=True, exist_ok=True)
            for ds in datasets:
                path = folder / f"{ds.SOPInstanceUID}.dcm"
                ds.save_as(path, enforce_file_format=True)
                files.append(path)
        return files

    def _stow(self, study: str, datasets: Sequence[pydicom.Dataset]) -> pydicom.Dataset:
        """STOW-RS; a 409 (some or all refused) still carries the answer of each instance: read it."""
        try:
            return self.client.store_instances(list(datasets), study)
        except requests.exceptions.HTTPError as exc:
            if exc.response is None or exc.response.status_code != 409:
                raise
            try:
                return pydicom.Dataset.from_json(exc.response.json())
            except ValueError:
                raise exc from None

    def store(self, study: str, datasets: Sequence[pydicom.Dataset]) -> StoreReport:
        """STOW-RS of ``datasets`` (one request); the answer's referenced / failed SOP sequences say what arrived."""
        answer = self._call(study, "STOW-RS store", lambda: self._stow(study, datasets))
        report = StoreReport(self.name, study)
        stored = {str(i.ReferencedSOPInstanceUID) for i in answer.get("ReferencedSOPSequence", [])}
        failed = {str(i.ReferencedSOPInstanceUID): i.get("FailureReason", "?")
                  for i in answer.get("FailedSOPSequence", [])}
        for ds in datasets:
            uid = str(ds.SOPInstanceUID)
            if uid in stored:
                report.arrived.append(f"{kind(ds)} {uid}")
            else:
                reason = f"failure reason 0x{int(failed[uid]):04X}" if uid in failed else "not acknowledged"
                report.refused.append(f"{kind(ds)} {uid}: {reason}")
        return report
