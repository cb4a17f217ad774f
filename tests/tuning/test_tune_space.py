"""Search sections without Ray: validation, sampling per distribution, trial specs, dry runs."""

from __future__ import annotations

import math
import socket

import pytest
import tuning_testkit

from adaptlab.core.cli import main
from adaptlab.core.errors import SpecError
from adaptlab.core.spec import validate_spec
from adaptlab.tuning.space import dimensions, sample_values, trial_data, trial_spec


def search_spec(registry, tmp_path, **search):
    data = tuning_testkit.tiny_digits(tmp_path / "runs", **search)
    return validate_spec(data, registry=registry)


def problems_of(registry, tmp_path, **search) -> list[str]:
    with pytest.raises(SpecError) as caught:
        search_spec(registry, tmp_path, **search)
    return caught.value.problems


def test_search_section_kept_in_spec(registry, tmp_path):
    spec = search_spec(registry, tmp_path, space={"model.adapter.r": {"choice": [2, 4]}})

    assert spec.search.space["model.adapter.r"].choice == [2, 4]
    assert spec.to_data()["search"]["space"] == {"model.adapter.r": {"choice": [2, 4]}}
    assert validate_spec(spec.to_data(), registry=registry).search == spec.search


def test_unknown_path_suggests_field(registry, tmp_path):
    problems = problems_of(registry, tmp_path, space={"model.adapter.rank": {"choice": [2]}})

    assert len(problems) == 1
    assert problems[0].startswith("search.space.model.adapter.rank: no such field in the spec")
    assert "did you mean 'model.adapter.r'" in problems[0]


def test_output_dir_not_searchable(registry, tmp_path):
    problems = problems_of(registry, tmp_path, space={"output_dir": {"choice": ["a", "b"]}})

    assert problems == [
        "search.space.output_dir: this path cannot be searched; search the seed or a field "
        "of data, model or train"
    ]


@pytest.mark.parametrize(
    ("distribution", "message"),
    [
        ({"uniform": [0.5, 0.5]}, "low must be below high (found low 0.5, high 0.5)"),
        ({"loguniform": [0.0, 0.1]}, "low must be positive for a log-uniform range"),
        ({"randint": [4, 2]}, "low must be below high (found low 4, high 2)"),
        ({"quniform": [0.0, 1.0, 0.0]}, "the step q must be positive (found 0.0)"),
        ({"qrandint": [0, 8, 16]}, "the step q (16) must not exceed high - low (8)"),
        ({"choice": []}, "List should have at least 1 item"),
        ({"grid": []}, "List should have at least 1 item"),
    ],
)
def test_invalid_bounds_name_path(registry, tmp_path, distribution, message):
    problems = problems_of(registry, tmp_path, space={"train.optimizer.lr": distribution})

    assert len(problems) == 1
    assert problems[0].startswith("search.space.train.optimizer.lr: ")
    assert message in problems[0]


def test_misspelt_distribution_suggested(registry, tmp_path):
    problems = problems_of(registry, tmp_path, space={"train.optimizer.lr": {"unifrom": [0, 1]}})

    assert problems[0].startswith("search.space.train.optimizer.lr: unknown distribution")
    assert "did you mean 'uniform'" in problems[0]


def test_several_metrics_need_optuna(registry, tmp_path):
    problems = problems_of(
        registry, tmp_path, space={"model.adapter.r": {"choice": [2]}},
        metric=["digit/accuracy", "parameters/trainable"], mode=["max", "min"],
    )

    assert "several metrics need search_alg {name: optuna}" in problems[0]


def test_nested_space_read_as_paths(registry, tmp_path):
    spec = search_spec(registry, tmp_path, space={"train": {"epochs": {"choice": [1, 3]}}})

    assert list(spec.search.space) == ["train.epochs"]


def test_null_removes_dimension(registry, tmp_path):
    spec = search_spec(
        registry, tmp_path,
        space={"model.adapter.r": None, "train.optimizer.lr": {"uniform": [0.1, 0.2]}},
    )

    assert list(spec.search.space) == ["train.optimizer.lr"]


def sampled(registry, tmp_path, distribution, count=200, **options):
    spec = search_spec(registry, tmp_path, space={"train.optimizer.lr": distribution}, **options)
    return [values["train.optimizer.lr"] for values in
            sample_values(dimensions(spec.search), count, seed=0,
                          grid_all=spec.search.search_alg.name == "grid")]


def test_uniform_samples_within_bounds(registry, tmp_path):
    values = sampled(registry, tmp_path, {"uniform": [0.2, 0.4]})

    assert all(0.2 <= v <= 0.4 for v in values)
    assert max(values) - min(values) > 0.15  # spread over the range, not constant


def test_loguniform_samples_spread_by_decade(registry, tmp_path):
    values = sampled(registry, tmp_path, {"loguniform": [1e-4, 1e-2]})

    assert all(1e-4 <= v <= 1e-2 for v in values)
    below = sum(v < 1e-3 for v in values)
    assert 60 <= below <= 140  # half the draws fall in the lower decade


def test_randint_includes_both_ends(registry, tmp_path):
    values = sampled(registry, tmp_path, {"randint": [2, 4]})

    assert set(values) == {2, 3, 4}
    assert all(isinstance(v, int) for v in values)


def test_quniform_respects_step(registry, tmp_path):
    values = sampled(registry, tmp_path, {"quniform": [0.0, 1.0, 0.25]})

    assert set(values) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert all(math.isclose(v / 0.25, round(v / 0.25)) for v in values)
    assert len(set(values)) >= 4


def test_qrandint_respects_step(registry, tmp_path):
    values = sampled(registry, tmp_path, {"qrandint": [8, 32, 8]})

    assert set(values) == {8, 16, 24, 32}


def test_choice_samples_listed_values(registry, tmp_path):
    values = sampled(registry, tmp_path, {"choice": [0.1, 0.2, 0.3]})

    assert set(values) == {0.1, 0.2, 0.3}


def test_grid_exhaustive_per_sample(registry, tmp_path):
    values = sampled(registry, tmp_path, {"grid": [0.1, 0.2, 0.3]}, count=2)

    assert values == [0.1, 0.2, 0.3, 0.1, 0.2, 0.3]


def test_grid_search_enumerates_every_combination(registry, tmp_path):
    spec = search_spec(
        registry, tmp_path,
        space={"model.adapter.r": {"randint": [1, 3]}, "train.optimizer.name": {"choice": ["adamw", "sgd"]}},
        search_alg={"name": "grid"},
    )

    combos = sample_values(dimensions(spec.search), 1, seed=0, grid_all=True)

    pairs = {(c["model.adapter.r"], c["train.optimizer.name"]) for c in combos}
    assert len(combos) == 6
    assert pairs == {(r, name) for r in (1, 2, 3) for name in ("adamw", "sgd")}


def test_grid_search_rejects_uniform(registry, tmp_path):
    spec = search_spec(registry, tmp_path, space={"train.optimizer.lr": {"uniform": [0.1, 0.2]}},
                       search_alg={"name": "grid"})

    with pytest.raises(SpecError, match="search_alg grid cannot enumerate a uniform range"):
        sample_values(dimensions(spec.search), 1, seed=0, grid_all=True)


def test_component_choice_replaces_section(registry, tmp_path):
    base = tuning_testkit.tiny_digits(tmp_path / "runs")

    ia3 = trial_data(base, {"model.adapter": {"name": "ia3", "target_modules": ["qkv"]}})
    lora = trial_data(base, {"model.adapter": {"name": "lora", "r": 8}})

    assert ia3["model"]["adapter"] == {"name": "ia3", "target_modules": ["qkv"]}
    assert lora["model"]["adapter"]["r"] == 8
    assert lora["model"]["adapter"]["target_modules"] == ["qkv", "fc1"]
    assert "search" not in lora


def test_component_choice_then_field(registry, tmp_path):
    base = tuning_testkit.tiny_digits(tmp_path / "runs")

    spec = trial_spec(base, {"model.adapter.r": 16, "model.adapter": {"name": "dora", "r": 4}},
                      registry)

    assert spec.model.adapter.name == "dora"
    assert spec.model.adapter.config.r == 16  # the deeper path is set after the section


def test_invalid_trial_names_values(registry, tmp_path):
    base = tuning_testkit.tiny_digits(tmp_path / "runs")

    with pytest.raises(SpecError) as caught:
        trial_spec(base, {"model.adapter.r": 0}, registry)

    assert caught.value.problems[0].startswith("trial (model.adapter.r=0): model.adapter.r: ")


def test_dry_run_reports_invalid_choice(registry, tmp_path, capsys):
    spec = tuning_testkit.write_spec(tmp_path / "tune.yaml", tuning_testkit.tiny_digits(
        tmp_path / "runs",
        space={"model.adapter": {"choice": [{"name": "lora", "r": 4}, {"name": "lora", "r": 0}]},
               "train.optimizer.lr": {"loguniform": [1e-3, 1e-2]}},
    ))

    status = tuning_testkit.run_tune([str(spec), "--dry-run", "--samples", "6"], registry)

    output = capsys.readouterr().out
    invalid = [line for line in output.splitlines() if "invalid:" in line]
    assert status == 2
    assert invalid
    assert all("{name: lora, r: 0}" in line for line in invalid)
    assert all("model.adapter.r: Input should be greater than 0 (found 0)" in line for line in invalid)
    assert f"{len(invalid)} of 6 sampled trial specs are invalid" in output
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_dry_run_checks_unsampled_values(registry, tmp_path, capsys):
    spec = tuning_testkit.write_spec(tmp_path / "tune.yaml", tuning_testkit.tiny_digits(
        tmp_path / "runs", space={"model.adapter.r": {"choice": [2, 4, 8, 0]}}, seed=0,
    ))

    status = tuning_testkit.run_tune([str(spec), "--dry-run", "--samples", "1"], registry)

    output = capsys.readouterr().out
    assert status == 2
    assert "model.adapter.r=0" in output
    assert "are valid" not in output


def test_run_rejects_invalid_choice_before_ray(registry, tmp_path, capsys):
    spec = tuning_testkit.write_spec(tmp_path / "tune.yaml", tuning_testkit.tiny_digits(
        tmp_path / "runs", space={"model.adapter.r": {"choice": [2, -1]}}, num_samples=1,
    ))

    status = tuning_testkit.run_tune([str(spec)], registry)

    error = capsys.readouterr().err
    assert status == 2
    assert "trial (model.adapter.r=-1): model.adapter.r: Input should be greater than 0" in error
    assert not (tmp_path / "runs").exists()


def test_spec_without_search_rejected(tmp_path, capsys):
    data = tuning_testkit.tiny_digits(tmp_path / "runs")
    del data["search"]
    spec = tuning_testkit.write_spec(tmp_path / "plain.yaml", data)

    status = main(["tune", str(spec), "--dry-run"])

    assert status == 2
    assert "no search: section" in capsys.readouterr().err


@pytest.mark.timeout(60)  # a hang fails the test instead of blocking the suite
def test_unreachable_address_fails_fast(tmp_path, capsys):
    with socket.socket() as probe:  # a port that was free a moment ago, so nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = tuning_testkit.write_spec(tmp_path / "tune.yaml", tuning_testkit.tiny_digits(
        tmp_path / "runs", space={"model.adapter.r": {"choice": [2]}}, num_samples=1,
    ))

    status = main(["tune", str(spec), "--address", f"127.0.0.1:{port}"])

    error = capsys.readouterr().err
    assert status == 2
    assert error.count("\n") == 1
    assert error.startswith(f"error: cannot reach the Ray cluster at 127.0.0.1:{port}")
    assert "Connection refused" in error
    assert not list((tmp_path / "runs").rglob("adaptlab-tune.json"))
