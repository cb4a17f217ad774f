"""Registers ``adaptlab tune`` through the plugin hooks, as any third party would."""

from __future__ import annotations

ADAPTLAB_HOOK_API = "1.1"
