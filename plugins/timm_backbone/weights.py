"""Loading a local weights file into a timm model with key and shape checks.

Supported files: safetensors, and PyTorch state dicts (``.pth``, ``.pt``, ``.bin``) read with
``torch.load(weights_only=True)``, optionally wrapped under ``state_dict`` or ``model`` as
training checkpoints often are. Keys may carry the prefix ``module.`` (DistributedDataParallel)
or ``model.`` (a saved adaptlab backbone). Nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from adaptlab.core.errors import ComponentBuildError

__all__ = ["load_weights", "missing_weights_error", "read_state_dict"]

logger = logging.getLogger(__name__)

_KEY_PREFIXES = ("module.", "model.")
_WRAPPER_KEYS = ("state_dict", "model")
_SHOWN_KEYS = 3


def missing_weights_error(path: Path) -> ComponentBuildError:
    """Return the error for a weights file that does not exist."""
    return ComponentBuildError(
        f"weights file {str(path)!r} not found; set `weights` to an existing local "
        ".safetensors or .pth file (adaptlab never downloads weights)"
    )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path``; raise ``ComponentBuildError`` if it is unreadable."""
    if not path.is_file():
        raise missing_weights_error(path)
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as error:  # noqa: BLE001 - safetensors raises several unrelated types
            # safetensors' messages are short and name the problem (e.g. HeaderTooLarge).
            detail = f"{type(error).__name__} while loading it as a safetensors file: "
            raise _unreadable_error(path, detail + _summarize_error(error)) from error
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle, zip and EOF errors all mean "corrupt"
        # torch's message spans several lines of advice about weights_only=False, which
        # adaptlab never uses, so only the exception type is shown.
        detail = f"{type(error).__name__} while loading it as a torch state dict"
        raise _unreadable_error(path, detail) from error
    return _unwrap_checkpoint(loaded, path)


def _summarize_error(error: Exception, limit: int = 120) -> str:
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _unreadable_error(path: Path, detail: str) -> ComponentBuildError:
    """Return the one-line error for a weights file that its loader rejected."""
    return ComponentBuildError(
        f"weights file {str(path)!r} is not a readable checkpoint ({detail}); save the weights "
        "with safetensors.torch.save_file(state_dict, path) or "
        "torch.save(model.state_dict(), path), or point `weights` at another file"
    )


def _unwrap_checkpoint(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, Mapping) and not _all_tensors(loaded):
        for key in _WRAPPER_KEYS:
            inner = loaded.get(key)
            if isinstance(inner, Mapping) and _all_tensors(inner):
                logger.info("using the %r entry of checkpoint %s", key, path)
                loaded = inner
                break
    if not isinstance(loaded, Mapping) or not loaded or not _all_tensors(loaded):
        raise ComponentBuildError(
            f"weights file {str(path)!r} does not contain a state dict (a mapping of names to "
            "tensors); save one with torch.save(model.state_dict(), path)"
        )
    return dict(loaded)


def _all_tensors(mapping: Mapping) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in mapping.items())


def load_weights(model: nn.Module, path: Path, model_name: str) -> None:
    """Load the weights file at ``path`` into ``model`` (a timm model without classifier).

    Keys are matched after dropping a common ``module.`` or ``model.`` prefix and the keys of
    the classifier named in the model's ``pretrained_cfg``. When keys or shapes still differ,
    the architecture's own timm ``checkpoint_filter_fn`` (which converts original checkpoints
    and resizes position embeddings) is tried once. A remaining mismatch raises
    ``ComponentBuildError`` with the counts and a few names.
    """
    state = read_state_dict(path)
    expected = model.state_dict()
    state = _strip_prefix(state, expected)
    state = _drop_classifier(state, expected, model)

    problem = _describe_mismatch(state, expected)
    if problem:
        converted = _apply_timm_filter(state, model)
        if converted is not None and not _describe_mismatch(converted, expected):
            logger.info("converted %s with timm's checkpoint filter for %s", path, model_name)
            state = converted
            problem = ""
    if problem:
        raise ComponentBuildError(
            f"weights file {str(path)!r} does not match timm model {model_name!r}: {problem}; "
            "check that model, in_chans, image_size and model_kwargs are those of the model "
            "that saved the file"
        )
    model.load_state_dict(state, strict=True)
    logger.info("loaded %d tensors from %s into %s", len(state), path, model_name)


def _strip_prefix(
    state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Drop one leading ``module.``/``model.`` when that makes more keys match the model."""
    best, best_overlap = state, len(expected.keys() & state.keys())
    for prefix in _KEY_PREFIXES:
        if not all(key.startswith(prefix) for key in state):
            continue
        stripped = {key[len(prefix):]: value for key, value in state.items()}
        overlap = len(expected.keys() & stripped.keys())
        if overlap > best_overlap:
            best, best_overlap = stripped, overlap
    return best


def _drop_classifier(
    state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor], model: nn.Module
) -> dict[str, torch.Tensor]:
    config = getattr(model, "pretrained_cfg", None) or {}
    classifier = config.get("classifier")
    names = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    prefixes = tuple(f"{name}." for name in names)
    if not prefixes:
        return state
    dropped = [k for k in state if k.startswith(prefixes) and k not in expected]
    if dropped:
        logger.info("ignoring %d classifier tensors (%s) of the weights file", len(dropped),
                    ", ".join(dropped[:_SHOWN_KEYS]))
    return {k: v for k, v in state.items() if k not in dropped}


def _describe_mismatch(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> str:
    """Return a one-line description of key and shape differences, or ``""`` if none."""
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = sorted(
        key
        for key in expected.keys() & state.keys()
        if tuple(expected[key].shape) != tuple(state[key].shape)
    )
    parts = []
    if missing:
        count = _format_key_count(len(missing))
        parts.append(f"{count} missing from the file ({_examples(missing)})")
    if unexpected:
        count = _format_key_count(len(unexpected), "unexpected ")
        parts.append(f"{count} ({_examples(unexpected)})")
    if reshaped:
        shown = ", ".join(
            f"{key}: file {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
            for key in reshaped[:_SHOWN_KEYS]
        )
        more = f", ... {len(reshaped) - _SHOWN_KEYS} more" if len(reshaped) > _SHOWN_KEYS else ""
        parts.append(f"{_format_key_count(len(reshaped))} with a different shape ({shown}{more})")
    return ", ".join(parts)


def _format_key_count(count: int, adjective: str = "") -> str:
    return f"{count} {adjective}{'key' if count == 1 else 'keys'}"


def _examples(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN_KEYS])
    return shown + (", ..." if len(keys) > _SHOWN_KEYS else "")


def _apply_timm_filter(
    state: dict[str, torch.Tensor], model: nn.Module
) -> dict[str, torch.Tensor] | None:
    """Run the timm architecture's ``checkpoint_filter_fn``; ``None`` if absent or failing."""
    module = sys.modules.get(type(model).__module__)
    filter_fn = getattr(module, "checkpoint_filter_fn", None)
    if filter_fn is None:
        return None
    try:
        converted = filter_fn(dict(state), model)
    except Exception as error:  # noqa: BLE001 - any failure just means "cannot convert"
        logger.debug("timm checkpoint filter of %s failed: %s", module.__name__, error)
        return None
    return dict(converted) if isinstance(converted, Mapping) else None
