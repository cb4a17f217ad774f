"""Subprocess entry of the SIGKILL test: train a new run or resume one, then exit.

Usage: ``python train_worker.py new SPEC_JSON`` or ``python train_worker.py resume RUN_DIR``.
The created run folder is written to stdout as the first line.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import training_testkit  # noqa: E402
from adaptlab.core.spec import validate_spec  # noqa: E402
from adaptlab.core.training.api import train  # noqa: E402


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    torch.set_num_threads(1)
    registry = training_testkit.load_test_registry()
    mode, target = argv[1], Path(argv[2])
    if mode == "new":
        spec = validate_spec(json.loads(target.read_text()), registry=registry)
        summary = train(spec, registry=registry)
    else:
        summary = train(None, resume_dir=target, registry=registry)
    sys.stdout.write(summary["run_dir"] + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
