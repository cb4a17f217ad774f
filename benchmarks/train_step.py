"""Time a training step through adaptlab against a plain PyTorch loop on the same model.

Both loops train the model that ``examples/digits/lora.yaml`` composes (a timm ViT with peft
LoRA adapters and a classification head) on the same DataLoader batches, with AdamW, the
cosine schedule and gradient clipping of the spec. The adaptlab side is one epoch of the
``supervised`` recipe's loop; the baseline is the same arithmetic written by hand. The two
alternate, ``--rounds`` times each, and the median time per optimizer step is compared.

Target: adaptlab / plain <= 1.05.

    python benchmarks/train_step.py [--rounds 4] [--batches 12]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from adaptlab.core.spec import load_spec
from adaptlab.core.training.config import SupervisedConfig
from adaptlab.core.training.data import make_loader
from adaptlab.core.training.optim import build_optimizer, build_scheduler
from adaptlab.core.training.progress import EpochProgress
from adaptlab.core.training.recipe import Trainer

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "digits" / "lora.yaml"
TARGET_RATIO = 1.05


class _FirstBatches(torch.utils.data.Dataset):
    """The first ``count`` items of a dataset, so an epoch is short and equal for both."""

    def __init__(self, dataset: torch.utils.data.Dataset, count: int) -> None:
        self.dataset, self.count = dataset, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        return self.dataset[index]


def plain_epoch(model, loader, optimizer, scheduler, clip: float, task: str) -> int:
    """Train one epoch by hand: forward, cross-entropy, backward, clip, step; return the steps."""
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    steps = 0
    for images, targets in loader:
        logits = model.heads[task](model.backbone(images))
        loss = torch.nn.functional.cross_entropy(logits, targets[task])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        steps += 1
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="Timed epochs per loop.")
    parser.add_argument("--batches", type=int, default=12, help="Batches per timed epoch.")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as folder:
        spec = load_spec(SPEC, [f"output_dir={folder}", "train.progress=false"])
        config: SupervisedConfig = spec.train.config
        trainer = Trainer(config, spec, Path(folder) / "run")
        trainer._setup()
        task = next(iter(spec.model.heads))
        subset = _FirstBatches(trainer.bundle.splits["train"], arguments.batches * config.batch_size)
        trainer.train_split = subset
        model = trainer.model

        optimizer = build_optimizer(model, config.optimizer)
        scheduler = build_scheduler(optimizer, config.scheduler, arguments.batches, 1000)
        adaptlab_times, plain_times = [], []
        progress = EpochProgress(False)
        def time_adaptlab(round_index: int) -> float:
            start = time.perf_counter()
            trainer._train_epoch(round_index + 1, progress)
            return (time.perf_counter() - start) / arguments.batches

        def time_plain(round_index: int) -> float:
            loader = make_loader(subset, config.batch_size, shuffle=True, seed=round_index)
            start = time.perf_counter()
            steps = plain_epoch(model, loader, optimizer, scheduler, config.grad_clip, task)
            return (time.perf_counter() - start) / steps

        # Round 0 warms both up. The order alternates so that a drift in machine speed
        # (another process, thermal state) does not favour one side.
        for round_index in range(arguments.rounds + 1):
            if round_index % 2:
                plain_seconds = time_plain(round_index)
                adaptlab_seconds = time_adaptlab(round_index)
            else:
                adaptlab_seconds = time_adaptlab(round_index)
                plain_seconds = time_plain(round_index)
            if round_index:
                adaptlab_times.append(adaptlab_seconds)
                plain_times.append(plain_seconds)

    adaptlab_step = statistics.median(adaptlab_times)
    plain_step = statistics.median(plain_times)
    ratio = adaptlab_step / plain_step
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"model: {SPEC.relative_to(ROOT)}, batch {config.batch_size}, "
          f"{arguments.batches} steps per epoch, {torch.get_num_threads()} torch threads")
    print(f"plain PyTorch loop: {plain_step * 1000:.1f} ms per step (median of "
          f"{arguments.rounds})")
    print(f"adaptlab loop:      {adaptlab_step * 1000:.1f} ms per step")
    print(f"ratio {ratio:.3f} (target <= {TARGET_RATIO}) {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
