"""Exact trainable parameter counts of MTLoRA on Swin-T at 448 px against the reference.

MTLoRA (Agiza et al., CVPR 2024) reports 8,344,634 trainable parameters, decoders included,
for Swin-T with four PASCAL-Context tasks (semseg 21 classes, human parts 7, saliency 1,
normals 3), shared rank 64 and task rank 4. For shared ranks 16 and 32 it gives 4.95M and
6.08M. Building Swin-T at 448 px needs no forward pass.
"""

from __future__ import annotations

import pytest
from swin_testkit import PASCAL_TASKS, compose

from adaptlab.core.compose import parameter_groups
from adaptlab.plugins.mtlora.backbone import build_swin_backbone
from adaptlab.plugins.mtlora.config import MTLoRAConfig, SwinBackboneConfig

# Four tasks x (downsamplers 183,168 + 1x1 conv 270 -> 1080 with bias 292,680 + batch norm
# 2,160) + (1,080 + 1) x (21 + 7 + 1 + 3) output channels.
DECODERS = 4 * (183_168 + 292_680 + 2_160) + 1_081 * 32
# Patch embedding 4,896 (with its norm), block and merging LayerNorms 23,040, bias tables
# 23,322, patch-merging reductions 1,548,288.
OTHER = 1_599_546


@pytest.mark.parametrize(
    ("shared_rank", "adapters", "total"),
    [(16, 1_406_976, 4_953_146), (32, 2_537_472, 6_083_642), (64, 4_798_464, 8_344_634)],
)
def test_swin_t_448_trainable(shared_rank, adapters, total) -> None:
    backbone = build_swin_backbone(SwinBackboneConfig(image_size=448))
    model = compose(backbone, PASCAL_TASKS, MTLoRAConfig(shared_rank=shared_rank, task_rank=4))

    groups = parameter_groups(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == total
    assert groups["adapter"]["trainable"] == adapters
    assert groups["heads"]["trainable"] == DECODERS
    assert groups["other"]["trainable"] == OTHER
    assert groups["backbone"]["trainable"] == 0
