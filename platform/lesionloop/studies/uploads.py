"""An upload handler that streams multipart files straight into ``STORAGE_ROOT``.

Django's default handlers keep small files in memory and large ones in the system
temp folder, and the service would copy them again. This one writes every chunk to
``STORAGE_ROOT/incoming/<random>/`` as it arrives (same filesystem as the studies, so
the service moves the files with a rename), and stops the request as soon as the
running total passes ``UPLOAD_MAX_BYTES``.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.utils.text import get_valid_filename

from lesionloop.core.exceptions import DomainError

from . import storage


class StagedFile(UploadedFile):
    """An uploaded file already on disk under the storage root."""

    def __init__(self, path: Path, name: str, size: int, content_type: str | None) -> None:
        super().__init__(file=None, name=name, content_type=content_type, size=size)
        self.staged_path = path

    def open(self, mode: str = "rb") -> StagedFile:
        self.file = self.staged_path.open(mode)
        return self

    def chunks(self, chunk_size: int | None = None) -> Any:
        with self.staged_path.open("rb") as fh:
            while chunk := fh.read(chunk_size or self.DEFAULT_CHUNK_SIZE):
                yield chunk

    def read(self, *args: Any) -> bytes:
        if self.file is None:
            self.open()
        return self.file.read(*args)

    def seek(self, *args: Any) -> int:
        if self.file is None:
            self.open()
        return self.file.seek(*args)

    def tell(self) -> int:
        if self.file is None:
            self.open()
        return self.file.tell()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def staging_dir_new() -> Path:
    path = storage.storage_root() / "incoming" / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def staging_dir_remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class StorageUploadHandler(FileUploadHandler):
    def __init__(self, staging: Path, request: Any = None) -> None:
        super().__init__(request)
        self.staging = staging
        self.total = 0
        self.count = 0
        self.fh: Any = None
        self.path: Path | None = None

    def new_file(
        self, field_name: str, file_name: str, content_type: str, *args: Any, **kwargs: Any
    ) -> None:
        super().new_file(field_name, file_name, content_type, *args, **kwargs)
        self.count += 1
        safe = get_valid_filename(Path(file_name or "file").name) or "file"
        self.path = self.staging / f"{self.count:05d}_{safe}"
        self.fh = self.path.open("wb")

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.total += len(raw_data)
        if self.total > settings.UPLOAD_MAX_BYTES:
            self.fh.close()
            raise DomainError(
                f"The upload is larger than the limit of {settings.UPLOAD_MAX_BYTES} bytes.",
                code="too_large",
                status_code=413,
            )
        self.fh.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> StagedFile:
        self.fh.close()
        assert self.path is not None
        return StagedFile(self.path, self.file_name, file_size, self.content_type)

    def upload_interrupted(self) -> None:
        if self.fh is not None:
            self.fh.close()
