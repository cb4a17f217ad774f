"""Built-in recipe ``supervised``: the core training loop, registered as a plugin."""

from __future__ import annotations

from adaptlab.core.hookspecs import hookimpl
from adaptlab.core.training.config import SupervisedConfig

ADAPTLAB_HOOK_API = "1.0"


@hookimpl
def adaptlab_register_recipes(register) -> None:  # noqa: ANN001 - typed by the hookspec
    register(
        "supervised",
        config=SupervisedConfig,
        factory="adaptlab.core.training.recipe:SupervisedRecipe",
        summary="Single- and multi-task supervised training with weighted task losses.",
    )
