"""Compact JSON form of a :class:`~adaptlab.plugins.graphsym.netlist.model.Netlist`.

Nets are stored once in a ``nets`` table and instance pins refer to them by index, which keeps
a 32-bit adder's netlist near 10 KB before compression. The form round-trips exactly:
``netlist_from_json(netlist_to_json(n)) == n`` for every netlist ``n``.

Layout (format version 1)::

    {"format": "graphsym-netlist", "version": 1, "name": ..., "inputs": [...], "outputs": [...],
     "nets": [...], "instances": [[name, cell, {pin: net index}], ...], "aliases": {net: net}}
"""

from __future__ import annotations

import logging
from typing import Any

from ..netlist.model import Instance, Netlist, NetlistError

__all__ = ["NETLIST_FORMAT", "netlist_from_json", "netlist_to_json"]

logger = logging.getLogger(__name__)

NETLIST_FORMAT = "graphsym-netlist"
NETLIST_FORMAT_VERSION = 1


def netlist_to_json(netlist: Netlist) -> dict[str, Any]:
    """Return the JSON-serializable compact form of ``netlist``."""
    net_index: dict[str, int] = {}
    instances = []
    for instance in netlist.instances:
        pins = {}
        for pin, net in instance.pins.items():
            pins[pin] = net_index.setdefault(net, len(net_index))
        instances.append([instance.name, instance.cell, pins])
    return {
        "format": NETLIST_FORMAT,
        "version": NETLIST_FORMAT_VERSION,
        "name": netlist.name,
        "inputs": list(netlist.inputs),
        "outputs": list(netlist.outputs),
        "nets": list(net_index),
        "instances": instances,
        "aliases": dict(netlist.aliases),
    }


def netlist_from_json(data: dict[str, Any]) -> Netlist:
    """Rebuild a netlist from :func:`netlist_to_json` output; raises NetlistError when malformed."""
    if not isinstance(data, dict) or data.get("format") != NETLIST_FORMAT:
        raise NetlistError(f"not a {NETLIST_FORMAT!r} object: expected the output of netlist_to_json")
    if data.get("version") != NETLIST_FORMAT_VERSION:
        raise NetlistError(
            f"netlist JSON version {data.get('version')!r} is not supported; "
            f"expected {NETLIST_FORMAT_VERSION}, so rebuild the record"
        )
    try:
        nets = data["nets"]
        instances = [
            Instance(name, cell, {pin: nets[index] for pin, index in pins.items()})
            for name, cell, pins in data["instances"]
        ]
        return Netlist(
            name=data["name"],
            inputs=list(data["inputs"]),
            outputs=list(data["outputs"]),
            instances=instances,
            aliases=dict(data["aliases"]),
        )
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise NetlistError(f"malformed {NETLIST_FORMAT!r} object {data.get('name')!r}: {error!r}") from error
