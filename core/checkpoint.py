"""Checkpoints: a safetensors file of tensors plus a JSON file of everything else.

A checkpoint after epoch N consists of::

    checkpoints/epoch-NNNN.safetensors   tensors, keyed by prefix ("model/...", "optimizer/...")
    checkpoints/epoch-NNNN.json          state; tensors appear in it as {"__tensor__": KEY}

The JSON file also records the byte size and SHA-256 of the safetensors file. It is written
after the tensor file, so it exists only when the tensor file is complete. A tensor file
without its JSON (left by a crash between the two writes) is ignored. Before anything is loaded, the
size, the hash and the safetensors header are checked, and a mismatch raises
:class:`~adaptlab.core.errors.CheckpointError` naming the file.

Nested state (optimizer state dicts, RNG states) is stored with :func:`pack_state`, which
moves tensors into the tensor file and keeps the structure in JSON, tuples and non-string
dict keys included, so that :func:`unpack_state` rebuilds the same Python objects.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from adaptlab.core.errors import CheckpointError
from adaptlab.core.runs import atomic_path, atomic_write_json, remove_temporary_files

__all__ = [
    "BEST_FILE",
    "Checkpoint",
    "checkpoint_stem",
    "find_latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_latest_checkpoint",
    "pack_state",
    "prune_checkpoints",
    "read_best",
    "save_checkpoint",
    "unpack_state",
    "verify_checkpoint",
    "write_best",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
BEST_FILE = "best.json"
_STATE_NAME = re.compile(r"^epoch-(\d{4,})\.json$")
_TENSOR_NAME = re.compile(r"^epoch-(\d{4,})\.safetensors$")
_HASH_CHUNK = 1 << 20


def checkpoint_stem(epoch: int) -> str:
    """Return the file stem of the checkpoint after ``epoch``: ``epoch-0007``."""
    return f"epoch-{epoch:04d}"


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its epoch, both file paths and the decoded JSON document."""

    epoch: int
    state_path: Path
    tensor_path: Path
    document: dict[str, Any]

    @property
    def state(self) -> dict[str, Any]:
        """The caller's state as saved, with tensors still as ``{"__tensor__": KEY}``."""
        return self.document["state"]


# --- nested state <-> JSON + tensors -----------------------------------------------------


def pack_state(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Return a JSON-ready copy of ``value`` whose tensors are moved into ``tensors``.

    Each tensor is stored under ``prefix/PATH`` and replaced by ``{"__tensor__": KEY}``.
    Tuples, dicts with non-string keys and non-finite floats are tagged so that
    :func:`unpack_state` restores them exactly. Other types raise ``TypeError`` naming the path.
    """
    if isinstance(value, torch.Tensor):
        key = prefix
        tensors[key] = value.detach()
        return {"__tensor__": key}
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [pack_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [pack_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: pack_state(v, f"{prefix}/{k}", tensors) for k, v in value.items()}
        items = []
        for index, (key, item) in enumerate(value.items()):
            packed_key = pack_state(key, f"{prefix}/key{index}", tensors)
            items.append([packed_key, pack_state(item, f"{prefix}/{key}", tensors)])
        return {"__items__": items}
    # numpy scalars and arrays (numpy's RNG state) without importing numpy here.
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return pack_state(value.tolist(), prefix, tensors)
    raise TypeError(f"cannot store {type(value).__name__} at {prefix!r} in a checkpoint")


def unpack_state(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Invert :func:`pack_state`, taking tensors from ``tensors``."""
    if isinstance(value, list):
        return [unpack_state(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"__tensor__"}:
        key = value["__tensor__"]
        if key not in tensors:
            raise CheckpointError(f"checkpoint state refers to tensor {key!r}, which is missing")
        return tensors[key]
    if set(value) == {"__float__"}:
        return float(value["__float__"])
    if set(value) == {"__tuple__"}:
        return tuple(unpack_state(v, tensors) for v in value["__tuple__"])
    if set(value) == {"__items__"}:
        return {unpack_state(k, tensors): unpack_state(v, tensors) for k, v in value["__items__"]}
    return {k: unpack_state(v, tensors) for k, v in value.items()}


# --- saving ------------------------------------------------------------------------------


def _storage_key(tensor: torch.Tensor) -> tuple[Any, ...]:
    return (tensor.device, tensor.untyped_storage().data_ptr())


def _view_key(tensor: torch.Tensor) -> tuple[Any, ...]:
    return (tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)


def _prepare_tensors(
    tensors: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Copy tensors to contiguous CPU memory that safetensors accepts.

    safetensors rejects tensors sharing memory. Identical views (tied weights) are stored once
    and the other names recorded as aliases; a different view of seen memory is cloned.
    """
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[tuple[Any, ...]] = set()
    for name, tensor in tensors.items():
        tensor = tensor.detach()
        if tensor.numel() == 0:
            unique[name] = tensor.to("cpu").clone()
            continue
        storage = _storage_key(tensor)
        view = (*storage, *_view_key(tensor))
        if view in views:
            aliases[name] = views[view]
            continue
        views[view] = name
        copy = tensor.to("cpu")
        if storage in storages:
            copy = copy.clone()
        storages.add(storage)
        unique[name] = copy.contiguous()
    return unique, aliases


def _file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _format_bytes(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            break
    return f"{value:.1f} {unit}"


def save_checkpoint(
    directory: Path,
    epoch: int,
    tensors: Mapping[str, torch.Tensor],
    state: Mapping[str, Any],
    adaptlab_version: str = "",
) -> Path:
    """Write the checkpoint after ``epoch`` and return the path of its JSON file.

    ``state`` must be JSON-ready (pass nested tensor state through :func:`pack_state`).
    The tensor file is written and fsynced first; the JSON file, which records the tensor
    file's size and SHA-256, is written second.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = checkpoint_stem(epoch)
    tensor_path = directory / f"{stem}.safetensors"
    state_path = directory / f"{stem}.json"
    unique, aliases = _prepare_tensors(tensors)
    with atomic_path(tensor_path) as temporary:
        save_file(unique, str(temporary), metadata={"format": "pt", "epoch": str(epoch)})
        size, sha256 = _file_digest(temporary)
    document = {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "created": datetime.now().isoformat(timespec="seconds"),
        "adaptlab_version": adaptlab_version,
        "tensors": {"file": tensor_path.name, "bytes": size, "sha256": sha256, "aliases": aliases},
        "state": dict(state),
    }
    try:
        text = json.dumps(document, indent=1, allow_nan=False)
    except ValueError as error:
        raise TypeError(f"checkpoint state of epoch {epoch} is not JSON-ready: {error}") from None
    with atomic_path(state_path) as temporary:
        temporary.write_text(text + "\n", encoding="utf-8")
    logger.info(
        "saved checkpoint %s (%s of tensors) in %s", stem, _format_bytes(size), directory
    )
    return state_path


# --- verification and loading ------------------------------------------------------------


def _corrupt(path: Path, problem: str) -> CheckpointError:
    stem = path.name.rsplit(".", 1)[0]
    return CheckpointError(
        f"checkpoint {path} is corrupt: {problem}. It will not be loaded; delete "
        f"{stem}.json and {stem}.safetensors in {path.parent} to continue from an earlier "
        "checkpoint, or start a new run"
    )


def verify_checkpoint(state_path: Path) -> Checkpoint:
    """Read the JSON of a checkpoint and check its tensor file's size and SHA-256.

    Raises :class:`CheckpointError` naming the file on unreadable JSON, a missing tensor
    file or a size or hash mismatch.
    """
    state_path = Path(state_path)
    try:
        document = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {state_path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _corrupt(state_path, f"unreadable JSON ({error})") from None
    try:
        epoch = int(document["epoch"])
        record = document["tensors"]
        expected_size = int(record["bytes"])
        expected_hash = str(record["sha256"])
        tensor_path = state_path.parent / str(record["file"])
        document["state"]  # noqa: B018 - presence check
    except (KeyError, TypeError, ValueError) as error:
        raise _corrupt(state_path, f"missing or invalid field {error}") from None
    if document.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {state_path} has format {document.get('format')!r}, but this adaptlab "
            f"reads format {CHECKPOINT_FORMAT}; use the adaptlab release that wrote it "
            f"({document.get('adaptlab_version') or 'unknown'})"
        )
    if not tensor_path.is_file():
        raise _corrupt(state_path, f"its tensor file {tensor_path.name} is missing")
    size = tensor_path.stat().st_size
    if size != expected_size:
        raise _corrupt(
            tensor_path, f"size is {size} bytes, but {expected_size} were written (truncated?)"
        )
    _, sha256 = _file_digest(tensor_path)
    if sha256 != expected_hash:
        raise _corrupt(
            tensor_path, f"sha256 is {sha256[:16]}..., but {expected_hash[:16]}... was written"
        )
    try:
        with safe_open(str(tensor_path), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise _corrupt(tensor_path, f"invalid safetensors header ({error})") from None
    return Checkpoint(epoch, state_path, tensor_path, document)


def load_checkpoint(
    state_path: Path, device: str | torch.device = "cpu"
) -> tuple[Checkpoint, dict[str, torch.Tensor]]:
    """Verify and load a checkpoint; return it with its tensors (aliases restored)."""
    checkpoint = verify_checkpoint(state_path)
    try:
        tensors = load_file(str(checkpoint.tensor_path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise _corrupt(checkpoint.tensor_path, f"unreadable tensors ({error})") from None
    for alias, original in checkpoint.document["tensors"].get("aliases", {}).items():
        if original not in tensors:
            raise _corrupt(checkpoint.state_path, f"alias {alias!r} names missing {original!r}")
        tensors[alias] = tensors[original]
    return checkpoint, tensors


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """Return ``(epoch, json path)`` of every checkpoint JSON in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _STATE_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def find_latest_checkpoint(directory: Path) -> Checkpoint | None:
    """Return the newest checkpoint in ``directory`` that verifies; warn about corrupt ones.

    Returns ``None`` when the folder contains no checkpoint at all, and raises
    :class:`CheckpointError` listing every failure when checkpoints exist but none is valid.
    """
    remove_temporary_files(Path(directory))
    entries = list_checkpoints(directory)
    failures = []
    for _, path in reversed(entries):
        try:
            return verify_checkpoint(path)
        except CheckpointError as error:
            logger.warning("skipping checkpoint %s: %s", path.name, error)
            failures.append(f"  - {error}")
    if not entries:
        return None
    raise CheckpointError(
        f"no valid checkpoint in {directory}; all {len(entries)} are corrupt:\n"
        + "\n".join(failures)
        + "\nstart a new run with the same spec"
    )


def load_latest_checkpoint(
    directory: Path, device: str | torch.device = "cpu"
) -> tuple[Checkpoint, dict[str, torch.Tensor]] | None:
    """Load the checkpoint that :func:`find_latest_checkpoint` returns, or ``None``."""
    checkpoint = find_latest_checkpoint(directory)
    if checkpoint is None:
        return None
    return load_checkpoint(checkpoint.state_path, device)


# --- best pointer and retention ----------------------------------------------------------


def write_best(directory: Path, epoch: int, monitor: str, mode: str, value: float) -> None:
    """Record the checkpoint of ``epoch`` as the best one in ``best.json``."""
    atomic_write_json(
        Path(directory) / BEST_FILE,
        {
            "epoch": epoch,
            "checkpoint": f"{checkpoint_stem(epoch)}.json",
            "monitor": monitor,
            "mode": mode,
            "value": value,
        },
    )


def read_best(directory: Path) -> dict[str, Any] | None:
    """Return the content of ``best.json``, or ``None`` when it is missing or unreadable."""
    path = Path(directory) / BEST_FILE
    if not path.is_file():
        return None
    try:
        best = json.loads(path.read_text(encoding="utf-8"))
        int(best["epoch"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        logger.warning("ignoring unreadable %s", path)
        return None
    return best


def prune_checkpoints(directory: Path, keep_last: int, keep: Iterable[int] = ()) -> list[int]:
    """Delete checkpoints except the newest ``keep_last`` and the epochs in ``keep``.

    A JSON file is deleted before its tensor file, so an interrupted deletion leaves an
    ignored tensor file, never a JSON file pointing at nothing. Tensor files without a JSON
    file older than the newest checkpoint are deleted too. Returns the deleted epochs.
    """
    directory = Path(directory)
    entries = list_checkpoints(directory)
    kept = {epoch for epoch, _ in entries[-keep_last:]} | set(keep)
    deleted = []
    for epoch, path in entries:
        if epoch in kept:
            continue
        path.unlink(missing_ok=True)
        (directory / f"{checkpoint_stem(epoch)}.safetensors").unlink(missing_ok=True)
        deleted.append(epoch)
    newest = entries[-1][0] if entries else 0
    json_epochs = {epoch for epoch, _ in entries}
    for path in directory.glob("epoch-*.safetensors"):
        match = _TENSOR_NAME.match(path.name)
        if match and int(match.group(1)) not in json_epochs and int(match.group(1)) < newest:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    if deleted:
        logger.info(
            "deleted the old %s %s in %s",
            "checkpoint of epoch" if len(deleted) == 1 else "checkpoints of epochs",
            ", ".join(map(str, deleted)),
            directory,
        )
    return deleted
