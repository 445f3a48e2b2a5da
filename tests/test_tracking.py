"""MLflow tracking (trainer.mlflow) with the real mlflow package (hmtl[tracking]) against a local SQLite store (what
README shows) or file store."""
import json
import os
import sys

import pytest

from hmtl.checks import load_config
from hmtl.errors import ConfigError
from hmtl.tracking import RUN_FILE, SERIALIZATION_DIR_TAG, flatten_params
from hmtl.training.trainer import Trainer


def train(config_path, out, overrides=None, recover=False):
    config = load_config(out / "config.json" if recover else config_path, overrides, expand=not recover)
    return Trainer(config, out, recover=recover).train()


# the store's URI, given the folder; "default": no tracking_uri in the config (the tests run in that folder)
STORES = {"file": "file:{}/mlruns", "sqlite": "sqlite:///{}/mlflow.db", "default": "sqlite:///{}/mlflow.db"}


def tracked(tmp_path, epochs=3, store="file", **settings):
    where = {} if store == "default" else {"tracking_uri": STORES[store].format(tmp_path)}
    return {"trainer": {"num_epochs": epochs, "mlflow": {**where, **settings}}}


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow >= 3.13 opens a file store only when told
    from mlflow.tracking import MlflowClient

    return lambda store="file": MlflowClient(STORES[store].format(tmp_path))


def only_run(client, experiment="hmtl"):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id])
    assert len(runs) == 1, runs
    return runs[0]


def history(client, run, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]


@pytest.mark.parametrize("store", ["sqlite", "file", "default"])
def test_a_training_is_one_mlflow_run_with_params_metrics_and_artifacts(tiny_ner_config, tmp_path, client, store, monkeypatch):
    monkeypatch.chdir(tmp_path)  # beside a SQLite store, MLflow keeps the artifacts in ./mlruns
    out = tmp_path / "run"
    test = train(tiny_ner_config, out, tracked(tmp_path, store=store, experiment="tiny", run_name="first"))
    mlflow_client = client(store)
    run = only_run(mlflow_client, "tiny")
    assert run.info.status == "FINISHED" and run.info.run_name == "first"
    assert json.loads((out / RUN_FILE).read_text())["run_id"] == run.info.run_id
    params = run.data.params
    assert params["trainer.learning_rate"] == "0.01" and params["trainer.num_epochs"] == "3"
    assert params["tasks.0.name"] == "ner" and params["tasks.0.datasets"] == '["tiny"]'
    assert params["trainer.mlflow.experiment"] == "tiny"
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("MEAN__ner_f1", "tiny__ner_f1"):
        expected = [(e["epoch"], pytest.approx(e["validation"][name])) for e in metrics["epochs"]]
        assert history(mlflow_client, run, f"validation/{name}") == expected
    assert [step for step, _ in history(mlflow_client, run, "train_loss/ner")] == [1, 2, 3]
    assert [step for step, _ in history(mlflow_client, run, "epoch_seconds")] == [1, 2, 3]
    assert {k.removeprefix("test/"): v for k, v in run.data.metrics.items() if k.startswith("test/")} == pytest.approx(test)
    assert metrics["test"] == test
    assert history(mlflow_client, run, "test/tiny__ner_f1")[0][0] == metrics["best_epoch"]
    assert run.data.tags[SERIALIZATION_DIR_TAG] == str(out.resolve())
    artifacts = {a.path for a in mlflow_client.list_artifacts(run.info.run_id)}
    assert {"config.json", "metrics.json", "serialization_dir.json"} <= artifacts
    downloaded = mlflow_client.download_artifacts(run.info.run_id, "serialization_dir.json", str(tmp_path))
    link = json.loads(open(downloaded).read())
    assert link == {"serialization_dir": str(out.resolve()), "uri": out.resolve().as_uri()}


def test_recover_continues_the_same_mlflow_run(tiny_ner_config, tmp_path, client):
    out = tmp_path / "run"
    train(tiny_ner_config, out, tracked(tmp_path, epochs=2))
    first = only_run(client())
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 3}}, recover=True)
    mlflow_client = client()
    run = only_run(mlflow_client)
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    metrics = json.loads((out / "metrics.json").read_text())
    expected = [(e["epoch"], pytest.approx(e["validation"]["MEAN__ner_f1"])) for e in metrics["epochs"]]
    assert len(expected) == 3 and history(mlflow_client, run, "validation/MEAN__ner_f1") == expected
    assert run.data.params["trainer.num_epochs"] == "2"  # a param keeps its first value; the new one is a tag
    assert run.data.tags["resumed.trainer.num_epochs"] == "3"
    assert run.data.metrics["test/tiny__ner_f1"] == pytest.approx(metrics["test"]["tiny__ner_f1"])


def test_a_failed_training_ends_its_run_failed(tiny_ner_config, tmp_path, client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("validation broke")

    monkeypatch.setattr("hmtl.training.trainer.evaluate", broken)
    with pytest.raises(RuntimeError, match="validation broke"):
        train(tiny_ner_config, tmp_path / "run", tracked(tmp_path, epochs=1))
    assert only_run(client()).info.status == "FAILED"


def test_mlflow_configured_but_not_installed_is_one_line_naming_the_key(tiny_ner_config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    config = load_config(tiny_ner_config, tracked(tmp_path))  # a saved model with the key still loads anywhere
    monkeypatch.setattr("hmtl.training.trainer.load_datasets", lambda config: pytest.fail("data was read"))
    with pytest.raises(ConfigError) as error:
        Trainer(config, tmp_path / "run")
    message = str(error.value)
    assert "\n" not in message and message.startswith("trainer.mlflow: MLflow is not installed")
    assert "pip install 'hmtl[tracking]'" in message
    assert not (tmp_path / "run").exists() and not (tmp_path / "mlruns").exists()


def test_without_the_key_nothing_is_tracked(tiny_ner_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default file:./mlruns would go
    monkeypatch.setitem(sys.modules, "mlflow", None)  # and mlflow is never imported
    train(tiny_ner_config, tmp_path / "run", {"trainer": {"num_epochs": 1}})
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "run" / RUN_FILE).exists()


def test_unknown_mlflow_key_is_named(tiny_ner_config):
    with pytest.raises(ConfigError, match=r"trainer\.mlflow\.experment"):
        load_config(tiny_ner_config, {"trainer": {"mlflow": {"experment": "x"}}})


def test_config_values_flatten_to_mlflow_params():
    params = flatten_params({"a": {"b": 1, "c": [1, 2], "d": [{"e": None}], "f": {}}, "name/x": True})
    assert params == {"a.b": "1", "a.c": "[1, 2]", "a.d.0.e": "None", "a.f": "{}", "name_x": "True"}


def test_tracking_added_on_recover_logs_the_epochs_before_it(tiny_ner_config, tmp_path, client):
    out = tmp_path / "run"
    train(tiny_ner_config, out, {"trainer": {"num_epochs": 1}})
    train(tiny_ner_config, out, tracked(tmp_path, epochs=2), recover=True)
    mlflow_client = client()
    run = only_run(mlflow_client)
    assert [step for step, _ in history(mlflow_client, run, "validation/MEAN__ner_f1")] == [1, 2]


def test_a_tracking_server_that_does_not_answer_stops_the_run_before_any_data_is_read(tiny_ner_config, tmp_path, monkeypatch):
    import socket

    monkeypatch.setattr("hmtl.tracking.SERVER_TIMEOUT", 0.5)
    monkeypatch.setattr("hmtl.training.trainer.load_datasets", lambda config: pytest.fail("data was read"))
    with socket.socket() as silent, socket.socket() as closed:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections (the kernel's backlog) but never answers them
        closed.bind(("127.0.0.1", 0))  # bound, not listening: the connection is refused
        for server, reason in ((closed, "refused"), (silent, "timed out")):
            uri = f"http://127.0.0.1:{server.getsockname()[1]}"
            config = load_config(tiny_ner_config, {"trainer": {"mlflow": {"tracking_uri": uri}}})
            with pytest.raises(ConfigError, match=rf"^trainer.mlflow.tracking_uri: no tracking server answers at "
                                                  rf"{uri} \(.*{reason}.*\); start it, or fix the URI$"):
                Trainer(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_server_that_answers_at_all_passes_the_start_up_check():
    import http.server
    import threading

    from hmtl.tracking import check_server

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # 501 to every GET
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        check_server(f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.server_close()


def test_an_sql_store_without_its_dependencies_is_one_line(tiny_ner_config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "alembic", None)  # as with mlflow-skinny alone
    monkeypatch.setattr("hmtl.training.trainer.load_datasets", lambda config: pytest.fail("data was read"))
    with pytest.raises(ConfigError) as error:
        Trainer(load_config(tiny_ner_config, tracked(tmp_path, store="sqlite")), tmp_path / "run")
    assert str(error.value) == (f"trainer.mlflow.tracking_uri: 'sqlite:///{tmp_path}/mlflow.db' is an SQL store, which "
                                "needs SQLAlchemy and Alembic (alembic is missing): pip install 'hmtl[tracking]'")
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("where, message", [
    ("missing/mlflow.db", "the database's folder {tmp}/missing does not exist; create it or point the URI elsewhere"),
    ("a_file/mlflow.db", "the database's folder {tmp}/a_file is not a folder; create it or point the URI elsewhere"),
    ("a_folder", "{tmp}/a_folder is a folder, not a database file"),
    ("read_only/mlflow.db", "{tmp}/read_only/mlflow.db cannot be written (permission denied or a read-only file system)"),
])
def test_an_unwritable_sqlite_store_is_one_line_before_any_data_is_read(tiny_ner_config, tmp_path, monkeypatch, where, message):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "read_only").mkdir(mode=0o555)
    if where.startswith("read_only") and os.access(tmp_path / "read_only", os.W_OK):
        pytest.skip("root writes into a read-only folder (run as another user, or under setpriv --bounding-set -dac_override)")
    monkeypatch.setattr("hmtl.training.trainer.load_datasets", lambda config: pytest.fail("data was read"))
    uri = f"sqlite:///{tmp_path}/{where}"
    with pytest.raises(ConfigError) as error:
        Trainer(load_config(tiny_ner_config, {"trainer": {"mlflow": {"tracking_uri": uri}}}), tmp_path / "run")
    assert str(error.value) == f"trainer.mlflow.tracking_uri: {uri!r}: " + message.format(tmp=tmp_path)
    assert not (tmp_path / "run").exists() and not (tmp_path / "missing").exists()
