"""Labelled records of each split of an ``adders`` dataset configuration.

:func:`build_split_records` turns an :class:`~adaptlab.plugins.graphsym.config.AddersDatasetConfig`
into (design, delay target) jobs, labels them through :func:`~.builder.build_dataset` and its
cache, and sorts the records into the splits ``train``, ``val`` and ``test``:

* Whole adders are assigned to splits (shuffled by ``seed``), so no design of the val or test
  split appears in training, at any delay target.
* The train and val adders are labelled at the training delay targets: ``delay_target_ns``, or
  each factor of ``delay_target_factors``, or ``delay_target_factor``.
* The test split contains the held-out test adders at the training targets, unless
  ``test_delay_target_factors`` (unseen targets, for held-out or all adders) or
  ``test_circuits`` (comparators and multipliers) change that.

This module does not import torch, so the ``adaptlab data`` command can use it.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from adaptlab.core.errors import ComponentBuildError

from ..config import AddersDatasetConfig
from ..designs import TOPOLOGIES, design_key
from ..liberty import LibertyError, read_liberty
from ..liberty.generate import LIBRARY_VERSION, write_library
from .builder import DEFAULT_BATCH_SIZE, DENSITY_RANGE, DatasetBuild, adder_specs, build_dataset
from .records import ARRAY_TOPOLOGY, RANDOM_TOPOLOGY, DelayTarget, DesignSpec, Record

__all__ = [
    "SPLITS",
    "SplitRecords",
    "build_split_records",
    "cache_root",
    "comparator_specs",
    "library_path",
    "split_designs",
    "test_circuit_specs",
    "training_targets",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def cache_root(config: AddersDatasetConfig) -> Path:
    """Return the cache folder: ``cache_dir``, ``$ADAPTLAB_CACHE/graphsym`` or ``~/.cache/adaptlab/graphsym``."""
    if config.cache_dir is not None:
        return Path(config.cache_dir).expanduser()
    base = os.environ.get("ADAPTLAB_CACHE")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "adaptlab"
    return root / "graphsym"


def ensure_cache_root(root: Path) -> Path:
    """Create the cache folder ``root`` if needed and return it; raise ComponentBuildError when
    it is a file or cannot be created."""
    if root.exists() and not root.is_dir():
        raise ComponentBuildError(
            f"data.cache_dir: {root} is a file, not a folder; give a folder path "
            "(--cache-dir DIR or data.cache_dir) or remove the file"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ComponentBuildError(
            f"data.cache_dir: cannot create the cache folder {root} ({reason}); give a writable "
            "folder with --cache-dir DIR or data.cache_dir"
        ) from None
    return root


def library_path(config: AddersDatasetConfig, root: Path) -> Path:
    """Return the Liberty file to use, writing the synthetic library on first use."""
    if config.library is not None:
        path = Path(config.library).expanduser().resolve()
        if not path.is_file():
            raise ComponentBuildError(
                f"data.library: Liberty file not found: {path}; give an existing .lib file or "
                "leave library unset for the synthetic library"
            )
        return path
    path = root / f"synthetic-v{LIBRARY_VERSION}.lib"
    if not path.is_file():
        ensure_cache_root(root)
        write_library(path)
    return path


def check_library(path: Path) -> None:
    """Parse the Liberty file once with the project's reader, before any synthesis job starts.

    Raises ComponentBuildError naming the file and line of the first problem, so that a broken
    library fails once instead of once per design inside Yosys or a worker.
    """
    try:
        read_liberty(path)
    except LibertyError as error:
        raise ComponentBuildError(
            f"data.library: invalid Liberty file: {error}; fix the file or leave library unset "
            "for the synthetic library"
        ) from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ComponentBuildError(f"data.library: cannot read the Liberty file {path} ({reason}); check the path") from None


def training_targets(config: AddersDatasetConfig) -> list[DelayTarget]:
    """Return the delay targets of the train and val splits."""
    if config.delay_target_ns is not None:
        return [DelayTarget(config.delay_target_ns)]
    factors = config.delay_target_factors or [config.delay_target_factor]
    return [DelayTarget(factor, relative=True) for factor in factors]


def split_designs(specs: list[DesignSpec], config: AddersDatasetConfig) -> dict[str, list[DesignSpec]]:
    """Assign whole designs to the splits: sorted by design key, shuffled by ``config.seed``.

    The first ``val_fraction`` of the shuffled designs (at least one) go to ``val``, the next
    ``test_fraction`` to ``test`` and the rest to ``train``. Raises ComponentBuildError when
    no design is left for training.
    """
    keyed = sorted(specs, key=lambda spec: design_key(spec.build()))
    random.Random(config.seed).shuffle(keyed)
    count = len(keyed)
    n_val = max(1, round(count * config.val_fraction))
    n_test = round(count * config.test_fraction)
    if count - n_val - n_test < 1:
        raise ComponentBuildError(
            f"data.count: {count} designs leave none for training after the val and test "
            "shares; raise count or lower val_fraction and test_fraction"
        )
    return {"val": keyed[:n_val], "test": keyed[n_val:n_val + n_test], "train": keyed[n_val + n_test:]}


def comparator_specs(width: int, count: int, seed: int) -> list[DesignSpec]:
    """Return up to ``count`` comparators with distinct gate lists: classic topologies, then random.

    A comparator builds only the cone of the prefix graph's root node, so several topologies
    can give the same circuit. At 8 bits, five of the six classic ones do, and such repeats
    are skipped. Random prefix graphs are drawn as in :func:`~.builder.adder_specs`, at most
    ``20 * count`` of them, so narrow widths may return fewer than ``count`` comparators.
    """
    specs: list[DesignSpec] = []
    seen: set[frozenset] = set()

    def add(spec: DesignSpec) -> None:
        gates = frozenset(spec.build().gates or ())
        if gates in seen:
            logger.debug("skipped comparator %s: its gates repeat an earlier comparator", spec)
            return
        seen.add(gates)
        specs.append(spec)

    for topology in sorted(TOPOLOGIES):
        if len(specs) < count:
            add(DesignSpec(topology, width, circuit="comparator"))
    rng = random.Random(seed)
    low, high = DENSITY_RANGE
    for _ in range(20 * count):
        if len(specs) >= count:
            break
        density = round(rng.uniform(low, high), 4)
        add(DesignSpec(RANDOM_TOPOLOGY, width, seed=rng.getrandbits(32), density=density, circuit="comparator"))
    if len(specs) < count:
        logger.warning("found only %d distinct %d-bit comparators of %d requested", len(specs), width, count)
    return specs


def test_circuit_specs(config: AddersDatasetConfig) -> list[DesignSpec]:
    """Return the test circuits: ``test_circuit_count`` comparators and one multiplier per width."""
    specs = []
    if "comparator" in config.test_circuits:
        for width in config.circuit_widths("comparator"):
            specs += comparator_specs(width, config.test_circuit_count, config.seed)
    if "multiplier" in config.test_circuits:
        specs += [DesignSpec(ARRAY_TOPOLOGY, width, circuit="multiplier") for width in config.circuit_widths("multiplier")]
    return specs


@dataclass
class SplitRecords:
    """Records of each split, the builds that labelled them, the Liberty file and cache folder."""

    splits: dict[str, list[Record]]
    builds: list[DatasetBuild]
    library: Path
    cache_dir: Path
    training_targets: list[DelayTarget]
    test_targets: list[DelayTarget] = field(default_factory=list)

    @property
    def built(self) -> int:
        return sum(build.built for build in self.builds)

    @property
    def cached(self) -> int:
        return sum(build.cached for build in self.builds)

    @property
    def rebuilt(self) -> int:
        return sum(build.rebuilt for build in self.builds)

    @property
    def failed(self) -> int:
        return sum(len(build.failures) for build in self.builds)

    @property
    def seconds(self) -> float:
        return sum(build.seconds for build in self.builds)

    def records(self) -> Iterator[Record]:
        for split in SPLITS:
            yield from self.splits.get(split, [])


def _in_design_order(records: list[Record], designs: list[DesignSpec]) -> list[Record]:
    """Keep the records of ``designs``, ordered by design and then by delay target.

    Records match by design key, because a cached record may carry another spec (such as
    another random seed) that generated the same design.
    """
    position = {design_key(spec.build()): index for index, spec in enumerate(designs)}
    chosen = [record for record in records if record.design_key in position]
    return sorted(chosen, key=lambda record: position[record.design_key])


def build_split_records(
    config: AddersDatasetConfig,
    *,
    progress: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> SplitRecords:
    """Label (or read from the cache) every record of the train, val and test splits.

    Raises ComponentBuildError for a configuration that leaves no training design or names a
    missing Liberty file, and DatasetError when the builder rejects the request or every job
    to build fails. A KeyboardInterrupt leaves the records finished so far in the cache.
    """
    root = ensure_cache_root(cache_root(config))
    liberty = library_path(config, root)
    check_library(liberty)
    targets = training_targets(config)
    test_targets = [DelayTarget(factor, relative=True) for factor in config.test_delay_target_factors or []]
    adders = adder_specs(width=config.width, count=config.count, seed=config.seed)
    designs = split_designs(adders, config)

    if config.test_circuits:
        test_specs = test_circuit_specs(config)
    elif config.test_designs == "all":
        test_specs = designs["val"] + designs["test"] + designs["train"]
    else:
        test_specs = designs["test"]
    # Test designs at the training targets are labelled with the other splits, in one build.
    test_apart = bool(config.test_circuits) or bool(test_targets)
    fit_specs = designs["val"] + designs["train"] + ([] if test_apart else designs["test"])

    common = {
        "workers": config.workers or os.cpu_count(),
        "progress": progress,
        "backend": config.backend,
        "batch_size": batch_size,
        "max_fanout": config.max_fanout,
    }
    records_dir = root / "records"
    builds = [build_dataset(fit_specs, liberty, targets, records_dir, **common)]
    fit_records = list(builds[0])
    splits = {split: _in_design_order(fit_records, designs[split]) for split in ("train", "val")}
    if not test_apart:
        splits["test"] = _in_design_order(fit_records, designs["test"])
    elif test_specs:
        builds.append(build_dataset(test_specs, liberty, test_targets or targets, records_dir, **common))
        splits["test"] = _in_design_order(list(builds[-1]), test_specs)
    else:
        splits["test"] = []
    logger.info("adders: %s", ", ".join(f"{split} {len(records)} records" for split, records in splits.items()))
    return SplitRecords(splits, builds, liberty, records_dir, targets, test_targets or targets)
