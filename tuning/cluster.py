"""Where trials run: a local Ray cluster started for one experiment, or an existing cluster.

A local cluster gets its own temporary folder, removed after ``ray.shutdown()``. Ray 2.59 and
later start local clusters with token authentication: ``ray.init()`` reads the token from
``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token`` and writes a new one to
``~/.ray/auth_token`` when none exists. Joining an existing cluster needs ``RAY_AUTH_MODE=token``
and the cluster's token in one of those places when the cluster enforces authentication.

Before joining a cluster, the address is probed with a plain TCP connection and a short
timeout, so an unreachable address fails in seconds with one line instead of Ray's retries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from adaptlab.core.errors import RunError

__all__ = ["DEFAULT_GCS_PORT", "probe_address", "ray_session", "resolve_address"]

logger = logging.getLogger(__name__)

DEFAULT_GCS_PORT = 6379
DEFAULT_CLIENT_PORT = 10001
PROBE_TIMEOUT_S = 3.0


def resolve_address(option: str | None, spec_address: str | None) -> str | None:
    """Return the cluster address: ``--address``, else ``RAY_ADDRESS``, else the spec's."""
    for candidate in (option, os.environ.get("RAY_ADDRESS"), spec_address):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


def _host_port(address: str) -> tuple[str, int] | None:
    """Split ``[ray://]HOST[:PORT]``; ``None`` for ``auto`` and ``local``."""
    if address in ("auto", "local"):
        return None
    default_port = DEFAULT_GCS_PORT
    if address.startswith("ray://"):
        address = address.removeprefix("ray://")
        default_port = DEFAULT_CLIENT_PORT
    address = address.rstrip("/")
    if address.startswith("["):  # [IPv6]:PORT
        host, _, rest = address[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, _, port_text = address.partition(":")
    else:
        host, port_text = address, ""
    if not host:
        raise RunError(f"invalid Ray address {address!r}: expected HOST:PORT, e.g. 10.0.0.5:6379")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RunError(
            f"invalid Ray address {address!r}: the port must be a number from 1 to 65535"
        )
    return host, int(port_text)


def probe_address(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`RunError` unless a TCP connection to ``address`` opens within the timeout."""
    target = _host_port(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise RunError(
            f"cannot reach the Ray cluster at {address} ({host}:{port}: {reason}); check that "
            "the head node runs and the address is HOST:PORT of its GCS (port "
            f"{DEFAULT_GCS_PORT} by default), or drop --address, RAY_ADDRESS and "
            "search.address to start a local cluster"
        ) from None


@contextlib.contextmanager
def ray_session(
    address: str | None,
    *,
    temp_dir: str | Path | None = None,
    verbose: bool = False,
    num_cpus: int | None = None,
    runtime_env: dict | None = None,
) -> Iterator[None]:
    """Connect to ``address`` (after a probe) or start a local cluster; shut it down after.

When this process is already connected to Ray, that connection is used and left open.
    A local cluster uses ``num_cpus`` (default: every core) and a fresh folder inside
    ``temp_dir`` (default: the system's temporary folder), which is removed afterwards.
    Ray's own log output is shown only with ``verbose``.
    """
    if address is not None:
        probe_address(address)
    import ray

    _quiet_ray_loggers(verbose)
    if ray.is_initialized():
        # A caller that embeds adaptlab (or a test session) connected already; that
        # connection stays theirs to shut down.
        logger.info("using the Ray cluster this process is already connected to")
        yield
        return
    created: Path | None = None
    kwargs: dict = {
        "log_to_driver": verbose,
        "configure_logging": False,
        "runtime_env": runtime_env,
    }
    if address is None:
        parent = Path(temp_dir).expanduser() if temp_dir else None
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        # A short path, since Ray's unix sockets live inside and their paths are limited to
        # about 107 characters.
        created = Path(tempfile.mkdtemp(prefix="adaptlab-ray-", dir=parent))
        kwargs.update(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            _temp_dir=str(created),
        )
        logger.info("starting a local Ray cluster (%d CPUs, temporary folder %s)",
                    kwargs["num_cpus"], created)
    else:
        logger.info("connecting to the Ray cluster at %s", address)
    try:
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as error:
            raise RunError(f"cannot connect to the Ray cluster at {address}: {error}") from None
        except Exception as error:
            if type(error).__name__ == "AuthenticationError":
                raise RunError(
                    f"the Ray cluster at {address} rejected the connection: {error}. Set "
                    "RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN, "
                    "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
                ) from None
            raise
        yield
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


def _quiet_ray_loggers(verbose: bool) -> None:
    """Let Ray's loggers through only with ``-v``; adaptlab logs trial starts and failures."""
    if not verbose:
        # Tune's default console output prints tables to stdout even with RunConfig
        # verbose=0, but its older reporter honours verbose=0 (Ray 2.60).
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger("ray").setLevel(level)
    # Tune logs each failed trial's traceback at ERROR; the trial table reports it instead.
    logging.getLogger("ray.tune").setLevel(logging.INFO if verbose else logging.CRITICAL)
    logging.getLogger("ray.air").setLevel(logging.INFO if verbose else logging.CRITICAL)
