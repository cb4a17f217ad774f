"""``adaptlab mtlora``: the export-scenes and compare subcommands."""

from __future__ import annotations

import csv

import pytest

from adaptlab.core.cli import main
from adaptlab.plugins.mtlora.reproduce import RunRow, compare, comparison_rows, pareto_front


def test_export_scenes_command_writes_layout(tmp_path, capsys):
    folder = tmp_path / "PASCAL_MT"

    status = main(["mtlora", "export-scenes", str(folder), "--train", "3", "--val", "2",
                   "--image-size", "32"])

    assert status == 0
    assert "wrote 3 train, 2 val images" in capsys.readouterr().out
    assert (folder / "ImageSets" / "Context" / "train.txt").read_text().split() == [
        "train_000000", "train_000001", "train_000002",
    ]
    assert len(list((folder / "human_parts").glob("*.mat"))) == 5


def test_export_into_non_empty_folder_is_rejected(tmp_path, capsys):
    (tmp_path / "other.txt").write_text("keep me")

    status = main(["mtlora", "export-scenes", str(tmp_path), "--train", "1", "--val", "1"])

    assert status == 2
    assert "exists and is not empty; choose a new folder" in capsys.readouterr().err


def test_comparison_rows_delta_m():
    rows = [
        RunRow("single-semseg", "single-task", None, 100, {"semseg": 50.0}, ""),
        RunRow("single-normals", "single-task", None, 100, {"normals": 20.0}, ""),
        RunRow("mtlora-r4", "MTLoRA", 4, 30, {"semseg": 55.0, "normals": 22.0}, ""),
    ]

    table = comparison_rows(rows, ["semseg", "normals"])

    assert [row.name for row in table] == ["single-task (all)", "mtlora-r4"]
    assert table[0].trainable == 200
    assert table[0].delta_m == 0.0
    # +10 % on mIoU, -10 % on the angular error (higher is worse): delta-m 0.
    assert table[1].delta_m == pytest.approx(0.0)


def test_pareto_front_drops_dominated_rows():
    rows = [
        RunRow("small", "MTLoRA", 4, 10, {}, "", 1.0),
        RunRow("dominated", "MTLoRA", 8, 20, {}, "", 0.5),
        RunRow("large", "full fine-tuning", None, 40, {}, "", 3.0),
        RunRow("reference", "single-task", None, 80, {}, "", 0.0),
    ]

    assert [row.name for row in pareto_front(rows)] == ["small", "large"]


def test_compare_trains_and_writes_table(tmp_path):
    scenes = {"image_size": 32, "tasks": ["semseg"], "counts": {"train": 4, "val": 2, "test": 0}}

    result = compare(
        tmp_path, scenes=scenes, epochs=1, pretrain_epochs=0, ranks=[2], batch_size=4,
        lr=1e-3, seed=0,
    )

    names = [row.name for row in result.rows]
    assert names == ["single-task (all)", "multitask-full", "mtlora-r2"]
    full, mtlora = result.rows[1], result.rows[2]
    assert mtlora.trainable < full.trainable
    # With one task, full multi-task fine-tuning is the single-task model again.
    assert full.delta_m == pytest.approx(0.0)
    assert 0.0 <= mtlora.metrics["semseg"] <= 100.0
    with (tmp_path / "comparison.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert table[2]["model"] == "mtlora-r2"
    assert float(table[2]["delta_m"]) == pytest.approx(mtlora.delta_m, abs=0.01)
    assert (tmp_path / "pareto.png").stat().st_size > 1000
    assert "| mtlora-r2 | 2 |" in (tmp_path / "comparison.md").read_text()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--ranks", "0"], "--ranks 0: every rank must be at least 1"),
        (["--ranks", "-4", "16"], "--ranks -4: every rank must be at least 1"),
        (["--epochs", "0"], "--epochs 0 must be at least 1"),
        (["--pretrain-epochs", "-1"], "--pretrain-epochs -1 must be 0"),
        (["--batch-size", "0"], "--batch-size 0 must be at least 1"),
        (["--lr", "0"], "--lr 0.0 must be a positive number"),
        (["--ranks", "4", "4"], "--ranks repeats 4; give each rank once"),
    ],
)
def test_compare_rejects_bad_options(tmp_path, capsys, monkeypatch, options, expected):
    import adaptlab.plugins.mtlora.reproduce as reproduce

    def no_training(data):
        raise AssertionError("compare started training")

    monkeypatch.setattr(reproduce, "_train", no_training)
    output = tmp_path / "out"

    status = main(["mtlora", "compare", "--output", str(output), *options])

    error = capsys.readouterr().err
    assert status == 2
    assert expected in error
    assert len(error.strip().splitlines()) == 1
    assert not output.exists()


def test_compare_validates_specs_first(tmp_path, monkeypatch):
    import adaptlab.plugins.mtlora.reproduce as reproduce
    from adaptlab.core.errors import SpecError

    def no_training(data):
        raise AssertionError("compare started training")

    monkeypatch.setattr(reproduce, "_train", no_training)
    runs = reproduce._compare_runs(["semseg", "normals"], [4, 16])
    assert [run[0] for run in runs] == [
        "single-semseg", "single-normals", "multitask-full", "mtlora-r4", "mtlora-r16",
    ]
    # 30 px cannot be tiled by the tiny Swin: the spec check fails, nothing is trained and
    # the output folder is not created.
    scenes = {"image_size": 30, "tasks": ["semseg", "normals"],
              "counts": {"train": 4, "val": 2, "test": 0}}
    output = tmp_path / "out"
    with pytest.raises(SpecError) as caught:
        compare(output, scenes=scenes, epochs=1, pretrain_epochs=1, ranks=[4], batch_size=2,
                lr=1e-3, seed=0)
    message = str(caught.value)
    assert "mtlora compare run pretrain" in message
    assert "\n" not in message
    assert not output.exists()


def test_compare_refuses_non_empty_output(tmp_path, capsys, monkeypatch):
    import adaptlab.plugins.mtlora.reproduce as reproduce

    def no_training(data):
        raise AssertionError("compare started training")

    monkeypatch.setattr(reproduce, "_train", no_training)
    (tmp_path / "comparison.csv").write_text("earlier results")

    status = main(["mtlora", "compare", "--output", str(tmp_path), "--train", "4", "--val", "2"])

    error = capsys.readouterr().err
    assert status == 2
    assert "exists and is not empty; choose a new folder with --output" in error
    assert (tmp_path / "comparison.csv").read_text() == "earlier results"
