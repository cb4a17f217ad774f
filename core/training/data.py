"""Seeding, determinism, device and precision choice, data loaders and batch transfer."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from adaptlab.core.errors import RunError

__all__ = [
    "Precision",
    "batch_size_of",
    "deterministic_algorithms",
    "make_loader",
    "move_to_device",
    "resolve_device",
    "resolve_precision",
    "seed_everything",
    "seed_worker",
]

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CUDA included) from ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """Seed Python and NumPy inside a DataLoader worker from the seed torch gave it.

    torch seeds each worker with ``base_seed + worker_id``, where the base seed comes from the
    loader's generator, so worker randomness repeats with the loader's seed.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Turn on deterministic torch algorithms meanwhile, restoring the previous settings.

    Operations without a deterministic implementation warn instead of raising
    (``warn_only=True``). On CUDA, cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` to be set before
    its first use for deterministic results; it is set here when missing.
    """
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_benchmark = torch.backends.cudnn.benchmark
    previous_cudnn = torch.backends.cudnn.deterministic
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
        torch.backends.cudnn.benchmark = previous_benchmark
        torch.backends.cudnn.deterministic = previous_cudnn


def resolve_device(choice: str) -> torch.device:
    """Map ``auto``/``cpu``/``cuda`` to a device; ``cuda`` without a GPU raises RunError."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RunError(
            "train.device is 'cuda' but no CUDA device is available; set train.device=cpu "
            "or train.device=auto"
        )
    return torch.device(choice)


@dataclass(frozen=True)
class Precision:
    """Autocast settings: ``dtype`` is ``None`` for fp32; ``scaled`` enables GradScaler."""

    name: str
    dtype: torch.dtype | None
    scaled: bool

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        """Return the autocast context of this precision on ``device``."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)


def resolve_precision(choice: str, device: torch.device) -> Precision:
    """Choose the autocast precision: fp32 on the CPU, ``choice`` on CUDA."""
    if device.type != "cuda":
        if choice in ("bf16", "fp16"):
            logger.info("precision %s applies to CUDA only; training in fp32 on %s", choice, device)
        return Precision("fp32", None, False)
    if choice == "auto":
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if choice == "fp32":
        return Precision("fp32", None, False)
    if choice == "bf16":
        if not torch.cuda.is_bf16_supported():
            raise RunError(
                f"train.precision is 'bf16', but {torch.cuda.get_device_name(device)} does not "
                "support bfloat16; set train.precision=fp16 or auto"
            )
        return Precision("bf16", torch.bfloat16, False)
    return Precision("fp16", torch.float16, True)


def make_loader(
    dataset: Any,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """Build a DataLoader whose order and worker seeds depend on ``seed`` alone.

    Passing a seeded ``torch.Generator`` keeps the loader from drawing on torch's global
    generator, so creating or iterating it leaves the global random state as it was.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        collate_fn=collate_fn,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        pin_memory=pin_memory,
        drop_last=False,
    )


def move_to_device(value: Any, device: torch.device) -> Any:
    """Move tensors, mappings and sequences of tensors, or objects with ``.to`` to ``device``.

    Objects with a ``to(device)`` method (a ``torch_geometric`` ``Batch``) are moved by it;
    anything else (strings, numbers) is returned unchanged.
    """
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {key: move_to_device(item, device) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(move_to_device(item, device) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(move_to_device(item, device) for item in value)
    mover = getattr(value, "to", None)
    if callable(mover):
        return mover(device)
    return value


def batch_size_of(targets: Any, inputs: Any) -> int:
    """Return the number of samples in a batch, read from its targets or inputs."""
    candidates = list(targets.values()) if isinstance(targets, Mapping) else [targets]
    candidates.append(inputs)
    for value in candidates:
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            return int(value.shape[0])
        graphs = getattr(value, "num_graphs", None)
        if isinstance(graphs, int):
            return graphs
        if isinstance(value, Mapping):
            for item in value.values():
                if isinstance(item, torch.Tensor) and item.ndim > 0:
                    return int(item.shape[0])
        if isinstance(value, (list, tuple)) and value:
            first = value[0]
            if isinstance(first, torch.Tensor) and first.ndim > 0:
                return int(first.shape[0])
            return len(value)
    return 1
