"""Fixtures of the training tests: the test plugin's registry and spec builders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import training_testkit  # noqa: E402
from adaptlab.core.spec import Spec, validate_spec  # noqa: E402


@pytest.fixture(scope="session")
def registry():
    return training_testkit.load_test_registry()


@pytest.fixture
def make_spec(tmp_path, registry):
    """Return a builder of validated specs writing runs under ``tmp_path/runs``."""

    def build(**sections) -> Spec:
        data = training_testkit.spec_data(str(tmp_path / "runs"), **sections)
        return validate_spec(data, registry=registry)

    return build
