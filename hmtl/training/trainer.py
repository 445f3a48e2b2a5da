"""Multi-task training: a sampler picks the task of each step; validation each epoch; early stopping;
atomic checkpoints (``last/`` with optimizer state for ``--recover``, ``best/`` for use); TensorBoard under ``log/``.

Serialization directory layout::

    config.json        the resolved config
    labels.json        label vocabularies
    metrics.json       per-epoch validation metrics, best epoch, final test metrics
    last/  best/       model.safetensors + config.json + labels.json (+ trainer_state.pt in last/)
    log/               TensorBoard event files
    mlflow_run.json    the MLflow run of this training (with trainer.mlflow), which --recover continues
    .lock              while a training runs: its pid and host (another training into the folder is refused)

Under torchrun (hmtl.training.distributed) every rank trains on its shard of the batches in DDP; rank 0 alone
validates, tests and writes all of the above, and hands its results to the other ranks.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import torch

from hmtl.config import Config, namespace
from hmtl.data.document import Document
from hmtl.data.loading import load_datasets
from hmtl.device import autocast, resolve_device
from hmtl.errors import ConfigError, HmtlError
from hmtl.model import LABELS_FILE, HierarchicalModel, load_matching_weights, read_json, saved_model_dir
from hmtl.progress import Progress, duration
from hmtl.registry import TASKS
from hmtl.tracking import Tracker, make_tracker
from hmtl.training import distributed
from hmtl.training.batching import collated, group_batches
from hmtl.training.evaluation import evaluate, log_unreachable, tune
from hmtl.training.samplers import task_probabilities, task_schedule

logger = logging.getLogger(__name__)
STATE_FILE = "trainer_state.pt"
LOCK_FILE = ".lock"


def peak_memory_mb() -> int | None:
    """Peak resident memory of this process; None where the ``resource`` module is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_gpu_memory_mb(device: torch.device) -> int | None:
    """Peak memory PyTorch allocated on ``device`` since the process started; None off a GPU."""
    return round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None


def rng_states(device: torch.device) -> dict:
    """This process's random streams that training draws from: the CPU's, and the GPU's it trains on (dropout
    masks on a GPU come from the GPU's generator), so a resumed run draws what the uninterrupted one drew."""
    states = {"torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict, device: torch.device) -> None:
    """Restore ``rng_states``; a GPU state is restored only when training resumes on a GPU (on the CPU it has no use)."""
    torch.set_rng_state(states["torch_rng"])
    if device.type == "cuda" and states.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(states["cuda_rng"], device)


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


COMPLETE = "COMPLETE"  # written last into a new checkpoint folder: its presence means every file is there


def warn_single_group(config: Config) -> None:
    """A sampler draws among the chain's groups; with one group every sampler trains the same steps, which a user
    asking for another sampler (to balance corpora, say) would not expect. Each dataset of a task becomes its own
    group when the chain names its namespaces."""
    groups = config.groups()
    if config.sampler.type == "proportional" or len(groups) != 1:
        return
    (group,) = groups
    advice = ""
    if len(group.members) == 1 and len(group.members[0][1]) > 1:
        task, datasets = group.members[0]
        chain = "|".join(namespace(dataset, task) for dataset in datasets)
        advice = f'; to sample its datasets, give each its group: "chain": "{chain}"'
    logger.warning("sampler.type %r has one group to draw from (%s): every sampler trains the same steps%s",
                   config.sampler.type, group.name, advice)


def atomic_save(write, directory: Path) -> None:
    """Write a checkpoint into ``<dir>.tmp/`` (marker file last), then swap it in, so a crash never leaves half a
    checkpoint; ``settle_checkpoint`` finishes a swap that a crash interrupted."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    (tmp / COMPLETE).touch()
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def settle_checkpoint(directory: Path) -> None:
    """Bring a checkpoint folder to a clean state after a crash at any point of ``atomic_save``: the newest complete
    copy (``.tmp`` with its marker, else the folder itself, else ``.old``, which was complete when it was renamed)
    becomes the folder; partial copies are removed."""
    tmp = directory.with_name(directory.name + ".tmp")
    old = directory.with_name(directory.name + ".old")
    if (tmp / COMPLETE).exists():
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
        os.replace(tmp, directory)
    elif not directory.exists() and old.exists():
        os.replace(old, directory)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def _lock_holder(path: Path) -> dict | None:
    """Who holds the lock file ``path``: its ``{"pid", "host"}``, or None when it is stale (that process is gone)."""
    try:
        holder = json.loads(path.read_text())
        pid, host = int(holder["pid"]), str(holder["host"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):  # being written this instant, or damaged
        try:
            fresh = time.time() - path.stat().st_mtime < 10
        except OSError:
            return None
        return {"pid": "?", "host": socket.gethostname()} if fresh else None
    if host != socket.gethostname() or os.name == "nt":  # no way to tell whether it runs: assume it does
        return {"pid": pid, "host": host}
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return None
    except PermissionError:  # exists, under another user
        pass
    return {"pid": pid, "host": host}


def acquire_lock(directory: Path) -> Path:
    """Create ``<directory>/.lock`` (atomically, O_EXCL) with this process's pid and host, taking over a stale one;
    an HmtlError when a running training holds it."""
    path = directory / LOCK_FILE
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is None:
                path.unlink(missing_ok=True)
                continue
            where = "" if holder["host"] == socket.gethostname() else f" on host {holder['host']}"
            raise HmtlError(f"--serialization_dir: {directory} is being trained by another run (pid {holder['pid']}"
                            f"{where}); wait for it, or pick another folder (if that run is gone, delete {path})") from None
        with os.fdopen(fd, "w") as file:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, file)
        return path
    raise HmtlError(f"--serialization_dir: could not take over the stale lock {path}; delete it and start again")


def read_trainer_state(last: Path, mmap: bool = False) -> dict:
    """``last/trainer_state.pt`` with its tensors on the CPU (a state written on a GPU loads anywhere), or the one-line
    error for a damaged file or one holding objects other than tensors and plain data (never unpickled as code)."""
    try:
        return torch.load(last / STATE_FILE, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:  # objects weights_only loading refuses (foreign, or malicious), or a damaged file
        reason = ("it holds objects hmtl will not load" if "Weights only load failed" in str(error)
                  else (str(error).strip().splitlines() or [type(error).__name__])[0])
        raise HmtlError(f"{last / STATE_FILE} is not a trainer state this version of hmtl wrote ({reason}); if it "
                        "is damaged, --force starts the run over, deleting it") from None


class LossTotals:
    """Each task's loss sum and step count over an epoch. The sums stay on the model's device, so a GPU step never
    waits to hand its losses to Python; they are read only when a checkpoint, the progress line or the epoch's end
    needs them (``read``: {task: [sum, count]}, what ``last/`` keeps)."""

    def __init__(self, saved: dict[str, list] | None = None):
        self.sums = {task: total for task, (total, _) in (saved or {}).items()}
        self.counts = {task: count for task, (_, count) in (saved or {}).items()}

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for task, value in losses.items():
            self.sums[task] = self.sums.get(task, 0.0) + value.detach().float()
            self.counts[task] = self.counts.get(task, 0) + 1

    def read(self) -> dict[str, list]:
        return {task: [float(total), self.counts[task]] for task, total in self.sums.items()}


class _NoWriter:
    """TensorBoard on the ranks that write nothing."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def loading_table(report: dict[str, dict[str, int]]) -> str:
    """``load_matching_weights``' report as a table: one row per module, tensors loaded / new / skipped."""
    width = max(len(module) for module in report)
    rows = [f"{'module':<{width}}  loaded  new  skipped"]
    rows += [f"{module:<{width}}  {c['loaded']:>6}  {c['new']:>3}  {c['skipped']:>7}" for module, c in report.items()]
    return "\n".join(rows)


def parse_validation_metric(spec: str) -> tuple[str, float]:
    """``"+MEAN__all"`` -> ("MEAN__all", 1.0); the name and the sign were checked at config load."""
    return spec[1:], 1.0 if spec[0] == "+" else -1.0


class Trainer:
    def __init__(self, config: Config, serialization_dir: str | Path, recover: bool = False, force: bool = False,
                 init_from: str | Path | None = None):
        """``init_from``: a trained run (or saved model folder) whose weights start this model wherever their name
        and shape match; new tasks and namespaces start fresh."""
        if init_from is not None and recover:
            raise HmtlError("init_from: a resumed run continues from its own checkpoint")
        source = saved_model_dir(init_from) if init_from is not None else None
        self.config = config
        self.device = resolve_device(config.trainer.device)  # a GPU asked for and missing: an error before any data
        if config.trainer.fp16 and self.device.type != "cuda":
            raise HmtlError(f"trainer.fp16: float16 autocast needs a CUDA device (this run trains on {self.device}, "
                            "where its LSTMs have no float16 kernels); use \"bf16\": true instead")
        self.dist = distributed.setup(self.device)  # torchrun: this process's rank; else the single-process no-op
        self.tracker, self.lock = Tracker(), None  # the other ranks track and write nothing

        def make_main_tracker() -> None:
            self.tracker = make_tracker(config)  # trainer.mlflow: checked (installed?) before any data is read

        self.dist.run_on_main(make_main_tracker)
        self.dir = Path(serialization_dir)
        self.recover = recover
        self.metric_name, self.metric_sign = parse_validation_metric(config.trainer.validation_metric)
        warn_single_group(config)
        self.dist.run_on_main(lambda: self._prepare_directory(force))
        try:
            if recover:
                self._check_world_size()  # before any corpus is read
            self._build(source)
        except BaseException:
            self._release_lock()
            raise

    def _build(self, source: Path | None) -> None:
        config, recover = self.config, self.recover
        if config.trainer.num_threads:
            torch.set_num_threads(config.trainer.num_threads)
        set_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)

        used = sorted({d for t in config.tasks for d in t.datasets})
        logger.info("reading %d dataset(s): %s", len(used), ", ".join(used))
        self.documents = load_datasets(config)
        labels = (
            json.loads((self.dir / "labels.json").read_text())
            if recover
            else build_labels(config, {name: splits["train"] for name, splits in self.documents.items()})
        )
        if source is not None:  # the character CNN keeps its rows: characters it never saw are unknown ones
            labels["characters"] = read_json(source / LABELS_FILE)["characters"]
        self.model = HierarchicalModel(config, labels)
        if source is not None:
            report = load_matching_weights(self.model, source)
            logger.info("initialised from %s:\n%s", source, loading_table(report))
            if self.dist.is_main:
                (self.dir / "init_from.json").write_text(json.dumps({"source": str(source), "modules": report}, indent=2))
        self.model.to(self.device)
        logger.info("training on %s%s", self.device, " (bf16 autocast)" if config.trainer.bf16 else
                    " (fp16 autocast, gradient scaling)" if config.trainer.fp16 else "")
        logger.info("preparing features of every split (a frozen transformer's states are computed as batches first use them)")
        self.instances = {
            split: self.model.task_instances({name: splits[split] for name, splits in self.documents.items()})
            for split in ("train", "validation", "test")
        }
        if self.dist.is_main:
            for split, found in self.instances.items():
                log_unreachable(self.model, found, split)
        sizes = {group: len(self._batches(group)) for group in config.groups()}
        self.groups = [group for group, size in sizes.items() if size]  # groups without training data are left out
        self.optimizer = self._optimizer()
        cap = config.trainer.max_steps_per_epoch
        self.steps_per_epoch = min(sum(sizes.values()), cap) if cap else sum(sizes.values())
        # under torchrun a step trains one batch on every rank: W times fewer steps (the LR schedule follows)
        self.steps_per_epoch = math.ceil(self.steps_per_epoch / self.dist.world_size)
        total_updates = max(1, config.trainer.num_epochs * self.steps_per_epoch // config.trainer.accumulation_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda(total_updates))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.trainer.fp16)  # fp16 gradients underflow
        self.epoch, self.best_value, self.bad_epochs, self.updates = 0, -math.inf, 0, 0
        self.history: list[dict] = []
        self.resume_epoch: dict | None = None
        if self.dist.world_size > 1:  # the same weights on every rank (same seed), other dropout masks
            torch.manual_seed(int(np.random.SeedSequence([config.seed, self.dist.rank]).generate_state(1)[0]))
        if recover:
            self._restore()
        elif self.dist.is_main:
            (self.dir / "config.json").write_text(config.model_dump_json(indent=2))
            (self.dir / "labels.json").write_text(json.dumps(labels, indent=1))
        self.ddp = self.dist.wrap(self.model)  # the training steps go through DDP; the rest uses self.model
        if self.dist is not distributed.SINGLE:
            logger.info("data-parallel over %d process(es), gradients through %s", self.dist.world_size,
                        "NCCL" if self.device.type == "cuda" else "gloo")

    # ----------------------------------------------------------------- setup
    def _prepare_directory(self, force: bool) -> None:
        if self.dir.exists() and not self.dir.is_dir():
            raise HmtlError(f"--serialization_dir: {self.dir} is a file; give a folder (new or an earlier run's)")
        if self.dir.is_dir():  # before anything is read or removed: a running training keeps its folder
            self.lock = acquire_lock(self.dir)
        try:
            self._check_directory(force)
            if self.lock is None:
                self.lock = acquire_lock(self.dir)
        except BaseException:
            self._release_lock()
            raise

    def _release_lock(self) -> None:
        if self.lock is not None:
            self.lock.unlink(missing_ok=True)
            self.lock = None

    def _check_directory(self, force: bool) -> None:
        has_run = (self.dir / "config.json").exists()
        for checkpoint in ("last", "best"):
            settle_checkpoint(self.dir / checkpoint)
        has_checkpoint = (self.dir / "last" / STATE_FILE).exists()
        if self.recover:
            if not has_checkpoint:
                raise HmtlError(f"--recover: {self.dir} has no checkpoint to resume from (expected last/{STATE_FILE}): "
                                "nothing to resume, so run the same command with --force instead of --recover to start over")
        elif has_run:
            if not force:
                if has_checkpoint:
                    raise HmtlError(f"{self.dir} already holds a training run: pass --recover to resume it or --force to overwrite")
                raise HmtlError(f"{self.dir} holds a run that stopped before its first checkpoint, so there is nothing "
                                "to resume: pass --force to start it over")
            for child in self.dir.iterdir():  # all but our lock
                if child.name != LOCK_FILE:
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
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
    def _save_last(self, in_epoch: dict | None = None) -> None:
        """``in_epoch``: where an unfinished epoch stands (its step, the random state it started from, its losses
        so far), so ``--recover`` replays its batch order and continues with the next step. Under torchrun every
        rank calls it: rank 0 writes, with every rank's random state and losses so far."""
        ranks = None
        if self.dist.world_size > 1:
            ranks = self.dist.all_gather_object({**rng_states(self.device), "totals": json.dumps((in_epoch or {}).get("totals"))})
        if not self.dist.is_main:
            return

        def write(directory: Path) -> None:
            self.model.save_pretrained(directory)
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "epoch": self.epoch,
                "best_value": self.best_value,
                "bad_epochs": self.bad_epochs,
                "updates": self.updates,
                "history": self.history,
                **rng_states(self.device),
                "numpy_rng": json.dumps(self.rng.bit_generator.state),
                "in_epoch": json.dumps(in_epoch),
                "world_size": self.dist.world_size,
                **({"ranks": ranks} if ranks else {}),
            }
            torch.save(state, directory / STATE_FILE)

        atomic_save(write, self.dir / "last")

    def _check_world_size(self) -> None:
        """An epoch interrupted mid-way resumes only with as many processes as wrote it (each rank drew its own
        batches and random numbers): refused before any corpus is read, not after."""
        last = self.dir / "last"
        state = read_trainer_state(last, mmap=True)  # the tensors stay on disk: only two plain values are read
        saved_world = state.get("world_size", 1)
        if json.loads(state.get("in_epoch", "null")) and saved_world != self.dist.world_size:
            raise HmtlError(f"--recover: {last} was written in the middle of epoch {state['epoch'] + 1} by {saved_world} "
                            f"process(es); resume it with as many ({'torchrun --nproc_per_node ' + str(saved_world) if saved_world > 1 else 'without torchrun'})")

    def _restore(self) -> None:
        last = self.dir / "last"
        self.model.load_weights(last, " (the run's config.json, with --overrides if any)")
        state = read_trainer_state(last)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.best_value = state["epoch"], state["best_value"]
        self.bad_epochs, self.updates, self.history = state["bad_epochs"], state["updates"], state["history"]
        set_rng_states(state, self.device)
        self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        self.resume_epoch = json.loads(state.get("in_epoch", "null"))
        saved_world, world = state.get("world_size", 1), self.dist.world_size  # the same when mid-epoch (checked)
        if saved_world == world > 1:  # each rank continues its own random stream and loss sums
            set_rng_states(state["ranks"][self.dist.rank], self.device)
            if self.resume_epoch:
                self.resume_epoch["totals"] = json.loads(state["ranks"][self.dist.rank]["totals"])
        elif world > 1:
            torch.manual_seed(int(np.random.SeedSequence([self.config.seed, self.dist.rank, self.epoch]).generate_state(1)[0]))
        where = f"at step {self.resume_epoch['step']} of epoch {self.epoch + 1}" if self.resume_epoch else f"after epoch {self.epoch}"
        logger.info("resuming %s %s", self.dir, where)

    def _write_metrics(self, test: dict | None = None) -> dict:
        """Write metrics.json (epochs, best epoch, test) and return what it holds."""
        best = max(self.history, key=lambda h: self.metric_sign * h["validation"].get(self.metric_name, -math.inf), default=None)
        summary = {"validation_metric": self.config.trainer.validation_metric, "epochs": self.history}
        if best is not None:
            summary["best_epoch"] = best["epoch"]
            summary["best_validation"] = best["validation"]
        if test is not None:
            summary["test"] = test
        (self.dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        return summary

    # --------------------------------------------------------------- training
    def train(self) -> dict:
        """Train, then test the best checkpoint; with ``trainer.mlflow`` all of it is one MLflow run (hmtl.tracking)."""
        try:
            with self.tracker.run(self.dir, self.recover, self.history):
                return self._train()
        finally:
            self._release_lock()

    def _train(self) -> dict:
        from torch.utils.tensorboard import SummaryWriter

        trainer = self.config.trainer
        writer = SummaryWriter(str(self.dir / "log")) if self.dist.is_main else _NoWriter()
        self.model.train()
        while self.epoch < trainer.num_epochs and self.bad_epochs < trainer.patience:
            started = time.perf_counter() - (self.resume_epoch or {}).get("seconds", 0.0)
            train_losses, task_steps = self._train_epoch(writer, started)
            trained = time.perf_counter() - started
            self.epoch += 1
            validation = self.dist.run_on_main(  # rank 0 alone, on the whole split: a single process's metrics
                lambda: self._evaluate(self.model, "validation"))
            value = validation.get(self.metric_name)
            if value is None:
                raise ConfigError(
                    f"trainer.validation_metric: {self.metric_name!r} is not among the metrics {sorted(validation)}"
                )
            improved = self.metric_sign * value > self.best_value
            if improved:
                self.best_value, self.bad_epochs = self.metric_sign * value, 0
                if self.dist.is_main:
                    atomic_save(self.model.save_pretrained, self.dir / "best")
            else:
                self.bad_epochs += 1
            record = {
                "epoch": self.epoch,
                "seconds": round(time.perf_counter() - started, 3),  # validation and checkpoint included
                "train_seconds": round(trained, 3),  # the training steps alone
                "peak_memory_mb": peak_memory_mb(),
                "peak_gpu_memory_mb": peak_gpu_memory_mb(self.device),
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
            if self.dist.is_main:
                self._write_metrics()
            self.tracker.log_epoch(record)  # after the checkpoint: a resumed run logs the epochs MLflow missed
        writer.close()
        return self.test()

    def _train_epoch(self, writer, started: float) -> tuple[dict[str, float], dict[str, int]]:
        """One epoch of sampled steps; returns each task's mean loss and each group's number of batches. Writes
        ``last/`` every ``checkpoint_every_minutes`` / ``_updates``; resumes an epoch such a checkpoint interrupted."""
        trainer = self.config.trainer
        resume, self.resume_epoch = self.resume_epoch, None
        if resume:  # replay the epoch's batch order from the random state it started with
            self.rng.bit_generator.state = json.loads(resume["epoch_rng"])
        epoch_rng = json.dumps(self.rng.bit_generator.state)
        batches = {group.name: self._batches(group, self.rng) for group in self.groups}
        groups = {group.name: group for group in self.groups}
        probabilities = task_probabilities({name: len(b) for name, b in batches.items()}, self.config.sampler,
                                           self.epoch + 1, trainer.num_epochs)
        batches = {name: self.dist.shard(b) for name, b in batches.items()}  # torchrun: this rank's r, r + W, ...
        schedule = task_schedule(probabilities, self.steps_per_epoch, self.rng)
        for name, p in probabilities.items():
            writer.add_scalar(f"sampling/{name}", p, self.epoch + 1)
        cursors = {name: 0 for name in batches}
        steps = {name: 0 for name in batches}
        done = resume["step"] if resume else 0
        totals = LossTotals(resume["totals"] if resume else None)
        last_checkpoint = time.perf_counter()
        progress = Progress(len(schedule), f"epoch {self.epoch + 1}/{trainer.num_epochs}", "steps", initial=done,
                            note=lambda: self._progress_note(progress, totals)) if self.dist.is_main else None
        plan = []  # the epoch's batches in step order (a group sampled more than its size starts a new pass)
        for name in schedule:
            if cursors[name] == len(batches[name]):
                batches[name] = self.dist.shard(self._batches(groups[name], self.rng))
                cursors[name] = 0
            plan.append(list(batches[name][cursors[name]].items()))
            cursors[name] += 1
            steps[name] += 1
        # the steps trained before an interruption are skipped; the rest are collated ahead of the model
        for step, batch in enumerate(collated(self.model, plan[done:], trainer.num_workers), start=done + 1):
            losses = self.forward_backward(batch)
            totals.add(losses)
            if step % trainer.accumulation_steps == 0 or step == len(schedule):
                self.update()
                if self._checkpoint_due(last_checkpoint) and step < len(schedule):
                    self._save_last({"step": step, "epoch_rng": epoch_rng, "totals": totals.read(),
                                     "seconds": time.perf_counter() - started})
                    last_checkpoint = time.perf_counter()
                if self.updates % 20 == 0:
                    for task, value in losses.items():
                        writer.add_scalar(f"loss/{task}", value.item(), self.updates)
                    for i, group in enumerate(self.optimizer.param_groups):
                        writer.add_scalar(f"learning_rate/{'transformer' if i else 'main'}", group["lr"], self.updates)
            if progress is not None:
                progress.update(1)
        if progress is not None:
            progress.close()
        summed = {}  # the mean over every rank's batches (one rank outside torchrun); each step trained W of them
        for rank_totals in self.dist.all_gather_object(totals.read()):
            for task, (s, n) in rank_totals.items():
                total = summed.setdefault(task, [0.0, 0])
                total[0] += s
                total[1] += n
        steps = {name: n * self.dist.world_size for name, n in steps.items()}
        mean_losses = {task: s / max(n, 1) for task, (s, n) in summed.items()}
        for task, value in mean_losses.items():
            writer.add_scalar(f"epoch_loss/{task}", value, self.epoch + 1)
        return mean_losses, steps

    def forward_backward(self, batch) -> dict[str, torch.Tensor]:
        """One batch's losses (under the configured autocast); their gradients are added to the parameters'."""
        trainer = self.config.trainer
        with autocast(self.device, trainer.bf16, trainer.fp16):
            losses = self.ddp(batch)
        self.scaler.scale(sum(losses.values()) / trainer.accumulation_steps).backward()
        return losses

    def update(self) -> None:
        """An optimizer step on the gradients accumulated so far: unscaled (fp16), clipped; the schedule moves on."""
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.trainer.grad_clipping)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.updates += 1

    def _progress_note(self, progress: Progress, totals: LossTotals) -> str:
        """Mean loss of each task sampled so far, and the run's ETA: this epoch's, plus the epochs left at this
        epoch's pace (the first epoch, which fills caches, would overstate the later ones)."""
        losses = " ".join(f"{task} {s / max(n, 1):.3f}" for task, (s, n) in totals.read().items())
        eta = progress.eta()
        if eta is None:
            return f"loss {losses}"
        per_epoch = progress.total / progress.rate()
        left = self.config.trainer.num_epochs - self.epoch - 1
        return f"loss {losses}, run ETA {duration(eta + left * per_epoch)}"

    def _evaluate(self, model: HierarchicalModel, split: str) -> dict[str, float]:
        trainer = self.config.trainer
        return evaluate(model, self.instances[split], trainer.batch_size, "validating" if split == "validation" else "testing",
                        trainer.num_workers)

    def _checkpoint_due(self, last_checkpoint: float) -> bool:
        trainer = self.config.trainer
        if trainer.checkpoint_every_updates and self.updates % trainer.checkpoint_every_updates == 0:
            return True
        minutes = trainer.checkpoint_every_minutes
        if minutes is None:
            return False
        # under torchrun rank 0's clock decides for all: every rank must take part in the same checkpoints
        return self.dist.broadcast_object(time.perf_counter() - last_checkpoint >= 60 * minutes)

    def test(self) -> dict:
        """Evaluate the best checkpoint on the test splits and record it in metrics.json (rank 0 under torchrun;
        every rank returns the metrics). Afterwards ``self.model`` holds the best weights (on rank 0)."""
        return self.dist.run_on_main(self._test)

    def _test(self) -> dict:
        if not (self.dir / "best").exists():
            raise HmtlError(f"{self.dir}: no best checkpoint was written")
        # the best weights into the training model: a second model would hold a second copy of GloVe and the
        # transformer (and an empty state cache) in memory; the training is over, so nothing needs the last weights
        self.model.load_weights(self.dir / "best")
        if tune(self.model, self.instances["validation"], self.config.trainer.batch_size, self.config.trainer.num_workers):
            atomic_save(self.model.save_pretrained, self.dir / "best")  # the chosen settings in its config
        test = self._evaluate(self.model, "test") if self.instances["test"] else {}
        best_epoch = self._write_metrics(test).get("best_epoch", self.epoch)
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(self.dir / "log")) as writer:  # beside the validation curves, at the best epoch
            for key, value in test.items():
                writer.add_scalar(f"test/{key}", value, best_epoch)
        self.tracker.log_test(test, best_epoch)
        return test
