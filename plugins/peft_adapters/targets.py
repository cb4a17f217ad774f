"""Resolving adapter target selections to the full names of a module's layers.

The rules mirror peft's own matching, and peft then receives an explicit list of full names.
A list entry matches a layer whose full name equals it or ends with ``"." + entry``. A single
string is a regular expression that must match the whole full name. ``"all-linear"`` selects
every ``nn.Linear`` (and transformers ``Conv1D``) layer. Resolving here, rather than in peft,
gives one error that lists the available layers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from torch import nn

from adaptlab.core.errors import ComponentBuildError
from adaptlab.plugins.peft_adapters.config import ALL_LINEAR, Targets

__all__ = ["available_layers", "match_names", "resolve_targets"]

# Layer types that at least one peft method can adapt; used only to list candidates.
_ADAPTABLE = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Embedding,
    nn.MultiheadAttention,
)
_SHOWN_LAYER_NAMES = 12


def _is_linear(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    # transformers' GPT-2 style Conv1D is a linear layer with a transposed weight.
    return type(module).__name__ == "Conv1D" and type(module).__module__.startswith(
        "transformers"
    )


def match_names(names: Iterable[str], selection: Targets, modules: dict[str, nn.Module]) -> list[str]:
    """Return the names among ``names`` that ``selection`` selects, in the given order."""
    if isinstance(selection, str):
        if selection == ALL_LINEAR:
            return [name for name in names if _is_linear(modules[name])]
        pattern = re.compile(selection)
        return [name for name in names if pattern.fullmatch(name)]
    suffixes = tuple("." + entry for entry in selection)
    exact_names = set(selection)
    return [name for name in names if name in exact_names or name.endswith(suffixes)]


def resolve_targets(
    module: nn.Module,
    targets: Targets,
    exclude: Targets | None = None,
    field: str = "target_modules",
) -> list[str]:
    """Return the full names of the layers selected by ``targets`` minus ``exclude``.

    Raises ``ComponentBuildError`` listing the available layer names when nothing remains.
    """
    modules = {name: child for name, child in module.named_modules() if name}
    names = list(modules)
    selected = match_names(names, targets, modules)
    excluded: set[str] = set(match_names(selected, exclude, modules)) if exclude else set()
    remaining = [name for name in selected if name not in excluded]
    if remaining:
        return remaining
    if selected:
        raise ComponentBuildError(
            f"{field}={targets!r} selects {len(selected)} layers but exclude_modules="
            f"{exclude!r} removes all of them; narrow exclude_modules"
        )
    raise ComponentBuildError(
        f"{field}={targets!r} matches no layer of {type(module).__name__}; "
        f"{available_layers(module)}. {_fix_hint(targets)}"
    )


def available_layers(module: nn.Module) -> str:
    """Describe the adaptable layers of ``module`` by leaf name with counts, and one full name."""
    counts: Counter[str] = Counter()
    example = ""
    for name, child in module.named_modules():
        if name and (isinstance(child, _ADAPTABLE) or _is_linear(child)):
            counts[name.rsplit(".", 1)[-1]] += 1
            example = example or name
    if not counts:
        return "it has no linear, convolution or embedding layers"
    shown = ", ".join(f"{leaf} ({count})" for leaf, count in counts.most_common(_SHOWN_LAYER_NAMES))
    if len(counts) > _SHOWN_LAYER_NAMES:
        shown += f", ... {len(counts) - _SHOWN_LAYER_NAMES} more names"
    total = sum(counts.values())
    return f"its {total} adaptable layers are named {shown}; full names look like {example!r}"


def _fix_hint(targets: Targets) -> str:
    if isinstance(targets, str) and targets != ALL_LINEAR:
        return (
            "A string is a regular expression that must match the whole dotted name; to "
            f"select layers by name use a list such as [{targets!r}], or use 'all-linear'"
        )
    return "Set target_modules to some of these names, a regular expression, or 'all-linear'"
