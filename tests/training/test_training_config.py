"""The supervised recipe's configuration: values that torch would reject only at train time."""

from __future__ import annotations

import pytest
import torch

from adaptlab.core.errors import SpecError
from adaptlab.core.training.config import OptimizerConfig


@pytest.mark.parametrize("betas", [[2, 3], [0.9, 1.0], [-0.1, 0.999], [0.9, float("nan")]])
def test_optimizer_betas_outside_range(make_spec, betas):
    with pytest.raises(SpecError) as caught:
        make_spec(train={"optimizer": {"betas": betas}})

    message = str(caught.value)
    assert "train.optimizer.betas: each beta must be in [0, 1)" in message
    assert "the usual values are [0.9, 0.999]" in message
    assert "Traceback" not in message


def test_optimizer_betas_edges_accepted():
    config = OptimizerConfig(betas=(0.0, 0.999999))

    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], betas=config.betas)

    assert optimizer.param_groups[0]["betas"] == (0.0, 0.999999)


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ({"optimizer": {"lr": float("inf")}}, "train.optimizer.lr: Input should be a finite"),
        ({"optimizer": {"weight_decay": float("inf")}}, "train.optimizer.weight_decay: Input"),
        ({"scheduler": {"min_lr": float("nan")}}, "train.scheduler.min_lr: Input should be"),
        (
            {"optimizer": {"nesterov": True}},
            "train.optimizer.nesterov: nesterov needs name 'sgd' and a momentum above 0 "
            "(name is 'adamw', momentum 0.9)",
        ),
        (
            {"scheduler": {"name": "cosine", "min_lr": 0.5}},
            "train.scheduler: min_lr (0.5) is above optimizer.lr (0.01)",
        ),
        ({"monitor": "accuracy"}, "train.monitor: monitor must be 'loss' or 'TASK/METRIC'"),
    ],
)
def test_config_errors_name_the_field(make_spec, train, expected):
    with pytest.raises(SpecError) as caught:
        make_spec(train=train)

    assert expected in str(caught.value)
    assert "Value error" not in str(caught.value)
