"""The ``swin`` backbone: timm's Swin Transformer v1 returning four NCHW stage feature maps.

Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows", ICCV
2021, as implemented by timm (tested with timm 1.0). The model is created with
``pretrained=False``; weights come only from a local file. The final LayerNorm and the
classifier of the timm model are removed because the heads read the stage outputs.

``forward(images)`` returns ``{"stages": [4 maps], "input_size": (H, W)}``. After the
``mtlora`` adapter set ``task_names``, it adds ``"tasks": {task: [4 maps]}``: the outputs of
the task-specific branches of each stage's last block, passed through the same patch merging
as the shared stream (in the ``merged`` layout).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptlab.core.errors import ComponentBuildError, RunError
from adaptlab.plugins.mtlora.config import SwinBackboneConfig, untileable_reason

__all__ = ["SwinBackbone", "build_swin_backbone", "forward_block_with_tasks", "load_swin_weights"]

logger = logging.getLogger(__name__)

_SHOWN_KEYS = 3


def _layer_outputs(
    layer: nn.Module, shared: torch.Tensor, streams: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``layer`` to the shared input and to the task streams ``(tasks, *shared.shape)``.

    A layer with task branches (``MTLoRALinear``) applies its frozen weight once, to the
    shared input. Any other layer's shared output is every task's output, so the tasks cost
    nothing extra there.
    """
    if getattr(layer, "task_names", ()):
        return layer.forward_tasks(shared, streams)
    output = layer(shared)
    return output, output.unsqueeze(0).expand(streams.shape[0], *output.shape)


def forward_block_with_tasks(
    block: nn.Module, x: torch.Tensor, task_count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a timm ``SwinTransformerBlock`` on ``x`` (B, H, W, C) with per-task streams.

    Returns the shared output (B, H, W, C) and the task outputs (tasks, B, H, W, C), in the
    order of the layers' ``task_names``. Every task's stream starts from the shared input.
    The attention output projection and the MLP layers add the task's branches, and the
    residual connections add to the task's stream.
    """
    batch, height, width, channels = x.shape
    projection = block.attn.proj
    stacked = bool(getattr(projection, "task_names", ()))
    if stacked:
        projection.stack_tasks = True
    try:
        attended = block._attn(block.norm1(x))
    finally:
        if stacked:
            projection.stack_tasks = False
    shared_attended = attended[:batch]
    if stacked:
        task_attended = attended[batch:]
    else:
        task_attended = shared_attended.repeat(task_count, 1, 1, 1)
    shared = x + block.drop_path1(shared_attended)
    # Drop path works per sample, so it runs on the flat (tasks * batch) layout.
    streams = block.drop_path1(task_attended).view(task_count, *x.shape) + x

    tokens = (batch, height * width, channels)
    shared = shared.reshape(tokens)
    streams = streams.reshape(task_count, *tokens)
    mlp = block.mlp
    hidden, task_hidden = _layer_outputs(mlp.fc1, block.norm2(shared), block.norm2(streams))
    hidden = mlp.norm(mlp.drop1(mlp.act(hidden)))
    task_hidden = mlp.norm(mlp.drop1(mlp.act(task_hidden)))
    output, task_output = _layer_outputs(mlp.fc2, hidden, task_hidden)
    shared = shared + block.drop_path2(mlp.drop2(output))
    flat_output = mlp.drop2(task_output).reshape(task_count * batch, height * width, channels)
    streams = streams + block.drop_path2(flat_output).view(task_count, *tokens)
    return shared.reshape(x.shape), streams.reshape(task_count, *x.shape)


class SwinBackbone(nn.Module):
    """timm Swin v1 (the child ``model``) returning stage feature maps, see the module docstring.

    ``feature_channels`` lists the channels of the four maps and ``out_features`` the last
    one's. ``task_names`` and ``task_stages`` (0-based stage indices with task branches) are
    set by the ``mtlora`` adapter; while ``task_names`` is empty no task streams are computed.
    """

    def __init__(self, model: nn.Module, config: SwinBackboneConfig) -> None:
        super().__init__()
        self.model = model
        self.variant = config.variant
        self.layout = config.features
        widths = [int(stage.blocks[-1].norm1.normalized_shape[0]) for stage in model.layers]
        if self.layout == "merged":
            self.feature_channels = (*widths[1:], widths[-1])
        else:
            self.feature_channels = tuple(widths)
        self.out_features = int(self.feature_channels[-1])
        self.task_names: tuple[str, ...] = ()
        self.task_stages: frozenset[int] = frozenset()
        self.image_size = int(config.geometry().image_size)

    def forward(self, images: torch.Tensor) -> dict[str, Any]:
        height, width = int(images.shape[-2]), int(images.shape[-1])
        if height != self.image_size or width != self.image_size:
            raise RunError(
                f"input images are {height}x{width} but the swin backbone was built for "
                f"{self.image_size}x{self.image_size}; data.image_size and "
                "model.backbone.image_size must match (set both to the same value)"
            )
        x = self.model.patch_embed(images)
        shared_maps: list[torch.Tensor] = []
        task_maps: dict[str, list[torch.Tensor]] = {task: [] for task in self.task_names}
        # Task streams of the previous stage, (tasks, B, H, W, C), or None where that stage
        # has no task branches.
        pending: torch.Tensor | None = None
        last = len(self.model.layers) - 1

        for index, stage in enumerate(self.model.layers):
            x = stage.downsample(x)
            if self.layout == "merged" and index > 0:
                self._collect(shared_maps, task_maps, x, self._merge_streams(stage, pending))
            if index in self.task_stages and self.task_names:
                for block in stage.blocks[:-1]:
                    x = block(x)
                x, pending = forward_block_with_tasks(stage.blocks[-1], x, len(self.task_names))
            else:
                x = stage.blocks(x)
                pending = None
            if self.layout == "stages" or index == last:
                self._collect(shared_maps, task_maps, x, pending)

        features: dict[str, Any] = {
            "stages": shared_maps,
            "input_size": (int(images.shape[-2]), int(images.shape[-1])),
        }
        if self.task_names:
            features["tasks"] = task_maps
        return features

    @staticmethod
    def _merge_streams(stage: nn.Module, streams: torch.Tensor | None) -> torch.Tensor | None:
        """Pass every task stream through ``stage``'s patch merging in one batched call."""
        if streams is None:
            return None
        merged = stage.downsample(streams.flatten(0, 1))
        return merged.view(streams.shape[0], streams.shape[1], *merged.shape[1:])

    def _collect(
        self,
        shared_maps: list[torch.Tensor],
        task_maps: dict[str, list[torch.Tensor]],
        shared: torch.Tensor,
        streams: torch.Tensor | None,
    ) -> None:
        shared_maps.append(shared.permute(0, 3, 1, 2))
        for position, maps in enumerate(task_maps.values()):
            value = shared if streams is None else streams[position]
            maps.append(value.permute(0, 3, 1, 2))


def build_swin_backbone(config: SwinBackboneConfig) -> SwinBackbone:
    """Create the timm Swin model of ``config``, load its weights file if any, and wrap it."""
    import timm

    geometry = config.geometry()
    weights = Path(config.weights).expanduser() if config.weights is not None else None
    if weights is not None and not weights.is_file():
        raise ComponentBuildError(
            f"weights file {str(weights)!r} not found; set `weights` to an existing local "
            ".safetensors or .pth file (adaptlab never downloads weights)"
        )
    name = config.variant.split(".", 1)[0]
    try:
        model = timm.create_model(
            name,
            pretrained=False,
            num_classes=0,
            img_size=geometry.image_size,
            window_size=geometry.window_size,
            embed_dim=geometry.embed_dim,
            depths=geometry.depths,
            num_heads=geometry.num_heads,
            drop_path_rate=config.drop_path_rate,
        )
    except (TypeError, ValueError, AssertionError, RuntimeError) as error:
        raise ComponentBuildError(
            f"timm could not create {name!r} at image_size {geometry.image_size} "
            f"({type(error).__name__}: {error}); check the backbone fields"
        ) from error
    _check_tiling(model, geometry.image_size)
    if weights is not None:
        load_swin_weights(model, weights)
    # The heads read the stage outputs; the final norm and the classifier would only be
    # unused parameters.
    model.norm = nn.Identity()
    model.head = nn.Identity()
    backbone = SwinBackbone(model, config)
    logger.info(
        "built swin backbone %s at %d px (window %d): %d parameters, feature channels %s",
        name, geometry.image_size, geometry.window_size,
        sum(p.numel() for p in backbone.parameters()), backbone.feature_channels,
    )
    return backbone


def _check_tiling(model: nn.Module, image_size: int) -> None:
    """Check the built model's real windows; the config check covers the variant's defaults."""
    for index, stage in enumerate(model.layers):
        block = stage.blocks[0]
        side = block.input_resolution[0]
        window = block.window_size[0]
        if side % window:
            patch = model.patch_embed.patch_size[0]
            reason = untileable_reason(image_size, patch, window, len(model.layers))
            raise ComponentBuildError(
                f"image_size {image_size}: stage {index + 1} has a grid of {side} tokens that "
                f"window {window} does not tile ({reason or 'padding needed'}); choose another "
                "image_size or window_size"
            )


def load_swin_weights(model: nn.Module, path: Path) -> None:
    """Load a Swin state dict from ``path`` into ``model`` (before its norm and head are removed).

    Accepts safetensors files and ``torch.save`` state dicts, optionally under ``model`` or
    ``state_dict`` and with a ``module.`` prefix. timm's ``checkpoint_filter_fn`` converts
    original Microsoft checkpoints and resizes relative position bias tables to the window.
    Classifier keys are ignored. Raises ``ComponentBuildError`` for unreadable files and for
    missing, unexpected or differently shaped tensors.
    """
    from timm.models.swin_transformer import checkpoint_filter_fn

    state = _read_state_dict(path)
    state = {key.removeprefix("module."): value for key, value in state.items()}
    state = {key: value for key, value in state.items() if not key.startswith("head.")}
    try:
        state = checkpoint_filter_fn(state, model)
    except (RuntimeError, ValueError, KeyError, AttributeError) as error:
        raise ComponentBuildError(
            f"weights file {str(path)!r} could not be converted for {type(model).__name__} "
            f"({type(error).__name__}: {error}); use a checkpoint of the same Swin variant"
        ) from error
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = sorted(
        key for key in expected.keys() & state.keys() if expected[key].shape != state[key].shape
    )
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("reshaped", reshaped)):
        if keys:
            shown = ", ".join(keys[:_SHOWN_KEYS]) + (", ..." if len(keys) > _SHOWN_KEYS else "")
            problems.append(f"{len(keys)} {label} ({shown})")
    if problems:
        raise ComponentBuildError(
            f"weights file {str(path)!r} does not match the backbone: {'; '.join(problems)}; "
            "check variant, embed_dim, depths and num_heads against the checkpoint"
        )
    model.load_state_dict(state, strict=True)
    logger.info("loaded %d tensors from %s", len(state), path)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    hint = (
        "save the weights with safetensors.torch.save_file(state_dict, path) or "
        "torch.save(model.state_dict(), path)"
    )
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as error:  # noqa: BLE001 - safetensors raises several unrelated types
            raise ComponentBuildError(
                f"weights file {str(path)!r} is not a readable safetensors file "
                f"({type(error).__name__}); {hint}"
            ) from error
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle, zip and EOF errors all mean "corrupt"
        raise ComponentBuildError(
            f"weights file {str(path)!r} is not a readable torch state dict "
            f"({type(error).__name__}); {hint}"
        ) from error
    if isinstance(loaded, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in loaded.items()
    ):
        raise ComponentBuildError(
            f"weights file {str(path)!r} does not contain a state dict (names to tensors); {hint}"
        )
    return dict(loaded)
