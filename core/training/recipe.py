"""The ``supervised`` recipe: one training loop for single- and multi-task models.

Per epoch the loop trains on the ``train`` split, evaluates on ``val`` every ``eval_every``
epochs, appends a line to ``metrics.jsonl``, saves a checkpoint when due and calls the
optional ``on_epoch_end`` callback. This order lets a resumed run repeat an uninterrupted one
bitwise. The checkpoint of epoch N is taken after its evaluation, so the random state it
stores is the one that epoch N + 1 starts from. Data order comes from a generator seeded with
``seed + epoch``, not from the global generator.
"""

from __future__ import annotations

import logging
import math
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from adaptlab.core import __version__
from adaptlab.core.checkpoint import (
    load_latest_checkpoint,
    pack_state,
    prune_checkpoints,
    read_best,
    save_checkpoint,
    unpack_state,
    write_best,
)
from adaptlab.core.compose import build_data, build_model, parameter_groups
from adaptlab.core.contracts import RunContext
from adaptlab.core.errors import CheckpointError, RunError
from adaptlab.core.runs import (
    CHECKPOINT_DIR,
    SPEC_FILE,
    SUMMARY_FILE,
    MetricsLog,
    atomic_write_json,
    format_count,
)
from adaptlab.core.training.config import SupervisedConfig
from adaptlab.core.training.data import (
    deterministic_algorithms,
    make_loader,
    move_to_device,
    resolve_device,
    resolve_precision,
    seed_everything,
)
from adaptlab.core.training.evaluation import Monitor, compute_loss, evaluate_model
from adaptlab.core.training.optim import build_optimizer, build_scheduler
from adaptlab.core.training.progress import EpochProgress
from adaptlab.core.training.state import (
    TrainerProgress,
    capture_rng_state,
    load_model_weights,
    model_weights,
    restore_rng_state,
)

__all__ = ["EpochCallback", "SupervisedRecipe", "Trainer"]

logger = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float], "Path | None"], Any]
"""``on_epoch_end(epoch, metrics, checkpoint_path)``, called after every epoch.

``metrics`` contains ``epoch``, ``step``, ``lr``, ``train/loss`` and, on evaluation epochs, the
validation metrics under their monitor names (``loss``, ``TASK/METRIC``). ``checkpoint_path``
is the JSON file of the checkpoint saved that epoch, or ``None``.
"""

_LOSS_DISPLAY_EVERY = 10


class SupervisedRecipe:
    """Registered factory of recipe ``supervised``: ``SupervisedRecipe(config).run(context)``."""

    def __init__(self, config: SupervisedConfig) -> None:
        self.config = config

    def run(self, context: RunContext) -> dict[str, Any]:
        """Train inside ``context.run_dir`` and return the summary also written to summary.json."""
        trainer = Trainer(
            self.config,
            context.spec,
            Path(context.run_dir),
            registry=context.registry,
            on_epoch_end=context.on_epoch_end,
        )
        return trainer.fit(resume=context.resume)


class Trainer:
    """State and steps of one supervised run; :meth:`fit` is the entry point."""

    def __init__(
        self,
        config: SupervisedConfig,
        spec: Any,
        run_dir: Path,
        registry: Any = None,
        on_epoch_end: EpochCallback | None = None,
    ) -> None:
        self.config = config
        self.spec = spec
        self.run_dir = run_dir
        self.registry = registry
        self.on_epoch_end = on_epoch_end
        self.checkpoint_dir = run_dir / CHECKPOINT_DIR
        self.metrics_log = MetricsLog(run_dir)
        self.monitor = Monitor.create(config.monitor, config.mode)
        self.progress = TrainerProgress()
        self.resumed_from: int | None = None
        self.model: Any = None

    # --- setup -----------------------------------------------------------------------

    def _setup(self) -> None:
        config = self.config
        seed_everything(self.spec.seed)
        self.device = resolve_device(config.device)
        self.precision = resolve_precision(config.precision, self.device)
        self.bundle = build_data(self.spec, self.registry)
        self.model = build_model(self.spec, self.bundle.tasks, self.registry).to(self.device)
        self._check_monitor_task()
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.model, config.optimizer)

        self.train_split = self.bundle.splits["train"]
        if len(self.train_split) == 0:
            raise RunError(f"the train split of dataset {self.spec.data.name!r} is empty")
        self.batches_per_epoch = math.ceil(len(self.train_split) / config.batch_size)
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / config.accumulate_steps)
        self.scheduler = build_scheduler(
            self.optimizer, config.scheduler, self.steps_per_epoch, config.epochs
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision.scaled)
        self.val_loader = make_loader(
            self.bundle.splits["val"],
            config.eval_batch_size or config.batch_size,
            shuffle=False,
            seed=self.spec.seed,
            num_workers=config.num_workers,
            collate_fn=self.bundle.collate_fn,
            pin_memory=self.device.type == "cuda",
        )

        counts = parameter_groups(self.model)
        trainable = sum(group["trainable"] for group in counts.values())
        total = sum(group["total"] for group in counts.values())
        logger.info(
            "training %s: %s of %s, %s of %s parameters trainable, device %s, precision %s",
            self.run_dir.name,
            format_count(config.epochs, "epoch"),
            format_count(self.steps_per_epoch, "optimizer step"),
            f"{trainable:,}",
            f"{total:,}",
            self.device,
            self.precision.name,
        )

    def _check_monitor_task(self) -> None:
        """Reject a monitor ``TASK/METRIC`` whose task has no head before training starts."""
        task = self.monitor.name.rpartition("/")[0]
        if task and task != "policy" and task not in self.model.heads:
            raise RunError(
                f"train.monitor {self.monitor.name!r} names task {task!r}, which has no head; "
                f"the tasks are {', '.join(self.model.heads)}"
            )

    def _resume(self) -> int:
        """Restore the newest valid checkpoint; return the epoch it continues after."""
        loaded = load_latest_checkpoint(self.checkpoint_dir)
        if loaded is None:
            logger.warning(
                "no checkpoint in %s yet; training %s again from epoch 1",
                self.checkpoint_dir,
                self.run_dir.name,
            )
            self.metrics_log.truncate_after(0)
            return 0

        checkpoint, tensors = loaded
        state = checkpoint.state
        if state.get("recipe") != "supervised":
            raise CheckpointError(
                f"checkpoint {checkpoint.state_path} was written by recipe "
                f"{state.get('recipe')!r}, not 'supervised'; resume it with that recipe"
            )
        load_model_weights(self.model, tensors, state.get("weights", "all"))
        try:
            self.optimizer.load_state_dict(unpack_state(state["optimizer"], tensors))
            self.scheduler.load_state_dict(unpack_state(state["scheduler"], tensors))
        except (KeyError, ValueError, RuntimeError) as error:
            raise CheckpointError(
                f"cannot restore the optimizer from {checkpoint.state_path}: {error}; the spec "
                "builds other trainable parameters than the checkpoint contains"
            ) from None

        scaler_state = unpack_state(state.get("scaler", {}), tensors)
        if scaler_state and self.scaler.is_enabled():
            self.scaler.load_state_dict(scaler_state)
        elif scaler_state or self.scaler.is_enabled():
            logger.warning(
                "fp16 loss scaling was %s when the checkpoint was saved but is %s now (another "
                "device or precision); the resumed run will not repeat an uninterrupted one",
                "on" if scaler_state else "off",
                "on" if self.scaler.is_enabled() else "off",
            )

        self.progress = TrainerProgress.from_data(unpack_state(state["progress"], tensors))
        restore_rng_state(state["rng"], tensors)

        dropped = self.metrics_log.truncate_after(checkpoint.epoch)
        self._fill_epoch_metrics_from_log()
        logger.info(
            "resumed %s after epoch %d from %s (dropped %s of later epochs)",
            self.run_dir.name,
            checkpoint.epoch,
            checkpoint.state_path.name,
            format_count(dropped, "metrics line"),
        )
        return checkpoint.epoch

    def _fill_epoch_metrics_from_log(self) -> None:
        """Fill ``best_metrics`` and ``last_eval_epoch`` from metrics.jsonl when the resumed
        checkpoint predates those fields of its progress record."""
        progress = self.progress
        needs_best = progress.best_epoch is not None and not progress.best_metrics
        needs_last = progress.last_eval_epoch is None and bool(progress.last_metrics)
        if not (needs_best or needs_last):
            return
        evaluated = [record for record in self.metrics_log.read() if record.get("val")]
        if needs_best:
            for record in evaluated:
                if record.get("epoch") == progress.best_epoch:
                    progress.best_metrics = dict(record["val"])
        if needs_last and evaluated:
            progress.last_eval_epoch = evaluated[-1].get("epoch")

    # --- the loop --------------------------------------------------------------------

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train (or continue training) and return the summary written to summary.json."""
        with deterministic_algorithms(self.config.deterministic):
            try:
                self._setup()
                if resume:
                    self.resumed_from = self._resume()
                self._write_summary("running")
                status = self._train_epochs()
            except KeyboardInterrupt:
                self._write_summary("interrupted")
                raise
            except Exception as error:
                self._write_summary("failed", error)
                raise
        summary = self._write_summary(status)
        logger.info("run %s finished: %s", self.run_dir.name, status)
        return summary

    def _train_epochs(self) -> str:
        config = self.config
        if self.progress.stopped_early or self.progress.epoch >= config.epochs:
            logger.info(
                "run %s already finished after epoch %d; nothing left to train",
                self.run_dir.name,
                self.progress.epoch,
            )
            return "early_stopped" if self.progress.stopped_early else "completed"
        with EpochProgress(config.progress) as bar:
            for epoch in range(self.progress.epoch + 1, config.epochs + 1):
                if self._run_epoch(epoch, bar):
                    return "early_stopped"
        return "completed"

    def _run_epoch(self, epoch: int, bar: EpochProgress) -> bool:
        """Train, evaluate, record and checkpoint one epoch; return whether to stop early."""
        config = self.config
        progress = self.progress
        started = time.monotonic()
        train_loss, lr = self._train_epoch(epoch, bar)

        metrics: dict[str, float] = {}
        improved = False
        stop = False
        monitor_missing = False
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            metrics = evaluate_model(
                self.model,
                self.val_loader,
                self.device,
                self.precision,
                derived=self.bundle.derived_metrics,
            )
            progress.last_metrics, progress.last_eval_epoch = metrics, epoch
            # A misspelt monitor shows only now. The epoch is still recorded and checkpointed
            # below before the run fails, so that its training is not lost.
            monitor_missing = self.monitor.name not in metrics
            if not monitor_missing:
                value = self.monitor.read(metrics)
                improved = self.monitor.improves(value, progress.best_value)
                if improved:
                    progress.best_value, progress.best_epoch = value, epoch
                    progress.best_metrics = metrics
                stop = self._update_early_stopping(value)

        elapsed = time.monotonic() - started
        progress.epoch = epoch
        progress.last_train_loss = train_loss
        progress.elapsed_s += elapsed
        progress.stopped_early = stop
        # The metrics line goes first: a crash before the checkpoint leaves a line that the
        # resume drops, never a checkpoint without its line.
        self.metrics_log.append(
            {
                "epoch": epoch,
                "step": progress.global_step,
                "lr": lr,
                "train": {"loss": train_loss},
                "val": metrics,
                "time_s": round(elapsed, 4),
            }
        )
        keep_best = config.checkpoint.keep_best
        due = epoch % config.checkpoint.every_epochs == 0 or epoch == config.epochs
        checkpoint_path = None
        if due or stop or (improved and keep_best) or monitor_missing:
            checkpoint_path = self._save_checkpoint(epoch, improved and keep_best)
        self._log_epoch(epoch, train_loss, lr, metrics, improved, elapsed)
        if monitor_missing:
            raise self._unknown_monitor_error(epoch, metrics, checkpoint_path)
        if self.on_epoch_end is not None:
            reported = {
                "epoch": epoch,
                "step": progress.global_step,
                "lr": lr,
                "train/loss": train_loss,
                **metrics,
            }
            self.on_epoch_end(epoch, reported, checkpoint_path)
        if stop:
            logger.info(
                "early stopping after epoch %d: %s has not improved by more than %g for %s; "
                "best %.6g at epoch %s",
                epoch,
                self.monitor.name,
                config.early_stopping.min_delta,
                format_count(progress.stale_evaluations, "evaluation"),
                progress.best_value,
                progress.best_epoch,
            )
        return stop

    def _unknown_monitor_error(
        self, epoch: int, metrics: dict[str, float], checkpoint_path: Path
    ) -> RunError:
        return RunError(
            f"train.monitor {self.monitor.name!r} is not among the validation metrics "
            f"({', '.join(sorted(metrics))}). Epoch {epoch} is saved in "
            f"{CHECKPOINT_DIR}/{checkpoint_path.name}, so set train.monitor to one of those "
            f"metrics in {self.run_dir / SPEC_FILE} and continue the run with "
            f"`adaptlab train --resume {shlex.quote(str(self.run_dir))}`"
        )

    def _update_early_stopping(self, value: float) -> bool:
        stopping = self.config.early_stopping
        if stopping is None:
            return False
        progress = self.progress
        if self.monitor.improves(value, progress.stopping_reference, stopping.min_delta):
            progress.stopping_reference = value
            progress.stale_evaluations = 0
            return False
        progress.stale_evaluations += 1
        return progress.stale_evaluations >= stopping.patience

    def _train_epoch(self, epoch: int, bar: EpochProgress) -> tuple[float, float]:
        """Run one pass over the train split; return the mean batch loss and the last lr."""
        config = self.config
        model = self.model
        model.train()
        loader = make_loader(
            self.train_split,
            config.batch_size,
            shuffle=True,
            seed=self.spec.seed + epoch,
            num_workers=config.num_workers,
            collate_fn=self.bundle.collate_fn,
            pin_memory=self.device.type == "cuda",
        )
        batches = len(loader)
        accumulate = config.accumulate_steps
        bar.start_epoch(epoch, config.epochs, batches)

        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        lr = float(self.optimizer.param_groups[0]["lr"])
        for index, (inputs, targets) in enumerate(loader):
            # Gradients of `accumulate` batches are summed before one optimizer step. Each loss
            # is divided by its group's real size, so a short last group also yields a mean.
            group_start = index - index % accumulate
            group_size = min(accumulate, batches - group_start)
            inputs = move_to_device(inputs, self.device)
            targets = move_to_device(targets, self.device)
            with self.precision.autocast(self.device):
                outputs = model(inputs)
                loss, _ = compute_loss(model, outputs, targets)
            self.scaler.scale(loss / group_size).backward()
            loss_sum += loss.detach().to(torch.float64)

            if index + 1 == group_start + group_size:
                lr = self._optimizer_step()
                if self.progress.global_step % config.log_every == 0:
                    logger.info(
                        "epoch %d step %d: loss %.4f, lr %.3g",
                        epoch,
                        self.progress.global_step,
                        float(loss.detach()),
                        lr,
                    )
            if bar.enabled:
                shown = float(loss.detach()) if index % _LOSS_DISPLAY_EVERY == 0 else None
                bar.advance(shown)

        mean_loss = float(loss_sum) / batches
        if not math.isfinite(mean_loss):
            raise RunError(
                f"the training loss became {mean_loss} in epoch {epoch}; lower "
                "train.optimizer.lr, set train.grad_clip, or use train.precision=fp32"
            )
        return mean_loss, lr

    def _optimizer_step(self) -> float:
        """Clip, step the optimizer and the schedule; return the lr this step used."""
        if self.config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.trainable, self.config.grad_clip)
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.progress.global_step += 1
        return lr

    # --- checkpoints, logs and summary -----------------------------------------------

    def _save_checkpoint(self, epoch: int, is_best: bool) -> Path:
        which = self.config.checkpoint.weights
        tensors = model_weights(self.model, which)
        state = {
            "recipe": "supervised",
            "weights": which,
            "progress": pack_state(self.progress.to_data(), "progress", tensors),
            "optimizer": pack_state(self.optimizer.state_dict(), "optimizer", tensors),
            "scheduler": pack_state(self.scheduler.state_dict(), "scheduler", tensors),
            "scaler": pack_state(self.scaler.state_dict(), "scaler", tensors),
            "rng": capture_rng_state(tensors),
        }
        path = save_checkpoint(
            self.checkpoint_dir, epoch, tensors, state, adaptlab_version=__version__
        )
        if is_best:
            write_best(
                self.checkpoint_dir,
                epoch,
                self.monitor.name,
                self.monitor.mode,
                float(self.progress.best_value),
            )
        keep = set()
        if self.config.checkpoint.keep_best and self.progress.best_epoch is not None:
            keep.add(self.progress.best_epoch)
        prune_checkpoints(self.checkpoint_dir, self.config.checkpoint.keep_last, keep)
        return path

    def _log_epoch(
        self,
        epoch: int,
        train_loss: float,
        lr: float,
        metrics: dict[str, float],
        improved: bool,
        elapsed: float,
    ) -> None:
        shown = ", ".join(
            f"{name} {value:.4g}" for name, value in metrics.items() if not name.endswith("/loss")
        )
        logger.info(
            "epoch %d/%d: train loss %.4f%s%s, lr %.3g, %.1f s",
            epoch,
            self.config.epochs,
            train_loss,
            f", val {shown}" if shown else "",
            f" (new best {self.monitor.name})" if improved else "",
            lr,
            elapsed,
        )

    def _write_summary(self, status: str, error: BaseException | None = None) -> dict[str, Any]:
        progress = self.progress
        best = None
        if progress.best_epoch is not None:
            best = {"value": progress.best_value, "epoch": progress.best_epoch}
            pointer = read_best(self.checkpoint_dir)
            if pointer is not None and pointer.get("epoch") == progress.best_epoch:
                best["checkpoint"] = f"{CHECKPOINT_DIR}/{pointer['checkpoint']}"
        summary: dict[str, Any] = {
            "status": status,
            "run_dir": str(self.run_dir),
            "recipe": "supervised",
            "epochs": self.config.epochs,
            "epochs_completed": progress.epoch,
            "global_step": progress.global_step,
            "monitor": {"name": self.monitor.name, "mode": self.monitor.mode},
            "best": best,
            "final_metrics": progress.last_metrics,
            "final_metrics_epoch": progress.last_eval_epoch,
            "best_metrics": progress.best_metrics,
            "best_metrics_epoch": progress.best_epoch if progress.best_metrics else None,
            "final_train_loss": progress.last_train_loss,
            "wall_time_s": round(progress.elapsed_s, 3),
            "resumed_from_epoch": self.resumed_from,
        }
        if self.model is not None:
            groups = parameter_groups(self.model)
            summary["parameters"] = {
                "trainable": sum(group["trainable"] for group in groups.values()),
                "total": sum(group["total"] for group in groups.values()),
                "groups": groups,
            }
            summary["device"] = str(self.device)
            summary["precision"] = self.precision.name
        if error is not None:
            summary["error"] = f"{type(error).__name__}: {error}"
        atomic_write_json(self.run_dir / SUMMARY_FILE, summary)
        return summary
