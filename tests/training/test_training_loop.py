"""The supervised loop: learning, losses, accumulation, schedules, determinism, stopping."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import default_collate

from adaptlab.core.compose import build_data, build_model
from adaptlab.core.errors import RunError
from adaptlab.core.runs import MetricsLog, read_json
from adaptlab.core.training.api import train
from adaptlab.core.training.config import SchedulerConfig
from adaptlab.core.training.evaluation import compute_loss, infer_mode
from adaptlab.core.training.optim import build_optimizer, build_scheduler
from adaptlab.core.training.recipe import Trainer

SGD_PLAIN = {"name": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0}


def final_tensors(summary: dict) -> dict[str, torch.Tensor]:
    run_dir = Path(summary["run_dir"])
    epoch = summary["epochs_completed"]
    return load_file(str(run_dir / "checkpoints" / f"epoch-{epoch:04d}.safetensors"))


def model_only(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in tensors.items() if k.startswith("model/")}


def test_blobs_loss_falls_accuracy_rises(make_spec, registry):
    spec = make_spec(data={"train_size": 256}, train={"epochs": 6})
    summary = train(spec, registry=registry)

    records = MetricsLog(Path(summary["run_dir"])).read()
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5, 6]
    first, last = records[0], records[-1]
    assert last["train"]["loss"] < 0.5 * first["train"]["loss"]
    assert last["val"]["label/accuracy"] > first["val"]["label/accuracy"]
    assert last["val"]["label/accuracy"] >= 0.9
    assert summary["status"] == "completed"
    assert summary["global_step"] == 6 * 16
    # MLP 8 -> 32 (LayerNorm) -> 16 plus a 16 -> 2 head.
    assert summary["parameters"]["trainable"] == 8 * 32 + 32 + 64 + 32 * 16 + 16 + 16 * 2 + 2
    assert summary["parameters"]["groups"]["heads"]["trainable"] == 34


def test_run_folder_has_every_file(make_spec, registry):
    summary = train(make_spec(train={"epochs": 2}), registry=registry)
    run_dir = Path(summary["run_dir"])

    assert run_dir.parent == Path(make_spec().output_dir)
    assert run_dir.name.startswith("blobs-")
    for name in ("spec.yaml", "versions.json", "train.log", "metrics.jsonl", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "run.lock").exists()
    assert read_json(run_dir / "summary.json")["status"] == "completed"
    assert "torch" in read_json(run_dir / "versions.json")["packages"]
    log = (run_dir / "train.log").read_text()
    assert "epoch 2/2" in log
    assert "saved checkpoint" in log
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "epoch-0002.json" in checkpoints
    assert "epoch-0002.safetensors" in checkpoints
    assert "best.json" in checkpoints


def test_multitask_loss_weighted_sum(make_spec, registry):
    spec = make_spec(
        data={"tasks": ["shape", "color"]},
        model={
            "heads": {
                "shape": {"name": "linear", "loss_weight": 1.0},
                "color": {"name": "linear", "loss_weight": 3.0},
            },
            "policy": {"name": "constant_budget", "value": 0.25},
        },
    )
    bundle = build_data(spec, registry)
    model = build_model(spec, bundle.tasks, registry)
    inputs, targets = default_collate([bundle.splits["train"][i] for i in range(8)])
    outputs = model(inputs)

    total, per_task = compute_loss(model, outputs, targets)

    shape_loss = F.cross_entropy(outputs["shape"], targets["shape"])
    color_loss = F.cross_entropy(outputs["color"], targets["color"])
    assert torch.allclose(total, 1.0 * shape_loss + 3.0 * color_loss + 0.25)
    assert torch.allclose(per_task["shape"], shape_loss)
    assert torch.allclose(per_task["color"], color_loss)
    assert model.policy.attached_to == "ComposedModel"


def test_multitask_run_reports_task_metrics(make_spec, registry):
    spec = make_spec(
        data={"tasks": ["shape", "color"]},
        model={"heads": {"shape": {"name": "linear"}, "color": {"name": "linear"}}},
        train={"epochs": 1, "monitor": "color/accuracy"},
    )
    summary = train(spec, registry=registry)

    metrics = summary["final_metrics"]
    for name in ("loss", "shape/loss", "shape/accuracy", "color/loss", "color/accuracy"):
        assert name in metrics
    assert metrics["loss"] == pytest.approx(metrics["shape/loss"] + metrics["color/loss"])
    assert summary["monitor"] == {"name": "color/accuracy", "mode": "max"}


def test_accumulation_matches_larger_batch(make_spec, registry):
    data = {"train_size": 32}

    def run(batch_size: int, accumulate: int) -> dict:
        spec = make_spec(
            data=data,
            train={
                "epochs": 1,
                "batch_size": batch_size,
                "accumulate_steps": accumulate,
                "optimizer": SGD_PLAIN,
            },
        )
        return train(spec, registry=registry)

    accumulated = run(8, 2)
    large = run(16, 1)
    small = run(8, 1)

    assert accumulated["global_step"] == 2
    assert large["global_step"] == 2
    assert small["global_step"] == 4
    accumulated_weights = model_only(final_tensors(accumulated))
    large_weights = model_only(final_tensors(large))
    small_weights = model_only(final_tensors(small))
    for name, value in large_weights.items():
        assert torch.allclose(accumulated_weights[name], value, atol=1e-6), name
    assert any(
        not torch.allclose(small_weights[name], value, atol=1e-6)
        for name, value in large_weights.items()
    )


def test_cosine_warmup_lr_values():
    parameter = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    config = SchedulerConfig(name="cosine", warmup_steps=4, min_lr=0.01)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=5, epochs=4)

    used = []
    for _ in range(20):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()

    assert used[0] == pytest.approx(0.025)
    assert used[1] == pytest.approx(0.05)
    assert used[3] == pytest.approx(0.1)
    assert used[4] == pytest.approx(0.1)
    # Halfway through the 16 decay steps the lr is midway between lr and min_lr.
    assert used[12] == pytest.approx(0.055)
    assert used[19] == pytest.approx(0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert all(a >= b for a, b in zip(used[4:], used[5:]))


def test_step_schedule_decays_per_epoch():
    parameter = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    config = SchedulerConfig(name="step", step_size=2, gamma=0.5)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=3, epochs=6)

    used = []
    for _ in range(18):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()

    assert used[:6] == [1.0] * 6
    assert used[6:12] == [0.5] * 6
    assert used[12:] == [0.25] * 6


def test_weight_decay_skips_1d_parameters(make_spec, registry):
    spec = make_spec()
    bundle = build_data(spec, registry)
    model = build_model(spec, bundle.tasks, registry)
    model.heads["label"].linear.weight.requires_grad_(False)

    optimizer = build_optimizer(model, spec.train.config.optimizer)

    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.01
    assert plain["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"])
    assert all(p.ndim == 1 for p in plain["params"])
    # Two Linear weights of the backbone; the frozen head weight is left out.
    assert len(decayed["params"]) == 2
    # Two biases, the LayerNorm scale and shift, and the head bias.
    assert len(plain["params"]) == 5


def test_repeated_runs_bitwise_equal(make_spec, registry):
    sections = {"model": {"backbone": {"dropout": 0.3}}, "train": {"epochs": 2}}
    first = final_tensors(train(make_spec(**sections), registry=registry))
    second = final_tensors(train(make_spec(**sections), registry=registry))
    other_seed = final_tensors(train(make_spec(seed=1, **sections), registry=registry))

    assert first.keys() == second.keys()
    for name, value in first.items():
        assert torch.equal(value, second[name]), name
    name = "model/backbone.net.0.weight"
    assert not torch.equal(first[name], other_seed[name])


def test_early_stopping_at_expected_epoch(make_spec, registry):
    # A min_delta no change can beat: only the first evaluation counts as improvement.
    spec = make_spec(
        train={"epochs": 10, "early_stopping": {"patience": 2, "min_delta": 1e9}}
    )
    summary = train(spec, registry=registry)

    assert summary["status"] == "early_stopped"
    assert summary["epochs_completed"] == 3
    run_dir = Path(summary["run_dir"])
    assert [r["epoch"] for r in MetricsLog(run_dir).read()] == [1, 2, 3]
    assert (run_dir / "checkpoints" / "epoch-0003.json").is_file()


def test_epoch_callback_receives_checkpoints(make_spec, registry):
    calls = []
    spec = make_spec(
        train={"epochs": 3, "checkpoint": {"every_epochs": 2, "keep_best": False}}
    )

    summary = train(
        spec, registry=registry, on_epoch_end=lambda *args: calls.append(args)
    )

    assert [epoch for epoch, _, _ in calls] == [1, 2, 3]
    assert calls[0][2] is None
    assert calls[1][2].name == "epoch-0002.json"
    assert calls[2][2].name == "epoch-0003.json"
    records = MetricsLog(Path(summary["run_dir"])).read()
    for (epoch, metrics, _), record in zip(calls, records):
        assert metrics["loss"] == record["val"]["loss"]
        assert metrics["train/loss"] == record["train"]["loss"]
        assert metrics["epoch"] == epoch


def test_unknown_monitor_lists_metrics(make_spec, registry):
    spec = make_spec(train={"epochs": 1, "monitor": "label/f1"})

    with pytest.raises(RunError) as caught:
        train(spec, registry=registry)

    message = str(caught.value)
    assert "label/f1" in message
    assert "label/accuracy" in message
    run_dir = next(Path(spec.output_dir).iterdir())
    assert read_json(run_dir / "summary.json")["status"] == "failed"


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("loss", "min"),
        ("digit/accuracy", "max"),
        ("semseg/miou", "max"),
        ("delay/r2", "max"),
        ("rank/tau", "max"),
        ("normals/mean_angular_error", "min"),
        ("delay/mape", "min"),
        ("label/top1_accuracy", "max"),
    ],
)
def test_monitor_mode_from_name(name, mode):
    assert infer_mode(name) == mode


def test_monitor_unknown_task_fails_early(make_spec, registry, tmp_path):
    # The spec validator rejects this monitor, so the trainer gets it through its config.
    spec = make_spec(train={"epochs": 1})
    config = spec.train.config.model_copy(update={"monitor": "digit/accuracy"})
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    with pytest.raises(RunError, match="names task 'digit', which has no head"):
        Trainer(config, spec, run_dir, registry=registry).fit()

    assert not (run_dir / "metrics.jsonl").exists()
    assert read_json(run_dir / "summary.json")["epochs_completed"] == 0


def test_policy_regularizer_in_val_loss(make_spec, registry):
    spec = make_spec(
        model={"policy": {"name": "constant_budget", "value": 0.25}}, train={"epochs": 1}
    )

    metrics = train(spec, registry=registry)["final_metrics"]

    assert metrics["loss"] == pytest.approx(metrics["label/loss"] + 0.25)
    assert metrics["policy/executed"] == 1.0


def test_trainable_weights_checkpoint_resumes(make_spec, registry):
    from adaptlab.core.training.api import evaluate

    spec = make_spec(
        model={"backbone": {"freeze_first": True}},
        train={"epochs": 2, "checkpoint": {"weights": "trainable"}},
    )
    summary = train(spec, registry=registry)

    tensors = final_tensors(summary)
    assert "model/backbone.net.0.weight" not in tensors
    assert "model/backbone.net.0.bias" not in tensors
    assert "model/backbone.net.4.weight" in tensors
    assert summary["parameters"]["groups"]["backbone"]["trainable"] == 880 - 8 * 32 - 32
    metrics = evaluate(summary["run_dir"], split="val", checkpoint="last", registry=registry)
    untimed = {name: value for name, value in metrics.items() if not name.startswith("time/")}
    assert untimed == summary["final_metrics"]


def test_loader_workers_match_main_process(make_spec, registry):
    sections = {"model": {"backbone": {"dropout": 0.3}}, "train": {"epochs": 2}}
    in_process = final_tensors(train(make_spec(**sections), registry=registry))
    sections["train"]["num_workers"] = 2
    with_workers = final_tensors(train(make_spec(**sections), registry=registry))

    for name, value in in_process.items():
        assert torch.equal(value, with_workers[name]), name


def test_move_to_device_nested_batches():
    from collections import namedtuple

    from adaptlab.core.training.data import move_to_device

    class GraphBatch:
        def __init__(self) -> None:
            self.moved_to = None

        def to(self, device):
            self.moved_to = device
            return self

    Pair = namedtuple("Pair", "left right")
    cpu = torch.device("cpu")
    batch = {"x": torch.ones(2), "pair": Pair(torch.zeros(1), "name"), "graph": GraphBatch()}

    moved = move_to_device([batch, (torch.ones(1),)], cpu)

    assert isinstance(moved, list)
    assert isinstance(moved[0]["pair"], Pair)
    assert moved[0]["pair"].right == "name"
    assert moved[0]["graph"].moved_to == cpu
    assert isinstance(moved[1], tuple)
    assert torch.equal(moved[0]["x"], torch.ones(2))


def test_warmup_longer_than_run_warns(caplog):
    parameter = nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([parameter], lr=0.1)

    with caplog.at_level(logging.WARNING, logger="adaptlab.core.training.optim"):
        build_scheduler(optimizer, SchedulerConfig(warmup_steps=12), steps_per_epoch=4, epochs=3)
    assert caplog.records == []

    with caplog.at_level(logging.WARNING, logger="adaptlab.core.training.optim"):
        build_scheduler(optimizer, SchedulerConfig(warmup_steps=50), steps_per_epoch=4, epochs=3)
    [record] = caplog.records
    message = record.getMessage()
    assert "warmup_steps (50)" in message
    assert "12 optimizer steps (3 epochs of 4)" in message
    assert "set warmup_steps to at most 12" in message


def test_interrupt_logs_resume_command(make_spec, registry, caplog):
    spec = make_spec(train={"epochs": 3})

    def interrupt(epoch, metrics, checkpoint_path):
        if epoch == 2:
            raise KeyboardInterrupt

    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        train(spec, registry=registry, on_epoch_end=interrupt)

    run_dir = next(Path(spec.output_dir).iterdir())
    command = f"`adaptlab train --resume {run_dir}`"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"run {run_dir} interrupted; {command} continues it from its newest checkpoint, "
        "or from epoch 1 when it has none"
    ]
    assert command in (run_dir / "train.log").read_text(encoding="utf-8")
    summary = read_json(run_dir / "summary.json")
    assert summary["status"] == "interrupted"
    assert summary["epochs_completed"] == 2

    resumed = train(None, resume_dir=run_dir, registry=registry)
    assert resumed["status"] == "completed"
    assert resumed["resumed_from_epoch"] == 2


def test_unknown_monitor_keeps_epoch(make_spec, registry):
    spec = make_spec(train={"epochs": 2, "monitor": "label/f1"})

    with pytest.raises(RunError) as caught:
        train(spec, registry=registry)

    run_dir = next(Path(spec.output_dir).iterdir())
    message = str(caught.value)
    assert "(label/accuracy, label/loss, loss)" in message
    assert "Epoch 1 is saved in checkpoints/epoch-0001.json" in message
    assert f"`adaptlab train --resume {run_dir}`" in message
    assert (run_dir / "checkpoints" / "epoch-0001.json").is_file()
    assert [r["epoch"] for r in MetricsLog(run_dir).read()] == [1]
    summary = read_json(run_dir / "summary.json")
    assert summary["status"] == "failed"
    assert summary["epochs_completed"] == 1

    spec_path = run_dir / "spec.yaml"
    text = spec_path.read_text(encoding="utf-8")
    spec_path.write_text(text.replace("label/f1", "label/accuracy"), encoding="utf-8")
    resumed = train(None, resume_dir=run_dir, registry=registry)

    assert resumed["status"] == "completed"
    assert resumed["resumed_from_epoch"] == 1
    assert [r["epoch"] for r in MetricsLog(run_dir).read()] == [1, 2]
    assert resumed["best"]["epoch"] == 2


def test_summary_best_and_final_metrics(make_spec, registry):
    # Monitoring the validation loss upwards makes the best epoch an early one.
    spec = make_spec(train={"epochs": 4, "eval_every": 2, "monitor": "loss", "mode": "max"})

    summary = train(spec, registry=registry)

    run_dir = Path(summary["run_dir"])
    records = {r["epoch"]: r for r in MetricsLog(run_dir).read()}
    assert records[1]["val"] == {}
    assert records[2]["val"]["loss"] > records[4]["val"]["loss"]
    assert summary["best"]["epoch"] == 2
    assert summary["best_metrics_epoch"] == 2
    assert summary["best_metrics"] == records[2]["val"]
    assert summary["final_metrics_epoch"] == 4
    assert summary["final_metrics"] == records[4]["val"]
    assert read_json(run_dir / "summary.json") == summary
