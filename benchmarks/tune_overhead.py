"""Time trials run through ``adaptlab tune`` against the same trials run by ``api.train``.

The trials are a tiny digits model (a 1-block, 32-wide timm ViT at 8 px with peft LoRA on qkv
and fc1) at LoRA ranks 1, 2, 3, ... for ``--epochs`` epochs. First each spec trains in this
process, one after another, through ``adaptlab.core.training.api.train`` (after one untimed
warm-up run that pays the imports). Then the same specs run as one ``adaptlab tune``
experiment on a local Ray cluster with one trial at a time, and the wall time per trial is
compared. The Ray start is timed separately and left out of the ratio.

    python benchmarks/tune_overhead.py [--trials 4] [--epochs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from adaptlab.core.spec import validate_spec
from adaptlab.core.training import api
from adaptlab.registry import get_registry

__all__ = ["tiny_spec"]


def tiny_spec(output_dir: Path, epochs: int, **search: Any) -> dict[str, Any]:
    """Return spec data of the tiny digits model; ``search`` fills the search section."""
    data = {
        "seed": 0,
        "name": "bench",
        "output_dir": str(output_dir),
        "data": {"name": "digits", "image_size": 8, "channels": 1},
        "model": {
            "backbone": {"name": "timm", "model": "vit_tiny_patch16_224", "image_size": 8,
                         "in_chans": 1,
                         "model_kwargs": {"patch_size": 4, "depth": 1, "embed_dim": 32,
                                          "num_heads": 2}},
            "adapter": {"name": "lora", "r": 1, "target_modules": ["qkv", "fc1"],
                        "exclude_modules": ["patch_embed.proj"]},
            "heads": {"digit": {"name": "classification"}},
        },
        "train": {"recipe": "supervised", "epochs": epochs, "batch_size": 256,
                  "optimizer": {"name": "adamw", "lr": 3.0e-3}, "monitor": "digit/accuracy",
                  "progress": False},
    }
    if search:
        data["search"] = search
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4, help="Trials (LoRA ranks 1..N).")
    parser.add_argument("--epochs", type=int, default=2, help="Epochs per trial.")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().handlers[0].setLevel(logging.WARNING)  # runs raise adaptlab's to INFO
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
    ranks = list(range(1, arguments.trials + 1))
    registry = get_registry()

    with tempfile.TemporaryDirectory(prefix="adaptlab-bench-") as folder:
        root = Path(folder)
        api.train(validate_spec(tiny_spec(root / "warmup", 1), registry=registry),
                  registry=registry)
        started = time.perf_counter()
        for rank in ranks:
            data = tiny_spec(root / "direct", arguments.epochs)
            data["model"]["adapter"]["r"] = rank
            api.train(validate_spec(data, registry=registry), registry=registry)
        direct = (time.perf_counter() - started) / len(ranks)

        spec = root / "tune.yaml"
        search = {"space": {"model.adapter.r": {"grid": ranks}}, "num_samples": 1,
                  "max_concurrent_trials": 1}
        spec.write_text(yaml.safe_dump(tiny_spec(root / "tuned", arguments.epochs, **search)))
        from adaptlab.core.cli import main as cli_main
        from adaptlab.tuning.cluster import ray_session

        started = time.perf_counter()
        with ray_session(None):
            ray_start = time.perf_counter() - started
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()) as output:
                status = cli_main(["-q", "tune", str(spec)])
            tuned = (time.perf_counter() - started) / len(ranks)
        if status != 0:
            sys.stdout.write(output.getvalue())
            return status

    print(f"{len(ranks)} trials of {arguments.epochs} epochs, tiny digits ViT with LoRA "
          f"(ranks {ranks[0]}..{ranks[-1]}), {os.cpu_count()} CPUs")
    print(f"api.train in one process:  {direct:.2f} s per trial")
    print(f"adaptlab tune, 1 at a time: {tuned:.2f} s per trial (Ray start {ray_start:.1f} s, "
          "not included)")
    print(f"overhead ratio tune / direct: {tuned / direct:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
