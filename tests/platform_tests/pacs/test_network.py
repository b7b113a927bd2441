"""The C-STORE request as the listener reads it (``network.read_header``): the header
elements it needs, read without decoding the rest, in every accepted transfer syntax;
and the object staged byte for byte as the peer encoded it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom.dsutils import encode

from lesionloop.pacs import network, services
from lesionloop.pacs.models import ReceivedStudy

# (transfer syntax, implicit VR, little endian, deflated)
SYNTAXES = [
    (ExplicitVRLittleEndian, False, True, False),
    (ImplicitVRLittleEndian, True, True, False),
    (ExplicitVRBigEndian, False, False, False),
    (DeflatedExplicitVRLittleEndian, False, True, True),
]


def ct_slice(patient_id: str = "MÜLLER^7") -> Dataset:
    """A small CT slice: Latin-1 text, a sequence among the header elements (nested,
    as scanners write them) and pixels after them."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.Modality = "CT"
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = CTImageStorage, generate_uid()
    ds.ReferencedImageSequence = Sequence([item])  # (0008,1140): between Modality and PatientID
    ds.PatientID = patient_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.InstanceNumber = 3
    ds.Rows, ds.Columns = 5, 7  # odd sizes
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = np.arange(35, dtype=np.int16).reshape(5, 7).tobytes()
    return ds


@pytest.mark.parametrize(("syntax", "implicit", "little", "deflated"), SYNTAXES)
def test_the_header_is_read_in_every_transfer_syntax(
    syntax: str, implicit: bool, little: bool, deflated: bool
) -> None:
    ds = ct_slice()
    encoded = encode(ds, implicit, little, deflated)
    meta = network.file_meta_bytes(
        sop_class_uid=ds.SOPClassUID, sop_instance_uid=ds.SOPInstanceUID, transfer_syntax=syntax
    )
    header = network.read_header(meta, encoded, syntax)
    for keyword in ("SOPClassUID", "SOPInstanceUID", "Modality", "StudyInstanceUID"):
        assert str(header[keyword].value) == str(ds[keyword].value), keyword
    assert header.PatientID == "MÜLLER^7"  # decoded with the object's character set
    assert header.SeriesInstanceUID == ds.SeriesInstanceUID
    if not deflated:  # the walk stopped after SeriesInstanceUID
        assert "InstanceNumber" not in header and "PixelData" not in header
    # meta + the bytes as sent is a DICOM file that reads back whole
    from io import BytesIO

    back = dcmread(BytesIO(meta + encoded))
    assert back.file_meta.TransferSyntaxUID == syntax
    assert back.PixelData == ds.PixelData and back.PatientID == ds.PatientID


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("syntax", "implicit", "little", "deflated"), SYNTAXES)
def test_an_object_is_staged_as_the_peer_encoded_it(
    start_listener: Any, syntax: str, implicit: bool, little: bool, deflated: bool
) -> None:
    from pynetdicom import AE

    listener = start_listener()
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, [syntax])
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="LESIONLOOP")
    assert assoc.is_established
    ds = ct_slice()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax  # pynetdicom sends it in this syntax
    try:
        assert assoc.send_c_store(ds).Status == 0x0000
    finally:
        assoc.release()
    staged = services.staging_dir(ds.StudyInstanceUID) / f"{ds.SOPInstanceUID}.dcm"
    raw = Path(staged).read_bytes()
    assert raw.endswith(encode(ds, implicit, little, deflated))  # the bytes as sent
    back = dcmread(staged)
    assert back.file_meta.TransferSyntaxUID == syntax
    assert back.PixelData == ds.PixelData
    row = ReceivedStudy.objects.get(study_instance_uid=ds.StudyInstanceUID)
    assert row.patient_id == "MÜLLER^7" and row.object_count == 1 and row.bytes == len(raw)


# (pynetdicom logger level, pynetdicom's per-message log handlers left bound)
LOG_LEVELS = [("WARNING", False), ("INFO", True), ("DEBUG", True)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("level", "bound"), LOG_LEVELS)
def test_per_message_logging_only_when_its_lines_are_kept(
    start_listener: Any, caplog: Any, level: str, bound: bool
) -> None:
    import logging

    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification

    logger = logging.getLogger("pynetdicom")
    old = logger.level
    logger.setLevel(level)
    try:
        listener = start_listener()
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", listener.port, ae_title="LESIONLOOP")
        assert assoc.is_established and assoc.send_c_echo().Status == 0
        (ours,) = listener.server.active_associations
        handlers = [h for h, _args in ours.get_handlers(evt.EVT_DIMSE_RECV)]
        assoc.release()
    finally:
        logger.setLevel(old)
    assert any(h.__name__ == "standard_dimse_recv_handler" for h in handlers) == bound
    assert ("Received Echo Request" in caplog.text) == bound
