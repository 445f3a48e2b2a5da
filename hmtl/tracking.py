"""Optional experiment tracking in MLflow, beside TensorBoard (``"trainer": {"mlflow": {...}}``).

The Trainer makes a tracker with ``make_tracker``: without ``trainer.mlflow`` it is a no-op that never imports
mlflow. With it, a training is one MLflow run in the configured experiment: the resolved config as dotted params
(``trainer.learning_rate``, ``tasks.0.name``), each epoch's validation metrics, mean train losses and seconds at
step = epoch, the final test metrics (``test/<name>``, at the best epoch), the serialization directory as the tag
``hmtl.serialization_dir`` and, when the run ends, ``config.json``, ``metrics.json`` and ``serialization_dir.json``
(the folder's path and URI) as artifacts. The run's id is kept in ``mlflow_run.json`` in the serialization
directory, so ``--recover`` reopens the same run and goes on logging into it. The store is any MLflow tracking URI:
a SQLite file (``sqlite:///mlflow.db``, what README shows; SQLAlchemy and Alembic come with ``hmtl[tracking]``), a
file store or a tracking server.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from hmtl.errors import ConfigError

logger = logging.getLogger(__name__)
RUN_FILE = "mlflow_run.json"  # in the serialization directory: the MLflow run a --recover continues
SERIALIZATION_DIR_TAG = "hmtl.serialization_dir"
BATCH_SIZE = 100  # MLflow takes at most 100 params (1000 metrics) per log_batch call
FALLBACK_PARAM_LENGTH = 500  # the limit of old MLflow versions, where the module does not say its own
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # the URI schemes of MLflow's SQL stores
_NAME_CHARACTER = re.compile(r"[^A-Za-z0-9_\-. ]")  # MLflow names also allow '/', which we keep as our separator


class Tracker:
    """No tracking: every hook does nothing (``trainer.mlflow`` is not set)."""

    @contextlib.contextmanager
    def run(self, serialization_dir: Path, recover: bool, history: list[dict]) -> Iterator[None]:
        yield

    def log_epoch(self, record: dict) -> None:
        pass

    def log_test(self, test: dict[str, float], step: int) -> None:
        pass


def make_tracker(config) -> Tracker:
    """The tracker of a training with ``config``; a ConfigError naming ``trainer.mlflow`` when MLflow is configured
    but not installed, or its tracking server does not answer, raised before any data is read (a URI MLflow cannot
    open at all is refused as the tracker is made)."""
    if config.trainer.mlflow is None:
        return Tracker()
    from hmtl.checks import check_tracking

    check_tracking(config)
    check_server(config.trainer.mlflow.tracking_uri)
    return MlflowTracker(config)


SERVER_TIMEOUT = 5.0  # seconds a tracking server has to answer the start-up check


def check_server(uri: str) -> None:
    """An http(s) tracking URI must answer now, before any data is read: MLflow itself would find out only when the
    run starts, after every corpus is read, and then retry for minutes. Any HTTP answer will do (a proxy may keep
    ``/health`` to itself); none is a ConfigError naming the key."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=SERVER_TIMEOUT).close()
    except urllib.error.HTTPError:
        return  # it answered, if not with 200
    except (OSError, ValueError) as error:  # refused, unknown host, no answer in time, a malformed URL
        reason = getattr(error, "reason", None) or error
        raise ConfigError(f"trainer.mlflow.tracking_uri: no tracking server answers at {uri} ({reason}); start it, "
                          "or fix the URI") from None


def clean_name(part: str) -> str:
    """A key part made of the characters MLflow allows in param and metric names."""
    return _NAME_CHARACTER.sub("_", str(part))


def flatten_params(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested config values as MLflow params: dicts and lists of dicts become dotted keys (``tasks.0.name``),
    lists of plain values one JSON value (``tasks.0.datasets`` = ``["conll03"]``), other values ``str``."""
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = enumerate(value)
    else:
        if isinstance(value, (list, dict)):
            text = json.dumps(value)
        else:
            text = str(value)
        return {prefix: text}
    params = {}
    for key, item in items:
        params.update(flatten_params(item, f"{prefix}.{clean_name(key)}" if prefix else clean_name(key)))
    return params


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or ("://" not in uri and not uri.startswith("databricks"))  # or a plain path


def _is_database(uri: str) -> bool:
    """MLflow's SQL stores: ``sqlite:///mlflow.db``, ``postgresql://...``, ``mysql+pymysql://...``, ``mssql://...``."""
    return uri.split(":", 1)[0].split("+", 1)[0].lower() in DATABASES


def check_database(uri: str) -> None:
    """An SQL store needs SQLAlchemy and Alembic (not in mlflow-skinny alone: MLflow would say only that the URI
    is unsupported), and a SQLite file a folder that exists and can be written (MLflow would create any missing
    folder, a typo's too). Said in one line naming the key, before any data is read."""
    where = f"trainer.mlflow.tracking_uri: {uri!r}"
    try:
        import alembic  # noqa: F401
        from sqlalchemy.engine import make_url
    except ImportError as error:
        raise ConfigError(f"{where} is an SQL store, which needs SQLAlchemy and Alembic ({error.name} is missing): "
                          "pip install 'hmtl[tracking]'") from None
    database = make_url(uri).database if uri.startswith("sqlite") else None
    if not database or database == ":memory:":
        return
    path = Path(database).absolute()
    if not path.parent.is_dir():
        state = "is not a folder" if path.parent.exists() else "does not exist"
        raise ConfigError(f"{where}: the database's folder {path.parent} {state}; create it or point the URI elsewhere")
    if path.is_dir():
        raise ConfigError(f"{where}: {path} is a folder, not a database file")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{where}: {path} cannot be written (permission denied or a read-only file system)")


class MlflowTracker(Tracker):
    def __init__(self, config):
        import mlflow  # noqa: F401  (installed: check_tracking said so)
        from mlflow.tracking import MlflowClient

        self.config = config
        self.settings = config.trainer.mlflow
        uri = self.settings.tracking_uri
        if _is_file_store(uri):  # MLflow >= 3.13 refuses a file store unless told it is wanted; here it is
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if _is_database(uri):
            check_database(uri)
        try:
            self.client = MlflowClient(uri)
        except Exception as error:  # an unknown scheme, a store whose backend is not installed, ...
            raise ConfigError(f"trainer.mlflow.tracking_uri: {uri!r} does not open in MLflow: "
                              f"{_first_line(error)}") from None
        self.run_id: str | None = None
        self.dir: Path | None = None

    # ------------------------------------------------------------- the run
    @contextlib.contextmanager
    def run(self, serialization_dir: Path, recover: bool, history: list[dict]) -> Iterator[None]:
        """Start the MLflow run (or reopen it on ``--recover``) and end it FINISHED, FAILED when the training
        raised, KILLED when it was interrupted."""
        self.dir = Path(serialization_dir).resolve()
        self._open(recover)
        status = "FAILED"
        try:
            self._log_params()
            for record in self._missing_epochs(history):  # epochs of a resumed run that never reached MLflow
                self.log_epoch(record)
            yield
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            self._close(status)

    def _open(self, recover: bool) -> None:
        saved = self.dir / RUN_FILE
        if recover and saved.exists():
            run_id = json.loads(saved.read_text()).get("run_id")
            try:
                self.client.get_run(run_id)
            except Exception as error:
                logger.warning("MLflow run %s of %s is not in %s (%s): starting a new run", run_id, self.dir,
                               self.settings.tracking_uri, _first_line(error))
            else:
                self.run_id = run_id
                self.client.update_run(run_id, status="RUNNING")
                logger.info("MLflow: continuing run %s in experiment %r", run_id, self.settings.experiment)
                return
        experiment_id = self._experiment_id()
        run = self.client.create_run(experiment_id, run_name=self.settings.run_name or self.dir.name,
                                     tags={SERIALIZATION_DIR_TAG: str(self.dir)})
        self.run_id = run.info.run_id
        saved.write_text(json.dumps({"run_id": self.run_id, "experiment_id": experiment_id,
                                     "tracking_uri": self.settings.tracking_uri}, indent=2))
        logger.info("MLflow: run %s in experiment %r at %s", self.run_id, self.settings.experiment,
                    self.settings.tracking_uri)

    def _experiment_id(self) -> str:
        name = self.settings.experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            return self.client.create_experiment(name)
        if experiment.lifecycle_stage == "deleted":
            raise ConfigError(f"trainer.mlflow.experiment: experiment {name!r} is deleted in "
                              f"{self.settings.tracking_uri}; restore it or name another experiment")
        return experiment.experiment_id

    def _log_params(self) -> None:
        """The resolved config as params. A param keeps its first value in MLflow: a resumed run whose config
        changed a value (e.g. ``--overrides`` raising num_epochs) records the new one as a ``resumed.<key>`` tag."""
        from mlflow.entities import Param, RunTag

        try:
            from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH as limit
        except ImportError:
            limit = FALLBACK_PARAM_LENGTH
        params = {key: truncate(value, limit) for key, value in flatten_params(self.config.model_dump(mode="json")).items()}
        logged = self.client.get_run(self.run_id).data.params
        new = [Param(key, value) for key, value in params.items() if key not in logged]
        changed = [RunTag(f"resumed.{key}", truncate(value, limit)) for key, value in params.items()
                   if key in logged and logged[key] != value]
        for start in range(0, len(new), BATCH_SIZE):
            self.client.log_batch(self.run_id, params=new[start:start + BATCH_SIZE])
        for start in range(0, len(changed), BATCH_SIZE):
            self.client.log_batch(self.run_id, tags=changed[start:start + BATCH_SIZE])

    def _missing_epochs(self, history: list[dict]) -> list[dict]:
        logged = max((m.step for m in self.client.get_metric_history(self.run_id, "epoch_seconds")), default=0)
        return [record for record in history if record["epoch"] > logged]

    def _close(self, status: str) -> None:
        try:
            for name in ("config.json", "metrics.json"):
                if (self.dir / name).exists():
                    self.client.log_artifact(self.run_id, str(self.dir / name))
            self.client.log_dict(self.run_id, {"serialization_dir": str(self.dir), "uri": self.dir.as_uri()},
                                 "serialization_dir.json")
        except Exception as error:
            logger.warning("MLflow: could not log the artifacts of run %s: %s", self.run_id, _first_line(error))
        finally:
            self.client.set_terminated(self.run_id, status)

    # ------------------------------------------------------------- metrics
    def log_epoch(self, record: dict) -> None:
        step = record["epoch"]
        metrics = {f"validation/{clean_name(k)}": v for k, v in record["validation"].items()}
        metrics.update({f"train_loss/{clean_name(k)}": v for k, v in record["train_loss"].items()})
        metrics.update({"epoch_seconds": record["seconds"], "updates": record["updates"]})
        if record.get("peak_memory_mb") is not None:
            metrics["peak_memory_mb"] = record["peak_memory_mb"]
        self._log_metrics(metrics, step)

    def log_test(self, test: dict[str, float], step: int) -> None:
        self._log_metrics({f"test/{clean_name(k)}": v for k, v in test.items()}, step)

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """A failure to log (a tracking server that is down) is a warning: the training goes on, metrics.json
        and TensorBoard still have every value."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        entries = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        try:
            for start in range(0, len(entries), 1000):
                self.client.log_batch(self.run_id, metrics=entries[start:start + 1000])
        except Exception as error:
            logger.warning("MLflow: could not log metrics at step %d of run %s: %s", step, self.run_id, _first_line(error))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
