"""JSON Schema of the spec language and field tables of component configurations."""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic_core import PydanticUndefined

from adaptlab.registry import Component, Registry, get_registry
from adaptlab.core.spec._model import _SECTIONS, _Layout, _type_name
from adaptlab.core.spec._search import SearchSpec

__all__ = ["describe_fields", "spec_json_schema"]


def _tagged(component: Component, key: str) -> type[BaseModel]:
    """The component's configuration model with its discriminator field added."""
    return create_model(
        f"{component.kind}_{component.name}",
        __base__=component.config,
        __doc__=component.summary or component.config.__doc__,
        **{key: (Literal[component.name], Field(description=f"Selects {component.kind} "
                                                          f"{component.name!r}."))},
    )


def _union(registry: Registry, kind: str, key: str) -> Any:
    members = [_tagged(component, key) for component in registry.find(kind)]
    if not members:
        return dict[str, Any]
    if len(members) == 1:
        return members[0]
    return Annotated[Union[tuple(members)], Field(discriminator=key)]  # noqa: UP007


def spec_json_schema(registry: Registry | None = None) -> dict[str, Any]:
    """Return a JSON Schema describing every spec that the installed plugins accept."""
    registry = registry or get_registry()
    kinds = {path: (kind, key) for path, kind, key in _SECTIONS}

    def section(path: str) -> Any:
        kind, key = kinds[path]
        return _union(registry, kind, key)

    model_section = create_model(
        "ModelSection",
        __config__=ConfigDict(extra="forbid"),
        backbone=(section("model.backbone") | None, None),
        adapter=(section("model.adapter") | None, None),
        heads=(dict[str, _union(registry, "head", "name")] | None, None),
        policy=(section("model.policy") | None, None),
        graph_encoder=(section("model.graph_encoder") | None, None),
    )
    layout_fields = _Layout.model_fields
    spec_model = create_model(
        "AdaptlabSpec",
        __config__=ConfigDict(extra="forbid"),
        extends=(str | list[str] | None, Field(None, description="Spec files to compose, "
                                                                  "relative to this file.")),
        seed=(int, layout_fields["seed"]),
        name=(str | None, layout_fields["name"]),
        output_dir=(str, layout_fields["output_dir"]),
        # Optional here because a file may take them from the files it extends; the
        # validator still requires them in the composed spec.
        data=(section("data") | None, None),
        model=(model_section | None, None),
        train=(section("train") | None, None),
        search=(SearchSpec | None, Field(None, description="Search space for `adaptlab tune`.")),
    )
    schema = spec_model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "adaptlab spec"
    return schema


def describe_fields(config: type[BaseModel], prefix: str = "") -> list[dict[str, str]]:
    """Return one row per configuration field: name, type, default and description.

    Fields holding a nested configuration model are expanded into dotted rows
    (``optimizer.lr``), which is also how overrides address them.
    """
    rows = []
    for name, field in config.model_fields.items():
        nested = _nested_model(field.annotation)
        if field.default is not PydanticUndefined:
            default = "None" if field.default is None else repr(field.default)
        elif field.default_factory is not None:
            default = "" if nested else repr(field.default_factory())
        else:
            default = "required"
        if nested is not None and field.default is None:
            default = "None"

        type_name = _type_name(field.annotation)
        description = field.description or ""
        if nested is not None:
            # A section shows its model's name and, lacking a field description, the first line
            # of the model's docstring.
            type_name = nested.__name__ if default != "None" else f"{nested.__name__} | None"
            description = description or (nested.__doc__ or "").strip().split("\n")[0]
        rows.append(
            {"name": prefix + name, "type": type_name, "default": default, "description": description}
        )
        if nested is not None:
            rows += describe_fields(nested, prefix=f"{prefix}{name}.")
    return rows


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = typing.get_args(annotation) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
