"""Test-only plugin and helpers for the tuning tests.

Recipe ``flaky``: the supervised recipe's real trainer, but after every epoch from
``fail_epoch`` on it raises until it has raised ``failures`` times. The count is kept as files
in the run folder, so it survives the restart of a trial from its checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from adaptlab.core import hookimpl
from adaptlab.core.cli import _parser, _split_spec_arguments
from adaptlab.core.errors import AdaptlabError
from adaptlab.core.training.config import SupervisedConfig
from adaptlab.registry import PluginSelection, Registry, load_registry

ADAPTLAB_HOOK_API = "1.0"

BUILTIN = ["timm", "peft", "vision", "supervised", "tuning"]


class FlakyConfig(SupervisedConfig):
    failures: int = Field(0, ge=0, description="Failures to inject before epochs pass.")
    fail_epoch: int = Field(2, ge=1, description="First epoch after which a failure is injected.")


class FlakyRecipe:
    def __init__(self, config: FlakyConfig) -> None:
        self.config = config

    def run(self, context: Any) -> dict[str, Any]:
        from adaptlab.core.training.recipe import Trainer

        config = self.config
        marks = Path(context.run_dir) / "injected-failures"
        forward = context.on_epoch_end

        def on_epoch_end(epoch: int, metrics: dict, checkpoint: Path | None) -> None:
            if forward is not None:
                forward(epoch, metrics, checkpoint)
            done = len(list(marks.glob("*"))) if marks.is_dir() else 0
            if epoch >= config.fail_epoch and done < config.failures:
                marks.mkdir(exist_ok=True)
                (marks / str(done + 1)).touch()
                raise RuntimeError(f"injected failure {done + 1} after epoch {epoch}")

        trainer = Trainer(config, context.spec, Path(context.run_dir), context.registry,
                          on_epoch_end=on_epoch_end)
        return trainer.fit(resume=context.resume)


@hookimpl
def adaptlab_register_recipes(register) -> None:  # noqa: ANN001
    register("flaky", config=FlakyConfig, factory=FlakyRecipe,
             summary="Supervised training that raises after chosen epochs (tests only).")


def load_test_registry() -> Registry:
    import tuning_testkit

    return load_registry(
        PluginSelection(autoload=False, only=list(BUILTIN)),
        extra_plugins={"flaky": tuning_testkit},
    )


def tiny_digits(output_dir: Path, **search: Any) -> dict[str, Any]:
    """Return spec data of a 1-block, 32-wide ViT with LoRA on 8 px digits (0.1 s an epoch)."""
    return {
        "seed": 0,
        "name": "tiny",
        "output_dir": str(output_dir),
        "data": {"name": "digits", "image_size": 8, "channels": 1},
        "model": {
            "backbone": {
                "name": "timm",
                "model": "vit_tiny_patch16_224",
                "image_size": 8,
                "in_chans": 1,
                "model_kwargs": {"patch_size": 4, "depth": 1, "embed_dim": 32, "num_heads": 2},
            },
            "adapter": {"name": "lora", "r": 2, "target_modules": ["qkv", "fc1"],
                        "exclude_modules": ["patch_embed.proj"]},
            "heads": {"digit": {"name": "classification"}},
        },
        "train": {
            "recipe": "supervised",
            "epochs": 2,
            "batch_size": 256,
            "optimizer": {"name": "adamw", "lr": 3.0e-3},
            "monitor": "digit/accuracy",
            "progress": False,
        },
        "search": search,
    }


def write_spec(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_tune(argv: list[str], registry: Registry) -> int:
    """Run ``adaptlab tune ARGV`` with ``registry``; return the exit status like the CLI."""
    import sys

    arguments: argparse.Namespace = _parser(registry.commands).parse_args(["tune", *argv])
    arguments._registry = registry
    try:
        _split_spec_arguments(arguments)
        return int(registry.commands["tune"].load_run()(arguments))
    except AdaptlabError as error:
        sys.stderr.write(f"error: {error}\n")
        return error.exit_code
