"""Run directories: creation, atomic writes, the stored spec, metrics, logs and locking.

A run directory contains everything needed to inspect, evaluate and resume one training run::

    spec.yaml        resolved spec (defaults included), as written by ``Spec.to_data()``
    versions.json    Python, torch, adaptlab and optional library versions, platform, CUDA
    train.log        log records of the run, appended by every resume
    metrics.jsonl    one JSON object per completed epoch
    summary.json     final status, best and final validation metrics with their epochs,
                     parameter counts, wall time
    checkpoints/     ``epoch-NNNN.safetensors`` + ``epoch-NNNN.json``, ``best.json``
    eval-SPLIT.json  written by ``adaptlab evaluate``

Every file except the append-only ``metrics.jsonl`` and ``train.log`` is replaced atomically:
the new content goes to a temporary file in the same folder, is flushed and fsynced, then
renamed over the old name with ``os.replace``. A crash therefore leaves either the old or the
new file, plus at most a hidden ``.NAME.*.tmp`` file that :func:`remove_temporary_files`
deletes. This module does not import torch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import secrets
import socket
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from adaptlab.core.errors import RunError

__all__ = [
    "CHECKPOINT_DIR",
    "METRICS_FILE",
    "SPEC_FILE",
    "SUMMARY_FILE",
    "VERSIONS_FILE",
    "MetricsLog",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "collect_versions",
    "create_run_dir",
    "format_count",
    "read_json",
    "read_spec_data",
    "remove_temporary_files",
    "run_lock",
    "run_log",
    "spec_differences",
    "version_differences",
    "write_spec",
    "write_versions",
]

logger = logging.getLogger(__name__)

SPEC_FILE = "spec.yaml"
VERSIONS_FILE = "versions.json"
LOG_FILE = "train.log"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = "run.lock"
CHECKPOINT_DIR = "checkpoints"

# Distributions recorded in versions.json when installed; absent ones are left out.
_RECORDED_DISTRIBUTIONS = (
    "adaptlab",
    "torch",
    "torchvision",
    "numpy",
    "safetensors",
    "pydantic",
    "timm",
    "peft",
    "transformers",
    "trl",
    "torch-geometric",
    "ray",
)
_TEMPORARY_SUFFIX = ".tmp"


# --- atomic writes -----------------------------------------------------------------------


def _fsync_directory(directory: Path) -> None:
    """Persist a rename inside ``directory``; a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def format_count(count: int, singular: str, plural: str | None = None) -> str:
    """Return ``count`` with the noun in singular or plural form: ``1 epoch``, ``3 epochs``."""
    if count == 1:
        return f"{count} {singular}"
    return f"{count} {plural or singular + 's'}"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it to ``path``.

    The caller writes the whole file to the yielded path (a library's ``save_file`` works).
    The file gets the permissions that ``open()`` gives a new file, 0o666 minus the umask,
    even when the writer replaced the temporary file with one of its own mode (safetensors
    0.8 writes 0o600). If the block raises, the temporary file is removed and ``path`` is
    left untouched.
    """
    path = Path(path)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}{_TEMPORARY_SUFFIX}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        # The kernel applied the umask (and any default ACL) to 0o666 at creation.
        mode = os.fstat(descriptor).st_mode & 0o777
        os.close(descriptor)
        break
    try:
        yield temporary
        if os.stat(temporary).st_mode & 0o777 != mode:
            os.chmod(temporary, mode)
        with open(temporary, "rb+") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_directory(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temporary file, fsync, ``os.replace``)."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def atomic_write_json(path: Path, value: Any) -> None:
    """Replace ``path`` with ``value`` as indented JSON, atomically."""
    text = json.dumps(value, indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: Path) -> Any:
    """Read a JSON file; raise :class:`RunError` naming the file when it is unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"cannot read {path}: {error}") from None


def remove_temporary_files(directory: Path) -> list[Path]:
    """Delete temporary files that an interrupted atomic write left in ``directory``."""
    removed = []
    if not directory.is_dir():
        return removed
    for candidate in directory.glob(f".*{_TEMPORARY_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    if removed:
        logger.info(
            "removed %s left by an interrupted write in %s",
            format_count(len(removed), "temporary file"),
            directory,
        )
    return removed


# --- creation and the stored spec --------------------------------------------------------


def create_run_dir(output_dir: Path, base_name: str, now: datetime | None = None) -> Path:
    """Create and return ``output_dir/BASE-YYYYmmdd-HHMMSS``.

    ``mkdir`` without ``exist_ok`` claims the name, so two runs started in the same second
    (even by two processes) get distinct folders: the later one receives a ``-2``, ``-3``,
    ... suffix.
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(
            f"cannot create the output folder {output_dir}: {error}; set output_dir to a "
            "writable folder"
        ) from None
    for attempt in range(1, 1000):
        name = f"{base_name}-{stamp}" if attempt == 1 else f"{base_name}-{stamp}-{attempt}"
        candidate = output_dir / name
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RunError(f"cannot find a free run folder name {base_name}-{stamp}-N in {output_dir}")


def write_spec(run_dir: Path, spec_data: Mapping[str, Any]) -> None:
    """Store the resolved spec as ``spec.yaml``."""
    text = yaml.safe_dump(dict(spec_data), sort_keys=False, allow_unicode=True)
    atomic_write_bytes(run_dir / SPEC_FILE, text.encode("utf-8"))


def read_spec_data(run_dir: Path) -> dict[str, Any]:
    """Read ``spec.yaml`` of a run; raise :class:`RunError` when ``run_dir`` is no run folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(
            f"run folder not found: {run_dir}; pass a folder created by `adaptlab train`"
        )
    path = run_dir / SPEC_FILE
    if not path.is_file():
        raise RunError(
            f"{run_dir} is not a run folder: it has no {SPEC_FILE}; pass a folder created "
            "by `adaptlab train` (it holds spec.yaml, metrics.jsonl and checkpoints/)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise RunError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise RunError(f"{path} does not contain a spec mapping (found {type(data).__name__})")
    return data


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


_ABSENT = object()


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    return json.dumps(value, default=str)


def spec_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], ignore: tuple[str, ...] = ()
) -> list[str]:
    """Return one ``dotted.path: OLD -> NEW`` line per leaf that differs, sorted by path.

    Mappings are compared key by key; lists and scalars as whole values. Paths in ``ignore``
    and everything below them are skipped.
    """
    flat_old: dict[str, Any] = {}
    flat_new: dict[str, Any] = {}
    _flatten(old, "", flat_old)
    _flatten(new, "", flat_new)
    lines = []
    for path in sorted(set(flat_old) | set(flat_new)):
        if any(path == skip or path.startswith(skip + ".") for skip in ignore):
            continue
        before = flat_old.get(path, _ABSENT)
        after = flat_new.get(path, _ABSENT)
        if before != after:
            lines.append(f"{path}: {_show(before)} -> {_show(after)}")
    return lines


# --- versions ----------------------------------------------------------------------------


def collect_versions() -> dict[str, Any]:
    """Return the versions that decide whether a run repeats bitwise on this machine.

    Library versions come from installed distribution metadata, so nothing is imported
    except torch (already loaded by training) for the CUDA and cuDNN versions.
    """
    packages = {}
    for name in _RECORDED_DISTRIBUTIONS:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions: dict[str, Any] = {
        "python": sys.version.split()[0],
        "packages": packages,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        cuda: dict[str, Any] = {"available": bool(torch.cuda.is_available())}
        cuda["version"] = torch.version.cuda
        if cuda["available"]:
            cuda["devices"] = [
                torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())
            ]
            cuda["cudnn"] = torch.backends.cudnn.version()
        versions["cuda"] = cuda
        versions["torch_threads"] = torch.get_num_threads()
    return versions


def write_versions(run_dir: Path) -> dict[str, Any]:
    """Store :func:`collect_versions` as ``versions.json`` and return it."""
    versions = collect_versions()
    atomic_write_json(run_dir / VERSIONS_FILE, versions)
    return versions


def version_differences(run_dir: Path) -> list[str]:
    """Compare the stored ``versions.json`` with this process; one line per difference."""
    path = run_dir / VERSIONS_FILE
    if not path.is_file():
        return []
    try:
        stored = read_json(path)
    except RunError as error:
        logger.warning("%s", error)
        return []
    current = collect_versions()
    keys = ("python", "packages", "cuda.version", "cuda.devices", "torch_threads")
    lines = spec_differences(stored, current)
    return [line for line in lines if line.split(":")[0].startswith(keys)]


# --- metrics -----------------------------------------------------------------------------


class MetricsLog:
    """``metrics.jsonl``: one JSON object per completed epoch, each with an ``epoch`` key."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / METRICS_FILE

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one line and fsync it, so a crash loses at most the line being written."""
        line = json.dumps(dict(record)) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[dict[str, Any]]:
        """Return every well-formed line; a torn last line from a crash is skipped."""
        if not self.path.is_file():
            return []
        records = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("skipping malformed line %d of %s", number, self.path)
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def truncate_after(self, epoch: int) -> int:
        """Atomically drop the lines of epochs after ``epoch``; return how many were dropped."""
        if not self.path.is_file():
            return 0
        records = self.read()
        kept = [r for r in records if isinstance(r.get("epoch"), int) and r["epoch"] <= epoch]
        text = "".join(json.dumps(record) + "\n" for record in kept)
        atomic_write_bytes(self.path, text.encode("utf-8"))
        return len(records) - len(kept)


# --- log file and lock -------------------------------------------------------------------


@contextlib.contextmanager
def run_log(run_dir: Path, logger_name: str = "adaptlab") -> Iterator[Path]:
    """Copy INFO and higher records of ``logger_name`` into ``run_dir/train.log`` meanwhile.

    When the logger's effective level is above INFO, it is lowered to INFO for the duration
    so that the file receives the run's progress. Those records then also reach the handlers
    of the root logger. A caller that wants a quieter console therefore sets the level on its
    console handler, not on the root logger.
    """
    path = Path(run_dir) / LOG_FILE
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    target = logging.getLogger(logger_name)
    previous_level = target.level
    if target.getEffectiveLevel() > logging.INFO:
        target.setLevel(logging.INFO)
    target.addHandler(handler)
    try:
        yield path
    finally:
        target.removeHandler(handler)
        target.setLevel(previous_level)
        handler.close()


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        # os.kill(pid, 0) sends CTRL_C_EVENT on Windows, so there is no probe: assume alive.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run.lock`` so that two processes never train into one run folder at once.

    A lock left by a process that no longer exists on this host (a crash, SIGKILL) is taken
    over with a log line. A lock from another host cannot be checked and raises.
    """
    path = Path(run_dir) / LOCK_FILE
    host = socket.gethostname()
    owner = {"pid": os.getpid(), "host": host, "started": datetime.now().isoformat()}
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            _check_stale_lock(path, host)
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(owner, handle)
        break
    else:
        raise RunError(f"cannot acquire {path}; another process took it meanwhile")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _check_stale_lock(path: Path, host: str) -> None:
    """Remove a stale lock at ``path`` or raise :class:`RunError` when its owner may run."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        pid, holder_host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        holder, pid, holder_host = None, None, None
    if holder is not None and holder_host == host and _process_alive(pid):
        raise RunError(
            f"run folder {path.parent} is in use by process {pid} on this host; wait for it "
            "to finish or stop it before resuming"
        )
    if holder is not None and holder_host != host:
        raise RunError(
            f"run folder {path.parent} is locked by process {pid} on host {holder_host}; "
            f"if that run is no longer training, delete {path} and resume again"
        )
    logger.info("taking over stale lock %s (owner %s is not running)", path, holder)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

