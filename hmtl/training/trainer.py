"""Multi-task training: a sampler picks the task of each step; validation each epoch; early stopping;
atomic checkpoints (``last/`` with optimizer state for ``--recover``, ``best/`` for use); TensorBoard under ``log/``.

Serialization directory layout::

    config.json        the resolved config
    labels.json        label vocabularies
    metrics.json       per-epoch validation metrics, best epoch, final test metrics
    last/  best/       model.safetensors + config.json + labels.json (+ trainer_state.pt in last/)
    log/               TensorBoard event files
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hmtl.config import Config
from hmtl.data.document import Document
from hmtl.data.loading import load_datasets
from hmtl.errors import ConfigError, HmtlError
from hmtl.model import HierarchicalModel
from hmtl.registry import TASKS
from hmtl.training.batching import group_batches
from hmtl.training.evaluation import evaluate
from hmtl.training.samplers import SAMPLERS, task_probabilities, task_schedule

logger = logging.getLogger(__name__)
STATE_FILE = "trainer_state.pt"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_labels(config: Config, train_documents: dict[str, list[Document]]) -> dict:
    """Character inventory and every task's label namespaces, from the training documents only."""
    characters = sorted({c for docs in train_documents.values() for doc in docs for tok in doc.tokens for c in tok})
    tasks = {
        task.name: TASKS.get(task.type, f"tasks.{task.name}.type").label_sets(task, train_documents)
        for task in config.tasks
    }
    label_maps = {
        name: {"label_map": dataset.label_map, "keep_labels": dataset.keep_labels}
        for name, dataset in config.data.items()
        if name in train_documents and (dataset.label_map or dataset.keep_labels is not None)
    }
    return {"characters": characters, "tasks": tasks, **({"label_maps": label_maps} if label_maps else {})}


def atomic_save(write, directory: Path) -> None:
    """Write a checkpoint into a temporary folder, then swap it in, so a crash never leaves half a checkpoint."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def parse_validation_metric(spec: str) -> tuple[str, float]:
    if not spec or spec[0] not in "+-":
        raise ConfigError(f"trainer.validation_metric: {spec!r} must start with + (higher is better) or -")
    return spec[1:], 1.0 if spec[0] == "+" else -1.0


class Trainer:
    def __init__(self, config: Config, serialization_dir: str | Path, recover: bool = False, force: bool = False):
        self.config = config
        self.dir = Path(serialization_dir)
        self.recover = recover
        self.metric_name, self.metric_sign = parse_validation_metric(config.trainer.validation_metric)
        SAMPLERS.get(config.sampler.type, "sampler.type")
        self._prepare_directory(force)
        if config.trainer.num_threads:
            torch.set_num_threads(config.trainer.num_threads)
        set_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)

        self.documents = load_datasets(config)
        labels = (
            json.loads((self.dir / "labels.json").read_text())
            if recover
            else build_labels(config, {name: splits["train"] for name, splits in self.documents.items()})
        )
        self.model = HierarchicalModel(config, labels)
        self.instances = {
            split: self.model.task_instances({name: splits[split] for name, splits in self.documents.items()})
            for split in ("train", "validation", "test")
        }
        self.groups = [g for g in config.groups() if group_batches(g, self.instances["train"], 1)]
        self.optimizer = self._optimizer()
        self.steps_per_epoch = self._steps_per_epoch()
        total_updates = max(1, config.trainer.num_epochs * self.steps_per_epoch // config.trainer.accumulation_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda(total_updates))
        self.epoch, self.best_value, self.bad_epochs, self.updates = 0, -math.inf, 0, 0
        self.history: list[dict] = []
        if recover:
            self._restore()
        else:
            (self.dir / "config.json").write_text(config.model_dump_json(indent=2))
            (self.dir / "labels.json").write_text(json.dumps(labels, indent=1))

    # ----------------------------------------------------------------- setup
    def _prepare_directory(self, force: bool) -> None:
        has_run = (self.dir / "config.json").exists()
        if self.recover:
            if not (self.dir / "last" / STATE_FILE).exists():
                raise HmtlError(f"--recover: {self.dir} has no checkpoint to resume from (expected last/{STATE_FILE})")
        elif has_run:
            if not force:
                raise HmtlError(f"{self.dir} already holds a training run: pass --recover to resume it or --force to overwrite")
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _optimizer(self) -> torch.optim.Optimizer:
        trainer = self.config.trainer
        transformer, other = [], []
        for name, parameter in self.model.named_parameters():
            if parameter.requires_grad:
                (transformer if name.startswith("embedder.transformer.model.") else other).append(parameter)
        groups = [{"params": other, "lr": trainer.learning_rate}]
        if transformer:
            groups.append({"params": transformer, "lr": trainer.transformer_learning_rate})
        return torch.optim.AdamW(groups, weight_decay=trainer.weight_decay)

    def _steps_per_epoch(self) -> int:
        steps = sum(len(self._batches(group)) for group in self.groups)
        cap = self.config.trainer.max_steps_per_epoch
        return min(steps, cap) if cap else steps

    def _batches(self, group, rng: np.random.Generator | None = None) -> list[dict]:
        """A group's training batches at the batch size of its first task; shuffled with ``rng``."""
        batch_size = self.model.task(group.members[0][0]).batch_size(self.config.trainer.batch_size)
        return group_batches(group, self.instances["train"], batch_size, rng)

    def _lr_lambda(self, total: int):
        warmup = int(self.config.trainer.warmup_ratio * total)
        linear = self.config.trainer.decay == "linear"

        def factor(update: int) -> float:
            if update < warmup:
                return (update + 1) / warmup
            if linear:
                return max(0.0, (total - update) / max(1, total - warmup))
            return 1.0

        return factor

    # ----------------------------------------------------------- checkpoints
    def _save_last(self) -> None:
        def write(directory: Path) -> None:
            self.model.save_pretrained(directory)
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch,
                "best_value": self.best_value,
                "bad_epochs": self.bad_epochs,
                "updates": self.updates,
                "history": self.history,
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": json.dumps(self.rng.bit_generator.state),
            }
            torch.save(state, directory / STATE_FILE)

        atomic_save(write, self.dir / "last")

    def _restore(self) -> None:
        last = self.dir / "last"
        restored = HierarchicalModel.from_pretrained(last)
        self.model.load_state_dict(restored.state_dict())
        state = torch.load(last / STATE_FILE, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best_value = state["epoch"], state["best_value"]
        self.bad_epochs, self.updates, self.history = state["bad_epochs"], state["updates"], state["history"]
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        logger.info("resuming %s after epoch %d", self.dir, self.epoch)

    def _write_metrics(self, test: dict | None = None) -> None:
        best = max(self.history, key=lambda h: self.metric_sign * h["validation"].get(self.metric_name, -math.inf), default=None)
        summary = {"validation_metric": self.config.trainer.validation_metric, "epochs": self.history}
        if best is not None:
            summary["best_epoch"] = best["epoch"]
            summary["best_validation"] = best["validation"]
        if test is not None:
            summary["test"] = test
        (self.dir / "metrics.json").write_text(json.dumps(summary, indent=2))

    # --------------------------------------------------------------- training
    def train(self) -> dict:
        from torch.utils.tensorboard import SummaryWriter

        trainer = self.config.trainer
        writer = SummaryWriter(str(self.dir / "log"))
        self.model.train()
        while self.epoch < trainer.num_epochs and self.bad_epochs < trainer.patience:
            started = time.perf_counter()
            train_losses, task_steps = self._train_epoch(writer)
            self.epoch += 1
            validation = evaluate(self.model, self.instances["validation"], trainer.batch_size, "validating", trainer.bf16)
            value = validation.get(self.metric_name)
            if value is None:
                raise ConfigError(
                    f"trainer.validation_metric: {self.metric_name!r} is not among the metrics {sorted(validation)}"
                )
            improved = self.metric_sign * value > self.best_value
            if improved:
                self.best_value, self.bad_epochs = self.metric_sign * value, 0
                atomic_save(self.model.save_pretrained, self.dir / "best")
            else:
                self.bad_epochs += 1
            record = {
                "epoch": self.epoch,
                "seconds": round(time.perf_counter() - started, 1),
                "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "updates": self.updates,  # optimizer steps so far: HMTL's "updates to the best dev score"
                "task_steps": task_steps,
                "train_loss": train_losses,
                "validation": validation,
            }
            self.history.append(record)
            for key, metric in validation.items():
                writer.add_scalar(f"validation/{key}", metric, self.epoch)
            logger.info("epoch %d: %s = %.2f%s", self.epoch, self.metric_name, value, " (best)" if improved else "")
            self._save_last()
            self._write_metrics()
        writer.close()
        return self.test()

    def _train_epoch(self, writer) -> tuple[dict[str, float], dict[str, int]]:
        """One epoch of sampled steps; returns each task's mean loss and each group's number of batches."""
        trainer = self.config.trainer
        batches = {group.name: self._batches(group, self.rng) for group in self.groups}
        groups = {group.name: group for group in self.groups}
        probabilities = task_probabilities({name: len(b) for name, b in batches.items()}, self.config.sampler)
        schedule = task_schedule(probabilities, self.steps_per_epoch, self.rng)
        for name, p in probabilities.items():
            writer.add_scalar(f"sampling/{name}", p, self.epoch + 1)
        cursors = {name: 0 for name in batches}
        steps = {name: 0 for name in batches}
        totals: dict[str, list] = {}
        progress = tqdm(schedule, desc=f"epoch {self.epoch + 1}/{trainer.num_epochs}", disable=None)
        for step, name in enumerate(progress, start=1):
            if cursors[name] == len(batches[name]):  # a group sampled more than its size starts a new pass
                batches[name] = self._batches(groups[name], self.rng)
                cursors[name] = 0
            batch = batches[name][cursors[name]]
            cursors[name] += 1
            steps[name] += 1
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=trainer.bf16):
                losses = self.model(batch)
            loss = sum(losses.values())
            (loss / trainer.accumulation_steps).backward()
            for task, value in losses.items():
                total = totals.setdefault(task, [0.0, 0])
                total[0] += value.item()
                total[1] += 1
            if step % trainer.accumulation_steps == 0 or step == len(schedule):
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), trainer.grad_clipping)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.updates += 1
                if self.updates % 20 == 0:
                    for task, value in losses.items():
                        writer.add_scalar(f"loss/{task}", value.item(), self.updates)
                    for i, group in enumerate(self.optimizer.param_groups):
                        writer.add_scalar(f"learning_rate/{'transformer' if i else 'main'}", group["lr"], self.updates)
            if step % 50 == 0:
                progress.set_postfix({t: f"{s / max(n, 1):.3f}" for t, (s, n) in totals.items()})
            if progress.disable and step % max(1, len(schedule) // 10) == 0:  # no progress bar in a log file
                logger.info("epoch %d: step %d/%d, mean losses %s", self.epoch + 1, step, len(schedule),
                            {t: round(s / max(n, 1), 3) for t, (s, n) in totals.items()})
        mean_losses = {task: s / max(n, 1) for task, (s, n) in totals.items()}
        for task, value in mean_losses.items():
            writer.add_scalar(f"epoch_loss/{task}", value, self.epoch + 1)
        return mean_losses, steps

    def test(self) -> dict:
        """Evaluate the best checkpoint on the test splits and record it in metrics.json."""
        if not (self.dir / "best").exists():
            raise HmtlError(f"{self.dir}: no best checkpoint was written")
        best = HierarchicalModel.from_pretrained(self.dir / "best")
        test = evaluate(best, self.instances["test"], self.config.trainer.batch_size, "testing", self.config.trainer.bf16) if self.instances["test"] else {}
        self._write_metrics(test)
        return test
