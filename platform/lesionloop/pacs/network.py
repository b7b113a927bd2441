"""The DICOM wire, with pynetdicom: the listener (C-STORE SCP, C-ECHO SCP) and the SCUs
(C-FIND, C-MOVE, C-STORE, C-ECHO). No database here: the listener calls back into
``services`` for every received object; the SCUs return plain values.

See docs/DICOM.md for the conformance statement this module implements.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import (
    AE,
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
    AllStoragePresentationContexts,
    evt,
)
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.pdu_primitives import A_RELEASE
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from lesionloop.core.text import clean_text

log = logging.getLogger(__name__)

# What the listener accepts: uncompressed, plus the lossless compressions ingest decodes.
ACCEPTED_TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    JPEG2000Lossless,
]
STORAGE_SOP_CLASSES = frozenset(cx.abstract_syntax for cx in AllStoragePresentationContexts)

# C-STORE statuses (PS3.4 B.2.3 and PS3.7 C.4.2)
SUCCESS = 0x0000
SOP_CLASS_NOT_SUPPORTED = 0x0122
DATASET_DOES_NOT_MATCH = 0xA900
# A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1).
UID_PATTERN = re.compile(r"(?=.{1,64}$)[0-9]+(\.[0-9]+)*")
CANNOT_UNDERSTAND = 0xC210
OUT_OF_RESOURCES = 0xA700

DIMSE_TIMEOUT = 60
NETWORK_TIMEOUT = 30


class DicomNetworkError(Exception):
    """A peer could not be reached, refused the association, or answered a failure."""


@dataclass(frozen=True)
class Peer:
    ae_title: str
    host: str
    port: int


@dataclass(frozen=True)
class Received:
    """One C-STORE request, parsed: what ``services.received_object_store`` needs."""

    meta: bytes  # preamble, "DICM" and File Meta Information (``file_meta_bytes``)
    dataset: bytes  # the data set as the peer encoded it; meta + dataset is the file
    study_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    modality: str
    series_instance_uid: str
    patient_id: str
    calling_ae: str
    address: str

    @property
    def size(self) -> int:
        """Bytes of the object in DICOM file format."""
        return len(self.meta) + len(self.dataset)

    @property
    def data(self) -> bytes:
        """The object in DICOM file format (a copy: write ``meta`` and ``dataset``)."""
        return self.meta + self.dataset


class ObjectRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# What ``parse_store`` reads of each object: the rest is written as it came.
HEADER_TAGS = [
    (0x0008, 0x0016),  # SOPClassUID
    (0x0008, 0x0018),  # SOPInstanceUID
    (0x0008, 0x0060),  # Modality
    (0x0010, 0x0020),  # PatientID
    (0x0020, 0x000D),  # StudyInstanceUID
    (0x0020, 0x000E),  # SeriesInstanceUID
]


def _element(tag: tuple[int, int], vr: bytes, value: bytes, pad: bytes = b"\0") -> bytes:
    if len(value) % 2:
        value += pad
    head = struct.pack("<HH", *tag) + vr
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def file_meta_bytes(*, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, ``DICM`` and the File Meta Information (PS3.10 7.1) of a received object,
    encoded directly (explicit VR little endian) rather than through pydicom's writer."""
    body = b"".join(
        [
            _element((0x0002, 0x0001), b"OB", b"\0\1"),
            _element((0x0002, 0x0002), b"UI", sop_class_uid.encode()),
            _element((0x0002, 0x0003), b"UI", sop_instance_uid.encode()),
            _element((0x0002, 0x0010), b"UI", transfer_syntax.encode()),
            _element((0x0002, 0x0012), b"UI", PYNETDICOM_IMPLEMENTATION_UID.encode()),
            _element((0x0002, 0x0013), b"SH", PYNETDICOM_IMPLEMENTATION_VERSION.encode(), pad=b" "),
        ]
    )
    group = _element((0x0002, 0x0000), b"UL", struct.pack("<I", len(body)))
    return b"\0" * 128 + b"DICM" + group + body


def _past_header(tag: int, vr: str | None, length: int) -> bool:
    return tag > 0x0020000E  # elements come in tag order: the last one read is behind us


def read_header(meta: bytes, dataset: bytes, transfer_syntax: str) -> Dataset:
    """The ``HEADER_TAGS`` (and SpecificCharacterSet) of an encoded data set.

    Only the top-level elements up to SeriesInstanceUID (0020,000E) are walked, each
    value skipped unless asked for: the cost does not grow with the pixel data or with
    the elements after it. A deflated data set is read by ``dcmread`` (it inflates).
    Raises whatever pydicom raises for bytes it cannot read."""
    syntax = UID(transfer_syntax)
    if syntax == DeflatedExplicitVRLittleEndian:
        return dcmread(BytesIO(meta + dataset), stop_before_pixels=True, specific_tags=HEADER_TAGS)
    return read_dataset(
        BytesIO(dataset),
        syntax.is_implicit_VR,
        syntax.is_little_endian,
        stop_when=_past_header,
        specific_tags=[Tag(t) for t in HEADER_TAGS],
    )


def parse_store(event: Any) -> Received:
    """The C-STORE request as ``Received``; ``ObjectRefused`` with the status to answer.

    The dataset is not decoded: its bytes are kept as they came behind a File Meta
    header built here, and only the elements up to the last of ``HEADER_TAGS`` are
    walked to read them (``read_header``; an unreadable header refuses the object).
    """
    request = event.request
    sop_class = str(request.AffectedSOPClassUID)
    if sop_class not in STORAGE_SOP_CLASSES:
        raise ObjectRefused(SOP_CLASS_NOT_SUPPORTED, f"{sop_class} is not a storage SOP class")
    request_sop = str(request.AffectedSOPInstanceUID)
    try:
        transfer_syntax = str(event.context.transfer_syntax)
        meta = file_meta_bytes(
            sop_class_uid=sop_class, sop_instance_uid=request_sop, transfer_syntax=transfer_syntax
        )
        dataset = event.encoded_dataset(include_meta=False)
        ds = read_header(meta, dataset, transfer_syntax)
        study_uid = str(ds.StudyInstanceUID)
        sop_uid = str(ds.SOPInstanceUID)
        ds_class = str(ds.SOPClassUID)
    except Exception as exc:  # a dataset we cannot read: refuse this object only
        raise ObjectRefused(CANNOT_UNDERSTAND, f"cannot parse the dataset ({exc})") from None
    if ds_class != sop_class or sop_uid != request_sop:
        raise ObjectRefused(DATASET_DOES_NOT_MATCH, "SOP class/instance differ from the request")
    # The UIDs name files and folders: only a well-formed UID (digits and dots, at most
    # 64 characters, PS3.5 9.1) is accepted, so no name can leave the staging area.
    study_uid, sop_uid = study_uid.strip("\0 "), sop_uid.strip("\0 ")
    if not (UID_PATTERN.fullmatch(study_uid) and UID_PATTERN.fullmatch(sop_uid)):
        raise ObjectRefused(CANNOT_UNDERSTAND, "missing or invalid StudyInstanceUID/SOPInstanceUID")
    return Received(
        meta=meta,
        dataset=dataset,
        study_instance_uid=study_uid,
        sop_instance_uid=sop_uid,
        sop_class_uid=sop_class,
        modality=clean_text(ds.get("Modality", ""), max_len=16),
        series_instance_uid=clean_text(ds.get("SeriesInstanceUID", ""), max_len=64),
        patient_id=clean_text(ds.get("PatientID", "") or "", max_len=64),
        calling_ae=str(event.assoc.requestor.ae_title).strip(),
        address=str(event.assoc.requestor.address),
    )


@dataclass
class ListenerConfig:
    ae_title: str
    port: int
    host: str = "0.0.0.0"
    allowed_aets: list[str] = field(default_factory=list)
    allowed_networks: list[str] = field(default_factory=list)


def _networks(cidrs: Iterable[str]) -> list[Any]:
    return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip()]


def _reject_reason(event: Any, config: ListenerConfig) -> str:
    """Why pynetdicom rejected an association (it does not say), from its own checks."""
    calling = str(event.assoc.requestor.ae_title).strip()
    primitive = getattr(event.assoc.requestor, "primitive", None)
    called = str(getattr(primitive, "called_ae_title", "") or "").strip()
    if config.allowed_aets and calling not in [a.strip() for a in config.allowed_aets]:
        return "calling AE title not allowed"
    if called and called != config.ae_title.strip():
        return f"called AE title {called!r} is not ours"
    return "rejected (too many associations or user identity)"


def start_listener(
    config: ListenerConfig,
    *,
    on_store: Callable[[Received], None],
    on_flush: Callable[[], None] = lambda: None,
    on_association_end: Callable[[], None] = lambda: None,
    on_refused: Callable[[str, str, str], None] = lambda calling, address, reason: None,
) -> Any:
    """Start the C-STORE/C-ECHO SCP in background threads; returns the server (``shutdown()``).

    ``on_store`` persists one object; an exception from it answers Out of Resources for
    that object only. ``on_flush`` runs in the association's thread when the peer asks
    to release (before we answer) or aborts; ``on_association_end`` after it ended.
    Callers whose AE title or address is not allowed are refused, and
    ``on_refused(calling_ae, address, reason)`` is told.
    """
    ae = AE(ae_title=config.ae_title)
    ae.require_called_aet = True
    if config.allowed_aets:
        ae.require_calling_aet = list(config.allowed_aets)
    ae.network_timeout = NETWORK_TIMEOUT
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.maximum_pdu_size = 0  # no limit on what we receive
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ACCEPTED_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])

    def handle_store(event: Any) -> int:
        try:
            received = parse_store(event)
        except ObjectRefused as refused:
            log.warning(
                "refused an object from %s: %s", event.assoc.requestor.ae_title, refused.reason
            )
            return refused.status
        try:
            on_store(received)
        except Exception:
            log.exception("could not store %s", received.sop_instance_uid)
            return OUT_OF_RESOURCES
        return SUCCESS

    def handle_acse(event: Any) -> None:
        primitive = event.primitive
        if isinstance(primitive, A_RELEASE) and primitive.result is None:
            _safely(on_flush)  # the peer asked to release: flush before we answer

    def handle_aborted(event: Any) -> None:
        _safely(on_flush)
        on_association_end()

    def handle_rejected(event: Any) -> None:
        calling = str(event.assoc.requestor.ae_title).strip()
        address = str(event.assoc.requestor.address)
        reason = _reject_reason(event, config)
        log.warning("association from %s (%s) rejected: %s", calling, address, reason)
        _safely(lambda: on_refused(calling, address, reason))

    handlers = [
        (evt.EVT_REQUESTED, _quiet_standard_logging),
        (evt.EVT_C_STORE, handle_store),
        (evt.EVT_C_ECHO, lambda event: SUCCESS),
        (evt.EVT_ACSE_RECV, handle_acse),
        (evt.EVT_RELEASED, lambda event: on_association_end()),
        (evt.EVT_ABORTED, handle_aborted),
        (evt.EVT_REJECTED, handle_rejected),
    ]
    server = ae.start_server((config.host, config.port), block=False, evt_handlers=handlers)
    _networks_only(server, _networks(config.allowed_networks), on_refused)
    return server


def _networks_only(
    server: Any, networks: list[Any], on_refused: Callable[[str, str, str], None]
) -> None:
    """Close connections from outside ``networks`` (none: any address) before they
    associate, telling ``on_refused``."""
    if not networks:
        return

    def verify_request(request: Any, client_address: Any) -> bool:
        address = ipaddress.ip_address(client_address[0])
        if any(address in net for net in networks):
            return True
        log.warning("connection from %s refused: not in the allowed networks", address)
        _safely(lambda: on_refused("", str(address), "address not in the allowed networks"))
        return False

    server.verify_request = verify_request


# pynetdicom binds these to every association: they format each PDU and DIMSE message
# into INFO/DEBUG lines, a cost per object even when the logger drops the lines.
_STANDARD_LOG_HANDLERS = [
    (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
    (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
    (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
    (evt.EVT_PDU_SENT, standard_pdu_sent_handler),
]


def _quiet_standard_logging(event: Any) -> None:
    """Unbind pynetdicom's logging handlers from this association when its logger would
    drop their lines anyway (below INFO); set the ``pynetdicom`` logger to INFO or DEBUG
    and the message log is there again for the next association."""
    if not logging.getLogger("pynetdicom").isEnabledFor(logging.INFO):
        for event_type, handler in _STANDARD_LOG_HANDLERS:
            event.assoc.unbind(event_type, handler)


def _safely(call: Callable[[], None]) -> None:
    try:
        call()
    except Exception:  # a bookkeeping failure must not break the association
        log.exception("listener callback failed")


# --- SCUs ----------------------------------------------------------------------------


def _associate(ae: AE, peer: Peer) -> Any:
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title)
    if not assoc.is_established:
        raise DicomNetworkError(
            f"association with {peer.ae_title}@{peer.host}:{peer.port} failed "
            f"({'rejected' if assoc.is_rejected else 'aborted' if assoc.is_aborted else 'no answer'})"
        )
    return assoc


def _ae(calling_ae: str) -> AE:
    ae = AE(ae_title=calling_ae)
    ae.network_timeout = NETWORK_TIMEOUT
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.acse_timeout = NETWORK_TIMEOUT
    return ae


def echo(peer: Peer, *, calling_ae: str) -> int:
    ae = _ae(calling_ae)
    ae.add_requested_context(Verification)
    assoc = _associate(ae, peer)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    return int(getattr(status, "Status", -1))


FIND_KEYS = (
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "AccessionNumber",
    "StudyDate",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedInstances",
)


def find_studies(
    peer: Peer, *, calling_ae: str, patient_id: str = "", accession_number: str = ""
) -> list[dict[str, str]]:
    """Study-level C-FIND (Study Root) by PatientID and/or AccessionNumber."""
    ae = _ae(calling_ae)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    for key in FIND_KEYS:
        setattr(query, key, "")
    query.PatientID = patient_id
    query.AccessionNumber = accession_number
    assoc = _associate(ae, peer)
    found: list[dict[str, str]] = []
    try:
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            code = int(getattr(status, "Status", -1))
            if code in (0xFF00, 0xFF01) and identifier is not None:
                found.append({key: str(identifier.get(key, "") or "") for key in FIND_KEYS})
            elif code not in (0x0000, 0xFF00, 0xFF01):
                raise DicomNetworkError(f"C-FIND failed with status 0x{code:04X}")
    finally:
        assoc.release()
    return found


def move_study(peer: Peer, *, calling_ae: str, study_instance_uid: str, destination: str) -> dict:
    """Study-level C-MOVE of one study to ``destination`` (our listener's AE title)."""
    ae = _ae(calling_ae)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_instance_uid
    assoc = _associate(ae, peer)
    last: dict[str, int] = {}
    try:
        for status, _identifier in assoc.send_c_move(
            query, destination, StudyRootQueryRetrieveInformationModelMove
        ):
            if status is None or "Status" not in status:
                raise DicomNetworkError("C-MOVE: the peer sent no status (timeout or abort)")
            code = int(status.Status)
            last = {
                "status": code,
                "completed": int(status.get("NumberOfCompletedSuboperations", 0) or 0),
                "failed": int(status.get("NumberOfFailedSuboperations", 0) or 0),
                "warning": int(status.get("NumberOfWarningSuboperations", 0) or 0),
            }
            if code not in (0x0000, 0xFF00, 0xFF01, 0xB000):
                raise DicomNetworkError(f"C-MOVE failed with status 0x{code:04X}")
    finally:
        assoc.release()
    return last


def store(peer: Peer, *, calling_ae: str, datasets: list[Dataset]) -> list[int]:
    """C-STORE each dataset on one association; the remote status of each."""
    ae = _ae(calling_ae)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = _associate(ae, peer)
    statuses: list[int] = []
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            if status is None or "Status" not in status:
                raise DicomNetworkError("C-STORE: the peer sent no status (timeout or abort)")
            statuses.append(int(status.Status))
    finally:
        if assoc.is_established:
            assoc.release()
    return statuses
