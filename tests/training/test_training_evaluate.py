"""evaluate(): checkpoint choice, split fallback and the eval-SPLIT.json record."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adaptlab.core.errors import CheckpointError, RunError
from adaptlab.core.runs import MetricsLog, read_json
from adaptlab.core.training.api import evaluate, evaluate_run, train


def run_blobs(make_spec, registry, test_size: int) -> Path:
    spec = make_spec(data={"test_size": test_size}, train={"epochs": 3})
    return Path(train(spec, registry=registry)["run_dir"])


def without_timing(metrics: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if not name.startswith("time/")}


def test_evaluate_last_matches_final_val(make_spec, registry):
    run_dir = run_blobs(make_spec, registry, test_size=0)

    metrics = evaluate(run_dir, split="val", checkpoint="last", registry=registry)

    final = MetricsLog(run_dir).read()[-1]["val"]
    assert metrics["time/forward_ms_per_sample"] > 0
    assert without_timing(metrics) == without_timing(final)
    record = read_json(run_dir / "eval-val.json")
    assert record["metrics"] == metrics
    assert record["checkpoint"] == "checkpoints/epoch-0003.json"
    assert record["epoch"] == 3


def test_evaluate_best_on_test_split(make_spec, registry):
    run_dir = run_blobs(make_spec, registry, test_size=48)
    best_epoch = read_json(run_dir / "summary.json")["best"]["epoch"]

    metrics = evaluate(run_dir, registry=registry)

    record = read_json(run_dir / "eval-test.json")
    assert record["split"] == "test"
    assert record["epoch"] == best_epoch
    assert record["metrics"] == metrics
    assert 0.0 <= metrics["label/accuracy"] <= 1.0
    # 48 samples: the accuracy is a multiple of 1/48.
    assert round(metrics["label/accuracy"] * 48, 6) == round(metrics["label/accuracy"] * 48)


def test_missing_test_split_uses_val(make_spec, registry, caplog):
    run_dir = run_blobs(make_spec, registry, test_size=0)

    with caplog.at_level(logging.WARNING):
        metrics = evaluate(run_dir, split="test", registry=registry)

    assert not (run_dir / "eval-test.json").exists()
    record = read_json(run_dir / "eval-val.json")
    assert record["split"] == "val"
    assert record["requested_split"] == "test"
    assert record["metrics"] == metrics
    assert any("no 'test' split" in r.getMessage() for r in caplog.records)


def test_evaluate_run_names_fallback_split(make_spec, registry):
    run_dir = run_blobs(make_spec, registry, test_size=0)

    split, metrics = evaluate_run(run_dir, split="test", registry=registry)

    assert split == "val"
    assert read_json(run_dir / "eval-val.json")["metrics"] == metrics


def test_missing_best_uses_last(make_spec, registry, caplog):
    run_dir = run_blobs(make_spec, registry, test_size=0)
    (run_dir / "checkpoints" / "best.json").unlink()

    with caplog.at_level(logging.WARNING):
        evaluate(run_dir, split="val", checkpoint="best", registry=registry)

    assert read_json(run_dir / "eval-val.json")["epoch"] == 3
    assert any("no best checkpoint" in r.getMessage() for r in caplog.records)


def test_unknown_split_and_checkpoint_raise(make_spec, registry):
    run_dir = run_blobs(make_spec, registry, test_size=0)

    with pytest.raises(RunError, match="has no split 'holdout'.*train, val"):
        evaluate(run_dir, split="holdout", registry=registry)
    with pytest.raises(CheckpointError, match="'epoch-0042' not found.*epoch-0003"):
        evaluate(run_dir, checkpoint="epoch-0042", registry=registry)


def test_evaluate_explicit_epoch(make_spec, registry):
    run_dir = run_blobs(make_spec, registry, test_size=0)

    metrics = evaluate(run_dir, split="val", checkpoint="2", registry=registry)

    assert without_timing(metrics) == MetricsLog(run_dir).read()[1]["val"]
    assert read_json(run_dir / "eval-val.json")["epoch"] == 2
