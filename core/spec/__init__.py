"""Spec files: loading, composition, overrides, validation and schema."""

from __future__ import annotations

from adaptlab.core.spec._files import apply_overrides, load_spec_data, merge, parse_override
from adaptlab.core.spec._model import ComponentRef, ModelSpec, Spec, load_spec, validate_spec

__all__ = [
    "ComponentRef",
    "ModelSpec",
    "Spec",
    "apply_overrides",
    "load_spec",
    "load_spec_data",
    "merge",
    "parse_override",
    "validate_spec",
]
