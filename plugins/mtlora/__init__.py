"""MTLoRA: task-agnostic and task-specific LoRA on Swin for multi-task dense prediction.

Agiza, Neseem and Reda, "MTLoRA: Low-Rank Adaptation Approach for Efficient Multi-Task
Learning", CVPR 2024.
"""

from __future__ import annotations

ADAPTLAB_HOOK_API = "1.1"
