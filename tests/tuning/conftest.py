"""Fixtures of the tuning tests: the test plugin's registry and one Ray cluster per session."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tuning_testkit  # noqa: E402

# The tests start their own local cluster; an address in the environment would redirect them.
os.environ.pop("RAY_ADDRESS", None)


@pytest.fixture(scope="session")
def registry():
    return tuning_testkit.load_test_registry()


@pytest.fixture(scope="session")
def ray_cluster(_private_cache):
    """Start one local Ray cluster for every test that runs trials (each start takes ~5 s).

    The token for Ray's default token authentication comes from RAY_AUTH_TOKEN, so the
    tests leave ~/.ray/auth_token alone.
    """
    from adaptlab.plugins.vision.digits import default_digits_root, export_digits
    from adaptlab.tuning.cluster import ray_session

    # Export the digits images once here rather than in two trial processes at the same time.
    export_digits(default_digits_root())
    previous = os.environ.get("RAY_AUTH_TOKEN")
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(16)
    try:
        with ray_session(None, num_cpus=2):
            yield
    finally:
        if previous is None:
            os.environ.pop("RAY_AUTH_TOKEN", None)
        else:
            os.environ["RAY_AUTH_TOKEN"] = previous
