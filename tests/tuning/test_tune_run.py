"""Real Ray Tune experiments of tiny digits models: results, failures and resume.

One local Ray cluster serves the whole module (``ray_cluster``), and the end-to-end
experiment runs once for the tests that read its results.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import tuning_testkit
import yaml

from adaptlab.core.spec import load_spec
from adaptlab.tuning.results import pareto_front


def experiment_dir_of(output: str) -> Path:
    match = re.search(r"^experiment (\S+)$", output, re.MULTILINE)
    assert match, output
    return Path(match.group(1))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def lora_experiment(ray_cluster, registry, tmp_path_factory):
    """Two trials (LoRA rank 1 and 8) of two epochs; returns status, output and folders."""
    root = tmp_path_factory.mktemp("lora-tune")
    space = {"model.adapter.r": {"grid": [1, 8]},
             "train.optimizer.lr": {"loguniform": [3e-3, 1e-2]}}
    spec = tuning_testkit.write_spec(
        root / "tune.yaml", tuning_testkit.tiny_digits(root / "runs", space=space, num_samples=1)
    )
    capture = root / "stdout.txt"
    import contextlib

    with capture.open("w") as handle, contextlib.redirect_stdout(handle):
        status = tuning_testkit.run_tune([str(spec)], registry)
    output = capture.read_text()
    return {"status": status, "output": output, "spec": spec, "root": root,
            "experiment": experiment_dir_of(output)}


def test_tune_writes_results(lora_experiment):
    experiment = lora_experiment["experiment"]
    rows = read_csv(experiment / "results.csv")
    by_rank = {int(row["model.adapter.r"]): row for row in rows}

    assert lora_experiment["status"] == 0
    assert sorted(by_rank) == [1, 8]
    assert {row["status"] for row in rows} == {"completed"}
    assert all(0.0 < float(row["digit/accuracy"]) <= 1.0 for row in rows)
    assert all(row["epochs"] == "2" for row in rows)
    # LoRA on qkv (32 -> 96) and fc1 (32 -> 128): r * (32 + 96 + 32 + 128) more parameters per rank.
    assert int(by_rank[8]["parameters/trainable"]) - int(by_rank[1]["parameters/trainable"]) == 7 * 288
    assert all(Path(row["run_dir"], "summary.json").is_file() for row in rows)


def test_best_spec_trains_as_is(lora_experiment, registry):
    experiment = lora_experiment["experiment"]
    rows = read_csv(experiment / "results.csv")
    best = max(rows, key=lambda row: float(row["digit/accuracy"]))

    spec = load_spec(experiment / "best_spec.yaml", registry=registry)

    assert spec.search is None
    assert spec.model.adapter.config.r == int(best["model.adapter.r"])
    assert spec.train.config.optimizer.lr == pytest.approx(float(best["train.optimizer.lr"]))
    assert spec.output_dir == str(lora_experiment["root"] / "runs")


def test_pareto_front_written(lora_experiment):
    experiment = lora_experiment["experiment"]
    record = json.loads((experiment / "pareto.json").read_text())
    front = record["fronts"]["parameters/trainable"]
    points = [(p["parameters/trainable"], p["digit/accuracy"]) for p in front["points"]]

    assert record["metric"] == "digit/accuracy"
    assert len(front["points"]) == 2
    assert [points[i] for i in pareto_front(points, "max")] == [
        (p["parameters/trainable"], p["digit/accuracy"]) for p in front["front"]
    ]
    assert (experiment / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_printed_table_lists_trials(lora_experiment):
    output = lora_experiment["output"]
    rows = read_csv(lora_experiment["experiment"] / "results.csv")

    assert "TRIAL" in output
    assert "DIGIT/ACCURACY" in output
    assert "TRAINABLE" in output
    for row in rows:
        line = next(line for line in output.splitlines() if line.startswith(row["trial"]))
        assert line.split()[-1] == "completed"


def test_resume_refuses_changed_space(lora_experiment, registry, capsys):
    data = yaml.safe_load(lora_experiment["spec"].read_text())
    data["search"]["space"]["model.adapter.r"] = {"grid": [1, 4]}
    changed = tuning_testkit.write_spec(lora_experiment["root"] / "changed.yaml", data)

    status = tuning_testkit.run_tune(
        [str(changed), "--resume", str(lora_experiment["experiment"])], registry
    )

    error = capsys.readouterr().err
    assert status == 2
    assert "the search differs from the one it started with" in error
    assert "search.space.model.adapter.r.grid: [1, 8] -> [1, 4]" in error


def test_resume_finished_experiment(lora_experiment, registry, capsys):
    rows = read_csv(lora_experiment["experiment"] / "results.csv")

    status = tuning_testkit.run_tune(["--resume", str(lora_experiment["experiment"])], registry)

    output = capsys.readouterr().out
    assert status == 0
    assert all(row["trial"] in output for row in rows)
    assert len(read_csv(lora_experiment["experiment"] / "results.csv")) == 2


def test_failed_trial_retried_from_checkpoint(ray_cluster, registry, tmp_path, capsys):
    data = tuning_testkit.tiny_digits(
        tmp_path / "runs",
        space={"train.failures": {"grid": [1, 5]}},
        num_samples=1,
        max_failures=1,
    )
    data["train"].update(recipe="flaky", epochs=3, fail_epoch=2)
    data["model"]["adapter"] = None  # peft's import would only slow each worker down
    spec = tuning_testkit.write_spec(tmp_path / "flaky.yaml", data)

    status = tuning_testkit.run_tune([str(spec)], registry)

    output = capsys.readouterr().out
    rows = {int(row["train.failures"]): row for row in
            read_csv(experiment_dir_of(output) / "results.csv")}
    recovered, failed = rows[1], rows[5]
    summary = json.loads(Path(recovered["run_dir"], "summary.json").read_text())
    epochs = [json.loads(line)["epoch"] for line in
              Path(recovered["run_dir"], "metrics.jsonl").read_text().splitlines()]
    assert status == 0
    assert recovered["status"] == "completed"
    assert summary["resumed_from_epoch"] == 2  # continued from its checkpoint, not from scratch
    assert epochs == [1, 2, 3]
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: injected failure 2 after epoch 3"
    assert len(list(Path(failed["run_dir"], "injected-failures").iterdir())) == 2
    assert "failed: RuntimeError: injected failure 2 after epoch 3" in " ".join(output.split())
    assert "1 of 2 trials failed" in output
