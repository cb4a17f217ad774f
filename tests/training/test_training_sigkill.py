"""A run killed with SIGKILL and resumed ends bitwise equal to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training_testkit import spec_data

WORKER = Path(__file__).with_name("train_worker.py")
EPOCHS = 6


def start_worker(*args: str) -> subprocess.Popen:
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stdout.strip().splitlines()[0]


def write_spec(tmp_path: Path, name: str) -> Path:
    data = spec_data(
        str(tmp_path / name),
        # The per-item delay slows the run so that it can be killed mid-training.
        data={"train_size": 96, "delay_s": 0.004},
        model={"backbone": {"dropout": 0.2}},
        train={
            "epochs": EPOCHS,
            "scheduler": {"name": "cosine", "warmup_steps": 5},
            "checkpoint": {"keep_last": 2},
        },
    )
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def wait_for(pattern: str, folder: Path, timeout: float = 90) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
        time.sleep(0.01)
    pytest.fail(f"{pattern} did not appear in {folder} within {timeout} s")


def comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "time_s"} for record in records]


def read_metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return comparable([json.loads(line) for line in lines])


def test_sigkill_resume_bitwise_equal(tmp_path):
    reference = start_worker("new", str(write_spec(tmp_path, "reference")))
    victim = start_worker("new", str(write_spec(tmp_path, "killed")))

    first_checkpoint = wait_for("*/checkpoints/epoch-0001.json", tmp_path / "killed")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    run_dir = first_checkpoint.parent.parent
    assert not (run_dir / "checkpoints" / f"epoch-{EPOCHS:04d}.json").exists()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"

    resumed_dir = Path(finish(start_worker("resume", str(run_dir))))
    reference_dir = Path(finish(reference))

    assert resumed_dir == run_dir
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert 1 <= summary["resumed_from_epoch"] < EPOCHS
    name = f"checkpoints/epoch-{EPOCHS:04d}.safetensors"
    resumed = load_file(str(run_dir / name))
    expected = load_file(str(reference_dir / name))
    assert resumed.keys() == expected.keys()
    weights = [key for key in expected if key.startswith("model/")]
    assert len(weights) == 8
    for key in expected:
        assert torch.equal(resumed[key], expected[key]), key
    assert read_metrics(run_dir) == read_metrics(reference_dir)
