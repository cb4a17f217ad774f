"""Content-addressed record cache: one gzip-compressed JSON file per record key.

Layout: ``<cache_dir>/<key[:2]>/<key>.json.gz``. Each file contains
``{"format": "graphsym-record", "key": KEY, "checksum": SHA256, "payload": {...}}``, where
``checksum`` is the sha256 of the payload's canonical JSON (sorted keys, no spaces). Writes go to
a temporary file in the same folder, which is flushed, fsynced and renamed over the target with
``os.replace``, so a reader sees either the old file, no file or the complete new file.

A file that is truncated, not gzip, not JSON, has a checksum mismatch or contains another key is
reported as corrupt, logged with its key, deleted, and left for the builder to rebuild.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
import zlib
from pathlib import Path

from ..netlist.model import NetlistError
from .records import DatasetError, Record, canonical_json

__all__ = ["RECORD_FORMAT", "CorruptRecordError", "RecordCache"]

logger = logging.getLogger(__name__)

RECORD_FORMAT = "graphsym-record"


class CorruptRecordError(DatasetError):
    """A cache file exists but cannot be trusted: truncated, unreadable, wrong checksum or key."""


class RecordCache:
    """Records stored by key under ``root``. Several processes may write different keys at once."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        # Keys whose files failed a check in load() and were deleted, in the order found.
        self.discarded: list[str] = []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatasetError(f"cannot create cache folder {self.root}: {error}") from error

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json.gz"

    def read(self, key: str) -> Record:
        """Return the record stored under ``key``.

        Raises FileNotFoundError when there is none and CorruptRecordError when the file fails a check.
        """
        path = self.path(key)
        try:
            with gzip.open(path, "rb") as handle:
                document = json.loads(handle.read())
        except FileNotFoundError:
            raise
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CorruptRecordError(f"record {key}: unreadable file {path} ({error!r})") from error
        if not isinstance(document, dict) or document.get("format") != RECORD_FORMAT:
            raise CorruptRecordError(f"record {key}: {path} is not a {RECORD_FORMAT!r} document")
        if document.get("key") != key:
            raise CorruptRecordError(f"record {key}: {path} contains key {document.get('key')!r} instead")
        payload = document.get("payload")
        checksum = hashlib.sha256(canonical_json(payload)).hexdigest()
        if checksum != document.get("checksum"):
            raise CorruptRecordError(
                f"record {key}: checksum mismatch in {path} (stored {document.get('checksum')!r}, computed {checksum})"
            )
        try:
            record = Record.from_payload(payload)
        except (KeyError, TypeError, ValueError, NetlistError) as error:
            raise CorruptRecordError(f"record {key}: malformed payload in {path} ({error!r})") from error
        if record.key != key:
            raise CorruptRecordError(f"record {key}: payload of {path} names key {record.key}")
        return record

    def load(self, key: str) -> Record | None:
        """Return the record under ``key``, or None when it is missing or corrupt.

        A corrupt file is logged and deleted, and its key is appended to :attr:`discarded`.
        """
        try:
            return self.read(key)
        except FileNotFoundError:
            return None
        except CorruptRecordError as error:
            logger.warning("corrupt cache entry %s will be rebuilt: %s", key, error)
            self.path(key).unlink(missing_ok=True)
            self.discarded.append(key)
            return None

    def write(self, record: Record) -> Path:
        """Store ``record`` atomically under its key and return the file path."""
        payload = record.to_payload()
        document = {
            "format": RECORD_FORMAT,
            "key": record.key,
            "checksum": hashlib.sha256(canonical_json(payload)).hexdigest(),
            "payload": payload,
        }
        # mtime=0 keeps the bytes identical for identical records.
        data = gzip.compress(canonical_json(document), compresslevel=6, mtime=0)
        path = self.path(record.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{record.key[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)
        return path


def _fsync_folder(folder: Path) -> None:
    """Persist the rename in ``folder``; skipped where folders cannot be opened (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
