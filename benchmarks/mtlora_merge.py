"""Time inference of a merged MTLoRA Swin against the plain Swin backbone.

Three backbones of the same variant and image size run in evaluation mode without gradients.
The first is the plain ``swin`` backbone. The second is MTLoRA after ``merge()`` computing only
the shared features (task streams off), the path that merging makes as fast as the plain
model. The third is MTLoRA after ``merge()`` with the four task streams that feed the heads. The adapter weights are perturbed
first so that merging changes the weights. Calls alternate, ``--rounds`` each after a warm-up,
and median times are compared with the plain backbone.

Target: merged shared path / plain <= 1.02. The task streams add work that no merge removes
(each task's low-rank branches, LayerNorm, activation and patch merging in the last block of
every stage), so their ratio is reported without a target.

    python benchmarks/mtlora_merge.py [--variant swin_tiny_patch4_window7_224] [--image-size 224]
        [--batch 2] [--rank 16] [--rounds 7] [--device cpu] [--threads 0]
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import time

import torch

from adaptlab.plugins.mtlora.adapter import build_mtlora_adapter
from adaptlab.plugins.mtlora.backbone import SwinBackbone, build_swin_backbone
from adaptlab.plugins.mtlora.config import MTLoRAConfig, SwinBackboneConfig

TASKS = ("semseg", "human_parts", "saliency", "normals")
TARGET_RATIO = 1.02


def merged_backbone(plain: SwinBackbone, rank: int) -> SwinBackbone:
    adapter = build_mtlora_adapter(MTLoRAConfig(shared_rank=rank), TASKS)
    adapted = adapter.apply(copy.deepcopy(plain))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in adapted.named_parameters():
            if ".lora_b" in name or ".lora_task_b." in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    return adapter.merge(adapted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="swin_tiny_patch4_window7_224")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7, help="Timed calls per model.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default."
    )
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)

    torch.manual_seed(0)
    plain = build_swin_backbone(
        SwinBackboneConfig(variant=arguments.variant, image_size=arguments.image_size)
    )
    merged = merged_backbone(plain, arguments.rank)
    shared_only = copy.deepcopy(merged)
    shared_only.task_names = ()
    models = {"plain": plain, "merged shared path": shared_only, "merged with 4 task streams": merged}
    for model in models.values():
        model.to(device).eval()
    size = arguments.image_size
    images = torch.randn(arguments.batch, 3, size, size, device=device)

    def run(model: SwinBackbone) -> float:
        start = time.perf_counter()
        with torch.no_grad():
            model(images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for round_index in range(arguments.rounds + 1):
        order = names if round_index % 2 else names[::-1]
        for name in order:
            seconds = run(models[name])
            if round_index:
                times[name].append(seconds)

    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{arguments.variant} at {size} px, batch {arguments.batch}, shared rank "
          f"{arguments.rank}, device {device}, {torch.get_num_threads()} torch threads")
    for name in models:
        ratio = median[name] / median["plain"]
        print(f"{name:27s} {median[name] * 1000:8.1f} ms (median of {arguments.rounds}), "
              f"ratio to plain {ratio:.3f}")
    ratio = median["merged shared path"] / median["plain"]
    verdict = "ok" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"merged shared path / plain {ratio:.3f} (target <= {TARGET_RATIO}) {verdict}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
