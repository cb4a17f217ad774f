"""Ray Tune objects built from search sections, and cluster addresses, without starting Ray."""

from __future__ import annotations

import pytest
import tuning_testkit

from adaptlab.core.errors import RunError, SpecError
from adaptlab.core.spec import validate_spec
from adaptlab.tuning.cluster import _host_port, resolve_address
from adaptlab.tuning.runner import Objective, build_search
from adaptlab.tuning.space import dimensions


def built(registry, tmp_path, objective=("digit/accuracy",), modes=("max",), **search):
    data = tuning_testkit.tiny_digits(tmp_path / "runs", **search)
    spec = validate_spec(data, registry=registry).search
    return build_search(spec, dimensions(spec), Objective(objective, modes), epochs=5)


def test_asha_defaults_to_train_epochs(registry, tmp_path):
    _, search_alg, scheduler = built(
        registry, tmp_path, space={"model.adapter.r": {"choice": [1, 2]}},
        scheduler={"name": "asha", "grace_period": 2, "reduction_factor": 2},
    )

    assert search_alg is None
    assert type(scheduler).__name__ == "AsyncHyperBandScheduler"
    assert scheduler._max_t == 5
    assert scheduler._time_attr == "training_iteration"


def test_optuna_multi_objective(registry, tmp_path):
    _, search_alg, scheduler = built(
        registry, tmp_path,
        objective=("digit/accuracy", "parameters/trainable"), modes=("max", "min"),
        space={"model.adapter.r": {"choice": [1, 2]}},
        metric=["digit/accuracy", "parameters/trainable"], mode=["max", "min"],
        search_alg={"name": "optuna"},
    )

    assert type(search_alg).__name__ == "OptunaSearch"
    assert search_alg.metric == ["digit/accuracy", "parameters/trainable"]
    assert search_alg.mode == ["max", "min"]
    assert scheduler is None


def test_optuna_rejects_grid_dimension(registry, tmp_path):
    with pytest.raises(SpecError, match="search.space.model.adapter.r: Optuna samples every"):
        built(registry, tmp_path, space={"model.adapter.r": {"grid": [1, 2]}},
              search_alg={"name": "optuna"})


def test_pbt_rejects_architecture_path(registry, tmp_path):
    with pytest.raises(SpecError, match="search.space.model.adapter.r: scheduler pbt can only"):
        built(registry, tmp_path, space={"model.adapter.r": {"choice": [1, 2]}},
              scheduler={"name": "pbt"})


def test_pbt_perturbs_loss_weight(registry, tmp_path):
    space, _, scheduler = built(
        registry, tmp_path, space={"model.heads.digit.loss_weight": {"uniform": [0.5, 2.0]}},
        scheduler={"name": "pbt", "perturbation_interval": 2},
    )

    assert type(scheduler).__name__ == "PopulationBasedTraining"
    assert list(scheduler._hyperparam_mutations) == ["model.heads.digit.loss_weight"]
    assert scheduler._perturbation_interval == 2
    assert list(space) == ["model.heads.digit.loss_weight"]


def test_component_choice_encoded_as_indices(registry, tmp_path):
    space, _, _ = built(registry, tmp_path, space={
        "model.adapter": {"choice": [{"name": "lora", "r": 4}, {"name": "ia3"}]},
        "model.adapter.r": {"choice": [1, 2]},
    })

    assert space["model.adapter"].categories == [0, 1]
    assert space["model.adapter.r"].categories == [1, 2]


def test_address_option_wins(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:6379")

    assert resolve_address("10.0.0.1:6379", "10.0.0.3:6379") == "10.0.0.1:6379"
    assert resolve_address(None, "10.0.0.3:6379") == "10.0.0.2:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    assert resolve_address(None, "10.0.0.3:6379") == "10.0.0.3:6379"
    assert resolve_address(None, None) is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.5", ("10.0.0.5", 6379)),
        ("head:6380", ("head", 6380)),
        ("ray://head", ("head", 10001)),
        ("[::1]:7000", ("::1", 7000)),
        ("auto", None),
    ],
)
def test_address_host_and_port(address, expected):
    assert _host_port(address) == expected


def test_address_invalid_port():
    with pytest.raises(RunError, match="the port must be a number from 1 to 65535"):
        _host_port("head:99999")
