"""Run-folder helpers: naming, atomic writes, metrics truncation, locking, spec diffs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime

import pytest

from adaptlab.core.errors import RunError
from adaptlab.core.runs import (
    LOCK_FILE,
    MetricsLog,
    atomic_path,
    atomic_write_json,
    create_run_dir,
    run_lock,
    spec_differences,
)


def test_same_second_runs_get_distinct_folders(tmp_path):
    moment = datetime(2024, 5, 6, 7, 8, 9)

    folders = [create_run_dir(tmp_path, "digits", now=moment) for _ in range(3)]

    assert [f.name for f in folders] == [
        "digits-20240506-070809",
        "digits-20240506-070809-2",
        "digits-20240506-070809-3",
    ]
    assert all(f.is_dir() for f in folders)


def test_atomic_write_leaves_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_json(target, {"status": "running"})

    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half written")
        raise RuntimeError("crash while writing")

    assert json.loads(target.read_text()) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_metrics_truncate_drops_later_epochs(tmp_path):
    log = MetricsLog(tmp_path)
    for epoch in range(1, 5):
        log.append({"epoch": epoch, "train": {"loss": 1.0 / epoch}})
    with open(log.path, "a", encoding="utf-8") as handle:
        handle.write('{"epoch": 5, "tra')

    dropped = log.truncate_after(2)

    assert dropped == 2
    assert [r["epoch"] for r in log.read()] == [1, 2]
    assert log.path.read_text().count("\n") == 2


def test_lock_of_live_process_raises(tmp_path):
    with run_lock(tmp_path):
        with pytest.raises(RunError, match=f"in use by process {os.getpid()}"):
            with run_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_FILE).exists()


def test_stale_lock_is_taken_over(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead_pid = int(finished.stdout)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname()}))

    with run_lock(tmp_path):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid()


def test_spec_differences_lines():
    old = {"seed": 0, "train": {"epochs": 3, "optimizer": {"lr": 0.01}}, "output_dir": "a"}
    new = {
        "seed": 0,
        "train": {"epochs": 5, "optimizer": {"lr": 0.01}, "extra": [1]},
        "output_dir": "b",
    }

    lines = spec_differences(old, new, ignore=("output_dir",))

    assert lines == ["train.epochs: 3 -> 5", "train.extra: (absent) -> [1]"]
