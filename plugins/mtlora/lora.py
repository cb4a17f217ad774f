"""MTLoRA's linear layer: a frozen ``nn.Linear`` with task-agnostic and task-specific branches.

Agiza, Neseem and Reda, "MTLoRA: Low-Rank Adaptation Approach for Efficient Multi-Task
Learning", CVPR 2024. A low-rank branch computes ``scale * B(A(dropout(x)))`` with
``A: rank x in`` and ``B: out x rank``; ``B`` starts at zero, so a new layer computes what the
frozen layer did.

In a task-specific layer the frozen weight ``W`` is applied to the shared input ``x`` only, and
each task's branch to that task's own input ``x_t`` (the task's stream in the block), as in the
reference implementation (github.com/scale-lab/MTLoRA). With ``combine``:

- ``task``: shared ``W x + shared(x)``, task ``W x + task_t(x_t)``;
- ``task_plus_shared``: shared ``W x + shared(x)``, task ``W x + shared(x) + task_t(x_t)``;
- ``normalized_sum``: no task-agnostic branch; task ``W x + task_t(x_t)``, shared
  ``W x + LayerNorm(sum_t task output_t)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["COMBINE_MODES", "MTLoRALinear"]

COMBINE_MODES = ("task", "task_plus_shared", "normalized_sum")


class MTLoRALinear(nn.Module):
    """Wraps a frozen ``nn.Linear`` (the child ``base``) with MTLoRA branches.

    ``forward(x)`` returns the shared output, so the layer replaces ``nn.Linear`` anywhere.
    ``forward_tasks(x, task_input)`` also returns the outputs of every task. While
    ``stack_tasks`` is set, ``forward`` returns the shared output followed by the task outputs,
    concatenated along the batch dimension (the block code uses this to reuse timm's window
    attention for every task at once).

    Parameters whose names start with ``lora_`` are the adapter's. ``shared_branch=False``
    leaves out the task-agnostic branch (a layer with task branches only). ``merge()`` folds the
    task-agnostic branch into ``base`` for inference; the task branches remain.
    """

    def __init__(
        self,
        base: nn.Linear,
        rank: int,
        scale: float,
        dropout: float = 0.0,
        task_ranks: Mapping[str, int] | None = None,
        task_scale: float | None = None,
        combine: str = "task",
        random_init: bool = False,
        shared_branch: bool = True,
    ) -> None:
        super().__init__()
        if combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {', '.join(COMBINE_MODES)}, not {combine!r}")
        if rank <= 0 or any(value <= 0 for value in (task_ranks or {}).values()):
            raise ValueError(f"ranks must be positive (shared {rank}, tasks {dict(task_ranks or {})})")
        self.base = base
        self.rank = rank
        self.scale = float(scale)
        self.task_scale = float(task_scale if task_scale is not None else scale)
        self.task_names: tuple[str, ...] = tuple(task_ranks or ())
        self.combine = combine if self.task_names else "task"
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.stack_tasks = False

        weight = base.weight
        in_features, out_features = base.in_features, base.out_features
        self.has_shared = shared_branch and self.combine != "normalized_sum"
        if self.has_shared:
            self.lora_a = nn.Parameter(weight.new_empty(rank, in_features))
            self.lora_b = nn.Parameter(weight.new_zeros(out_features, rank))
        if self.task_names:
            self.lora_task_a = nn.ParameterDict(
                {t: nn.Parameter(weight.new_empty(r, in_features)) for t, r in task_ranks.items()}
            )
            self.lora_task_b = nn.ParameterDict(
                {t: nn.Parameter(weight.new_zeros(out_features, r)) for t, r in task_ranks.items()}
            )
        if self.combine == "normalized_sum":
            self.lora_norm = nn.LayerNorm(out_features, device=weight.device, dtype=weight.dtype)
        self.reset_parameters(random_init)

    def reset_parameters(self, random_init: bool = False) -> None:
        """Initialise A like ``nn.Linear`` (Kaiming uniform) and B to zero, or B randomly too."""
        pairs = []
        if self.has_shared:
            pairs.append((self.lora_a, self.lora_b))
        for task in self.task_names:
            pairs.append((self.lora_task_a[task], self.lora_task_b[task]))
        for down, up in pairs:
            nn.init.kaiming_uniform_(down, a=math.sqrt(5))
            if random_init:
                nn.init.kaiming_uniform_(up, a=math.sqrt(5))
            else:
                nn.init.zeros_(up)

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def _shared_update(self, dropped: torch.Tensor) -> torch.Tensor:
        """Return the task-agnostic update of an input that dropout was already applied to."""
        # Scaling the rank-sized intermediate is cheaper than scaling the output.
        return F.linear(F.linear(dropped, self.lora_a) * self.scale, self.lora_b)

    def _task_update(self, task: str, dropped: torch.Tensor) -> torch.Tensor:
        """Return ``task``'s update of an input that dropout was already applied to."""
        low = F.linear(dropped, self.lora_task_a[task]) * self.task_scale
        return F.linear(low, self.lora_task_b[task])

    def _task_outputs(
        self, base: torch.Tensor, shared_input: torch.Tensor, task_input: torch.Tensor | None
    ) -> torch.Tensor:
        """Return ``base + update_t`` stacked over tasks, shape ``(tasks, *base.shape)``.

        ``shared_input`` and ``task_input`` (stacked over tasks, or ``None`` for "every task
        uses the shared input") are already dropped out. With one rank for all tasks this is
        two batched matrix products instead of two products per task, because many small
        products are slow on CPU.
        """
        count = len(self.task_names)
        ranks = {self.lora_task_a[task].shape[0] for task in self.task_names}
        if len(ranks) > 1:
            inputs = [shared_input] * count if task_input is None else task_input.unbind(0)
            updates = [self._task_update(t, x) for t, x in zip(self.task_names, inputs)]
            return base.unsqueeze(0) + torch.stack(updates)
        rank = ranks.pop()
        width = shared_input.shape[-1]
        down = torch.stack([self.lora_task_a[task] for task in self.task_names])
        up = torch.stack([self.lora_task_b[task] for task in self.task_names])
        if task_input is None:
            low = F.linear(shared_input.reshape(-1, width), down.reshape(count * rank, width))
            low = low.reshape(-1, count, rank).transpose(0, 1)
        else:
            low = torch.bmm(task_input.reshape(count, -1, width), down.transpose(1, 2))
        flat_base = base.reshape(1, -1, base.shape[-1])
        outputs = torch.baddbmm(flat_base, low, up.transpose(1, 2), alpha=self.task_scale)
        return outputs.reshape(count, *base.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stack_tasks and self.task_names:
            shared, tasks = self.forward_tasks(x)
            return torch.cat([shared, tasks.flatten(0, 1)], dim=0)
        if not self.has_shared:
            return self.forward_tasks(x)[0]
        output = self.base(x)
        return output if self.merged else output + self._shared_update(self.dropout(x))

    def forward_tasks(
        self, x: torch.Tensor, task_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the shared output for ``x`` and the task outputs stacked over tasks.

        ``task_input`` has shape ``(tasks, *x.shape)`` with the tasks in ``task_names`` order,
        or is ``None`` when every task's branch takes ``x``. The task outputs have shape
        ``(tasks, *output.shape)``, and ``(0, *output.shape)`` for a layer without task
        branches. One dropout mask of ``x`` serves the task-agnostic branch and the tasks that
        take ``x``.
        """
        frozen = self.base(x)
        dropped = self.dropout(x)
        shared_update = None
        if self.has_shared and not self.merged:
            shared_update = self._shared_update(dropped)
        shared = frozen if shared_update is None else frozen + shared_update
        if not self.task_names:
            return shared, frozen.new_empty((0, *frozen.shape))

        if self.combine == "task_plus_shared":
            task_base = shared
        elif self.combine == "task" and self.merged:
            # The merged base weight contains the task-agnostic update, which task outputs in
            # this mode leave out.
            task_base = frozen - self._shared_update(x)
        else:
            task_base = frozen
        task_dropped = None if task_input is None else self.dropout(task_input)
        tasks = self._task_outputs(task_base, dropped, task_dropped)

        if self.combine == "normalized_sum":
            shared = frozen + self.lora_norm(tasks.sum(dim=0))
        return shared, tasks

    @torch.no_grad()
    def merge(self) -> None:
        """Add ``scale * B @ A`` to the base weight; later calls do nothing.

        Merged layers are for inference: the task-agnostic branch gets no dropout after it.
        """
        if self.merged or not self.has_shared:
            return
        update = (self.lora_b.float() @ self.lora_a.float()) * self.scale
        self.base.weight += update.to(self.base.weight.dtype)
        self.merged = True

    def extra_repr(self) -> str:
        tasks = f", tasks={','.join(self.task_names)}, combine={self.combine}" if self.task_names else ""
        return f"rank={self.rank}, scale={self.scale}, merged={self.merged}{tasks}"
