"""Compare a training step of MTLoRA with a peft LoRA of the same rank on the same Swin.

Both models are the ``swin`` backbone with one ``hrnet`` head per task (the four PASCAL-Context
tasks: semseg 21 classes, human parts 7, saliency 1, normals 3). The MTLoRA side uses the
``mtlora`` adapter (shared rank R, task rank 4, and the reference's trained norms, patch
embedding, bias tables and reductions). The baseline uses the peft ``lora`` adapter with rank
R and the same dropout on the same layers (qkv, proj, fc1, fc2 of every block). Each step is forward, the summed task
losses, backward and an AdamW step on random images and targets. The two alternate,
``--rounds`` steps each after one warm-up step, and the median step time is compared.

Memory: on CUDA the peak of ``torch.cuda.max_memory_allocated`` during a step. torch's CPU
allocator has no peak counter, so on CPU the script adds the bytes of the distinct tensors that
autograd saves for backward in the forward pass (activations and the weights they multiply) to
the parameters, gradients and AdamW state of the trainable parameters. This estimate leaves
out temporaries.

    python benchmarks/mtlora_step.py [--variant swin_tiny_patch4_window7_224] [--image-size 224]
        [--batch 2] [--rank 16] [--dropout 0.05] [--rounds 5] [--device cpu] [--threads 0]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from adaptlab.core.compose import ComposedModel
from adaptlab.core.contracts import TaskInfo
from adaptlab.plugins.mtlora.adapter import build_mtlora_adapter
from adaptlab.plugins.mtlora.backbone import build_swin_backbone
from adaptlab.plugins.mtlora.config import (
    PEFT_BASELINE_TARGETS,
    HRNetHeadConfig,
    MTLoRAConfig,
    SwinBackboneConfig,
)
from adaptlab.plugins.mtlora.heads import build_hrnet_head
from adaptlab.registry import get_registry

TASKS = {
    "semseg": TaskInfo("semseg", "segmentation", num_classes=21),
    "human_parts": TaskInfo("human_parts", "segmentation", num_classes=7),
    "saliency": TaskInfo("saliency", "saliency"),
    "normals": TaskInfo("normals", "normals"),
}


def build(kind: str, arguments: argparse.Namespace) -> ComposedModel:
    """Return the MTLoRA (``kind == "mtlora"``) or peft LoRA model with four hrnet heads."""
    torch.manual_seed(0)
    backbone = build_swin_backbone(
        SwinBackboneConfig(variant=arguments.variant, image_size=arguments.image_size)
    )
    if kind == "mtlora":
        config = MTLoRAConfig(shared_rank=arguments.rank, dropout=arguments.dropout)
        adapter = build_mtlora_adapter(config, tuple(TASKS))
    else:
        component = get_registry().get("adapter", "lora")
        config = component.config.model_validate(
            {
                "r": arguments.rank,
                "alpha": 4.0 * arguments.rank,
                "dropout": arguments.dropout,
                "target_modules": PEFT_BASELINE_TARGETS,
            }
        )
        adapter = component.build(config)
    backbone = adapter.apply(backbone)
    heads = {
        name: build_hrnet_head(HRNetHeadConfig(), task, backbone.out_features, backbone.feature_channels)
        for name, task in TASKS.items()
    }
    return ComposedModel(backbone, heads, dict.fromkeys(TASKS, 1.0), adapter=adapter)


def make_batch(arguments: argparse.Namespace, device: torch.device):
    size, batch = arguments.image_size, arguments.batch
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator)
    targets = {
        "semseg": torch.randint(0, 21, (batch, size, size), generator=generator),
        "human_parts": torch.randint(0, 7, (batch, size, size), generator=generator),
        "saliency": (torch.rand(batch, 1, size, size, generator=generator) > 0.5).float(),
        "normals": nn.functional.normalize(torch.randn(batch, 3, size, size, generator=generator), dim=1),
    }
    return images.to(device), {task: target.to(device) for task, target in targets.items()}


def make_step(model: ComposedModel, batch, device: torch.device) -> Callable[[], None]:
    images, targets = batch
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    model.to(device).train()

    def step() -> None:
        outputs = model(images)
        loss = sum(model.heads[t].loss(outputs[t], targets[t]) * model.loss_weights[t] for t in TASKS)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def cpu_memory_estimate(model: ComposedModel, images: torch.Tensor) -> int:
    """Return saved-for-backward bytes of one forward plus trainable state (see module docstring)."""
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        outputs = model(images)
    del outputs
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    # Parameters, gradients and the two AdamW moments.
    return sum(seen.values()) + 4 * trainable


def peak_memory(step: Callable[[], None], model: ComposedModel, images, device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        step()
        return torch.cuda.max_memory_allocated(device)
    return cpu_memory_estimate(model, images)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="swin_tiny_patch4_window7_224")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rank", type=int, default=16, help="Shared rank of MTLoRA and r of LoRA.")
    parser.add_argument(
        "--dropout", type=float, default=0.05, help="Adapter dropout of both (0.05 in the reference)."
    )
    parser.add_argument("--rounds", type=int, default=5, help="Timed steps per model.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default."
    )
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)

    batch = make_batch(arguments, device)
    models = {kind: build(kind, arguments) for kind in ("mtlora", "lora")}
    steps = {kind: make_step(model, batch, device) for kind, model in models.items()}
    trainable = {
        kind: sum(p.numel() for p in model.parameters() if p.requires_grad)
        for kind, model in models.items()
    }
    memory = {kind: peak_memory(steps[kind], models[kind], batch[0], device) for kind in models}

    times: dict[str, list[float]] = {kind: [] for kind in models}
    # Round 0 warms both up; the order alternates so that a drift in machine speed does not
    # favour one side.
    for round_index in range(arguments.rounds + 1):
        order = ("mtlora", "lora") if round_index % 2 else ("lora", "mtlora")
        for kind in order:
            start = time.perf_counter()
            steps[kind]()
            if round_index:
                times[kind].append(time.perf_counter() - start)

    median = {kind: statistics.median(values) for kind, values in times.items()}
    memory_kind = "peak allocated" if device.type == "cuda" else "estimated (saved activations + trainable state)"
    print(f"{arguments.variant} at {arguments.image_size} px, batch {arguments.batch}, rank "
          f"{arguments.rank}, 4 tasks, device {device}, {torch.get_num_threads()} torch threads")
    for kind in models:
        print(f"{kind:7s} {median[kind] * 1000:8.1f} ms per step, {memory[kind] / 2**20:8.1f} MiB "
              f"{memory_kind}, {trainable[kind]:,} trainable parameters")
    print(f"ratio mtlora / lora: time {median['mtlora'] / median['lora']:.3f}, memory "
          f"{memory['mtlora'] / memory['lora']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
