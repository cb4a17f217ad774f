"""Checkpoints: corruption detection, resume fallback, spec checks and state round trips."""

from __future__ import annotations

import json
import logging
import math
import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adaptlab.core.checkpoint import (
    find_latest_checkpoint,
    load_checkpoint,
    pack_state,
    prune_checkpoints,
    save_checkpoint,
    unpack_state,
    verify_checkpoint,
)
from adaptlab.core.errors import CheckpointError, RunError
from adaptlab.core.runs import MetricsLog
from adaptlab.core.training.api import load_run_spec, train

THREE_EPOCHS = {
    "model": {"backbone": {"dropout": 0.2}},
    "train": {"epochs": 3, "checkpoint": {"keep_last": 3}},
}


def checkpoint_files(run_dir: Path, epoch: int) -> tuple[Path, Path]:
    stem = run_dir / "checkpoints" / f"epoch-{epoch:04d}"
    return stem.with_suffix(".json"), stem.with_suffix(".safetensors")


@pytest.fixture
def finished_run(make_spec, registry) -> Path:
    return Path(train(make_spec(**THREE_EPOCHS), registry=registry)["run_dir"])


def test_truncated_checkpoint_raises(finished_run):
    state_path, tensor_path = checkpoint_files(finished_run, 3)
    data = tensor_path.read_bytes()
    tensor_path.write_bytes(data[: len(data) // 2])

    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(state_path)

    message = str(caught.value)
    assert "epoch-0003.safetensors" in message
    assert "truncated" in message
    assert f"{len(data) // 2} bytes" in message


def test_sha256_mismatch_raises(finished_run):
    state_path, tensor_path = checkpoint_files(finished_run, 2)
    data = bytearray(tensor_path.read_bytes())
    data[len(data) - 10] ^= 0xFF
    tensor_path.write_bytes(bytes(data))

    with pytest.raises(CheckpointError) as caught:
        verify_checkpoint(state_path)

    assert "sha256" in str(caught.value)
    assert "epoch-0002.safetensors" in str(caught.value)


def test_invalid_header_with_matching_hash(finished_run):
    import hashlib

    state_path, tensor_path = checkpoint_files(finished_run, 3)
    garbage = b"\xff" * 64
    tensor_path.write_bytes(garbage)
    document = json.loads(state_path.read_text())
    document["tensors"]["bytes"] = len(garbage)
    document["tensors"]["sha256"] = hashlib.sha256(garbage).hexdigest()
    state_path.write_text(json.dumps(document))

    with pytest.raises(CheckpointError) as caught:
        verify_checkpoint(state_path)

    assert "invalid safetensors header" in str(caught.value)


def test_unreadable_state_json_raises(finished_run):
    state_path, _ = checkpoint_files(finished_run, 3)
    state_path.write_text('{"epoch": 3, "tens')

    with pytest.raises(CheckpointError) as caught:
        verify_checkpoint(state_path)

    assert "unreadable JSON" in str(caught.value)
    assert "epoch-0003.json" in str(caught.value)


def test_resume_skips_corrupt_newest(make_spec, registry, finished_run, caplog):
    reference = Path(train(make_spec(**THREE_EPOCHS), registry=registry)["run_dir"])
    _, tensor_path = checkpoint_files(finished_run, 3)
    tensor_path.write_bytes(tensor_path.read_bytes()[:100])

    with caplog.at_level(logging.WARNING):
        summary = train(None, resume_dir=finished_run, registry=registry)

    assert summary["resumed_from_epoch"] == 2
    assert summary["status"] == "completed"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("epoch-0003" in message for message in warnings)
    assert [r["epoch"] for r in MetricsLog(finished_run).read()] == [1, 2, 3]
    resumed = load_file(str(checkpoint_files(finished_run, 3)[1]))
    expected = load_file(str(checkpoint_files(reference, 3)[1]))
    for name, value in expected.items():
        assert torch.equal(resumed[name], value), name


def test_resume_without_valid_checkpoint_raises(finished_run, registry):
    for epoch in (1, 2, 3):
        state_path, _ = checkpoint_files(finished_run, epoch)
        state_path.write_text("not json")

    with pytest.raises(CheckpointError) as caught:
        train(None, resume_dir=finished_run, registry=registry)

    message = str(caught.value)
    assert "no valid checkpoint" in message
    assert "all 3 are corrupt" in message


def test_orphan_tensor_file_is_ignored(finished_run):
    orphan = finished_run / "checkpoints" / "epoch-0009.safetensors"
    orphan.write_bytes(b"partial")

    latest = find_latest_checkpoint(finished_run / "checkpoints")

    assert latest.epoch == 3


def test_resume_changed_spec_lists_paths(finished_run, make_spec, registry):
    changed = make_spec(
        model={"backbone": {"dropout": 0.2}},
        train={"epochs": 5, "checkpoint": {"keep_last": 3}, "optimizer": {"lr": 0.02}},
    )

    with pytest.raises(RunError) as caught:
        train(changed, resume_dir=finished_run, registry=registry)

    lines = str(caught.value).splitlines()
    assert "  train.epochs: 3 -> 5" in lines
    assert "  train.optimizer.lr: 0.01 -> 0.02" in lines
    assert len([line for line in lines if line.startswith("  ")]) == 2
    assert "Resume without a spec" in str(caught.value)


def test_resume_same_spec_is_accepted(finished_run, make_spec, registry):
    summary = train(make_spec(**THREE_EPOCHS), resume_dir=finished_run, registry=registry)

    assert summary["status"] == "completed"
    assert summary["resumed_from_epoch"] == 3
    assert summary["epochs_completed"] == 3


def test_load_run_spec_rejects_non_run(tmp_path, registry):
    with pytest.raises(RunError, match="run folder not found"):
        load_run_spec(tmp_path / "missing", registry)
    with pytest.raises(RunError, match="is not a run folder"):
        load_run_spec(tmp_path, registry)


def test_load_run_spec_round_trip(finished_run, make_spec, registry):
    spec = load_run_spec(finished_run, registry)

    assert spec.to_data() == make_spec(**THREE_EPOCHS).to_data()


def test_pack_state_round_trip():
    tensors: dict[str, torch.Tensor] = {}
    state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.arange(4.0)}},
        "groups": [{"betas": (0.9, 0.999), "lr": 0.1, "foreach": None, "params": [0, 1]}],
        "nan": float("nan"),
        "inf": float("-inf"),
    }

    packed = pack_state(state, "optimizer", tensors)
    restored = unpack_state(json.loads(json.dumps(packed, allow_nan=False)), tensors)

    assert set(tensors) == {"optimizer/state/0/step", "optimizer/state/0/exp_avg"}
    assert list(restored["state"]) == [0]
    assert torch.equal(restored["state"][0]["exp_avg"], torch.arange(4.0))
    assert restored["groups"][0]["betas"] == (0.9, 0.999)
    assert math.isnan(restored["nan"])
    assert restored["inf"] == float("-inf")


def test_tied_tensors_saved_once(tmp_path):
    weight = torch.randn(4, 3)
    tensors = {
        "model/encoder.weight": weight,
        "model/decoder.weight": weight,
        "model/row": weight[1],
    }

    path = save_checkpoint(tmp_path, 1, tensors, {"note": "tied"})
    checkpoint, loaded = load_checkpoint(path)

    aliases = checkpoint.document["tensors"]["aliases"]
    assert aliases == {"model/decoder.weight": "model/encoder.weight"}
    assert torch.equal(loaded["model/decoder.weight"], weight)
    assert torch.equal(loaded["model/row"], weight[1])
    assert checkpoint.state == {"note": "tied"}


def test_prune_keeps_last_and_best(tmp_path):
    for epoch in range(1, 6):
        save_checkpoint(tmp_path, epoch, {"x": torch.zeros(1)}, {})

    deleted = prune_checkpoints(tmp_path, keep_last=2, keep={1})

    assert deleted == [2, 3]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "epoch-0001.json",
        "epoch-0001.safetensors",
        "epoch-0004.json",
        "epoch-0004.safetensors",
        "epoch-0005.json",
        "epoch-0005.safetensors",
    ]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_checkpoint_files_follow_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        save_checkpoint(tmp_path, 1, {"x": torch.zeros(2)}, {})
    finally:
        os.umask(previous)

    for name in ("epoch-0001.safetensors", "epoch-0001.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_checkpoint_log_lines_name_epochs(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="adaptlab.core.checkpoint"):
        for epoch in range(1, 5):
            save_checkpoint(tmp_path, epoch, {"x": torch.zeros(250)}, {})
        prune_checkpoints(tmp_path, keep_last=3)
        prune_checkpoints(tmp_path, keep_last=1)

    messages = [record.getMessage() for record in caplog.records]
    # 250 float32 values are 1,000 bytes; the safetensors header adds about 100.
    assert messages[0] == f"saved checkpoint epoch-0001 (1.1 KB of tensors) in {tmp_path}"
    assert messages[4] == f"deleted the old checkpoint of epoch 1 in {tmp_path}"
    assert messages[5] == f"deleted the old checkpoints of epochs 2, 3 in {tmp_path}"


def test_resume_fills_best_metrics_from_log(make_spec, registry):
    # Monitoring the validation loss upwards makes epoch 1 the best one.
    spec = make_spec(train={"epochs": 3, "monitor": "loss", "mode": "max"})

    def interrupt_after_two(epoch, metrics, checkpoint_path):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(spec, registry=registry, on_epoch_end=interrupt_after_two)
    run_dir = next(Path(spec.output_dir).iterdir())
    first_epoch = MetricsLog(run_dir).read()[0]
    # Drop the progress fields that checkpoints of earlier adaptlab versions lack.
    state_path, _ = checkpoint_files(run_dir, 2)
    document = json.loads(state_path.read_text(encoding="utf-8"))
    del document["state"]["progress"]["best_metrics"]
    del document["state"]["progress"]["last_eval_epoch"]
    state_path.write_text(json.dumps(document), encoding="utf-8")

    summary = train(None, resume_dir=run_dir, registry=registry)

    assert summary["best"]["epoch"] == 1
    assert summary["best_metrics_epoch"] == 1
    assert summary["best_metrics"] == first_epoch["val"]
    assert summary["final_metrics_epoch"] == 3
