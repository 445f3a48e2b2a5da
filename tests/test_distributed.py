"""Data-parallel training under torchrun: 2 real processes, gloo on the CPU, a tiny two-task corpus.

A run finishes, its ranks end with identical parameters, its checkpoint loads (and scores the same) in a single
process, and ``--recover`` continues it exactly, across an epoch boundary and from the middle of an epoch where a
rank died. A folder another training holds is refused in one line.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import SENTENCES, write_conll
from hmtl.checks import load_config
from hmtl.cli import evaluate_main, train_main
from hmtl.errors import HmtlError
from hmtl.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).with_name("distributed_train.py")


def two_task_config(folder: Path) -> Path:
    """NER (two corpora, so a step's heads differ between ranks) over POS: heads and a level idle in some steps."""
    train = write_conll(folder / "train.conll", SENTENCES, repeat=3)
    other = write_conll(folder / "other.conll", SENTENCES[:2], repeat=2)
    dev = write_conll(folder / "dev.conll", SENTENCES)
    config = {
        "seed": 1,
        "data": {"c": {"reader": "conll2003", "train": str(train), "validation": str(dev), "test": str(dev)},
                 "d": {"reader": "conll2003", "train": str(other), "validation": str(other)}},
        "embedder": {"char_cnn": {"embedding_dim": 8, "num_filters": 8}, "dropout": 0.1},
        "levels": [{"name": "low", "hidden_size": 16, "dropout": 0.1}, {"name": "high", "hidden_size": 16, "dropout": 0.1}],
        "tasks": [{"name": "ner", "type": "crf_tagger", "level": "high", "datasets": ["c", "d"]},
                  {"name": "pos", "type": "crf_tagger", "level": "low", "datasets": ["c"], "options": {"label_layer": "pos"}}],
        "trainer": {"num_epochs": 2, "batch_size": 4, "learning_rate": 0.01, "validation_metric": "+MEAN__all",
                    "num_threads": 1},
    }
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, processes: int = 2) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", str(free_port()),
               *map(str, args)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def helper(config, out, states, *options) -> subprocess.CompletedProcess:
    return torchrun(HELPER, config, out, states, *options)


def epochs(out):
    return [{k: e[k] for k in ("validation", "train_loss", "task_steps", "updates")}
            for e in json.loads((out / "metrics.json").read_text())["epochs"]]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(autouse=True)
def keep_thread_count():
    """The in-process trainings here set 1 thread (trainer.num_threads): the tests after them keep their own."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Two epochs with 2 ranks in one go: (config, serialization dir, folder of the ranks' final state_dicts)."""
    folder = tmp_path_factory.mktemp("ddp")
    config, out, states = two_task_config(folder), folder / "run", folder / "states"
    done = helper(config, out, states)
    assert done.returncode == 0, done.stderr[-3000:]
    return config, out, states


def test_two_ranks_finish_with_identical_weights_and_a_checkpoint_one_process_loads(straight, tmp_path, capsys):
    config, out, states = straight
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2] and metrics["test"]
    # 7 batches an epoch (3 c__ner, 1 d__ner, 3 pos) over 2 ranks: 4 steps of 2 batches, 4 updates
    assert [e["updates"] for e in metrics["epochs"]] == [4, 8]
    rank0, rank1 = (torch.load(states / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert_same_weights(rank0, rank1)
    assert_same_weights(rank0, load_file(str(out / "last" / "model.safetensors")))
    assert not (out / ".lock").exists()
    # best/ loads in one process and scores what rank 0 measured (rank 0 evaluates the unsharded split)
    evaluate_main(["--serialization_dir", str(out), "--batch_size", "4", "--output_file", str(tmp_path / "e.json")])
    assert json.loads((tmp_path / "e.json").read_text()) == metrics["test"]
    assert "MEAN__all" in capsys.readouterr().out


def test_recover_under_torchrun_continues_across_epochs_and_from_mid_epoch(straight, tmp_path):
    config, straight_out, straight_states = straight
    out, states = tmp_path / "run", tmp_path / "states"
    first = helper(config, out, states, "--overrides", '{"trainer": {"num_epochs": 1}}')
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(epochs(out)) == 1
    # resumed to 2 epochs with a checkpoint at every update; rank 0 dies (like a kill) at step 2 of epoch 2
    killed = helper(config, out, states, "--recover", "--die_at", "2",
                    "--overrides", '{"trainer": {"num_epochs": 2, "checkpoint_every_updates": 1}}')
    assert killed.returncode != 0
    state = torch.load(out / "last" / "trainer_state.pt", weights_only=True)
    assert state["epoch"] == 1 and json.loads(state["in_epoch"])["step"] == 1 and state["world_size"] == 2
    assert json.loads((out / ".lock").read_text())["pid"] != os.getpid()  # the dead run's lock: taken over below
    with pytest.raises(HmtlError, match=r"by 2 process\(es\); resume it with as many \(torchrun --nproc_per_node 2\)"):
        Trainer(load_config(out / "config.json", expand=False), out, recover=True)  # in one process
    assert not (out / ".lock").exists()  # taken over, then let go with the error
    resumed = helper(config, out, states, "--recover", "--overrides", '{"trainer": {"num_epochs": 2}}')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert epochs(out) == epochs(straight_out)
    for rank in (0, 1):
        assert_same_weights(torch.load(states / f"rank{rank}.pt", weights_only=True),
                            torch.load(straight_states / f"rank{rank}.pt", weights_only=True))
    assert not (out / ".lock").exists()


def test_a_folder_another_run_trains_is_refused_in_one_line_on_every_rank(tiny_ner_config, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    lock = out / ".lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))  # this test is alive
    done = torchrun(ROOT / "train.py", "--config_file_path", tiny_ner_config, "--serialization_dir", out,
                    "--overrides", '{"trainer": {"num_threads": 1}}')
    assert done.returncode != 0
    expected = (f"error: --serialization_dir: {out} is being trained by another run (pid {os.getpid()}); "
                "wait for it, or pick another folder")
    ours = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1 and ours[0].startswith(expected), done.stderr[-3000:]  # rank 0 says it, once
    assert done.stderr.count("exitcode  : 2") == 2  # and both ranks stop with the one-line-error code
    assert sorted(p.name for p in out.iterdir()) == [".lock"] and json.loads(lock.read_text())["pid"] == os.getpid()


def test_the_lock_in_one_process_refuses_a_live_run_and_takes_over_a_dead_ones(tiny_ner_config, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    lock = out / ".lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    argv = ["--config_file_path", str(tiny_ner_config), "--serialization_dir", str(out), "--force",
            "--overrides", '{"trainer": {"num_epochs": 1, "num_threads": 1}}']
    with pytest.raises(SystemExit) as exit_info:
        train_main(argv)
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in error
    assert error.startswith(f"error: --serialization_dir: {out} is being trained by another run (pid {os.getpid()}); "
                            "wait for it, or pick another folder")
    assert lock.exists()  # --force does not remove a running training's folder
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(json.dumps({"pid": int(gone.stdout), "host": socket.gethostname()}))  # a run that was killed
    train_main(argv)
    assert (out / "best" / "model.safetensors").exists() and not lock.exists()


def test_one_process_under_torchrun_trains_in_a_group_of_one(tiny_ner_config, tmp_path):
    done = torchrun(ROOT / "train.py", "--config_file_path", tiny_ner_config, "--serialization_dir", tmp_path / "run",
                    "--overrides", '{"trainer": {"num_epochs": 1}}', processes=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data-parallel over 1 process(es), gradients through gloo" in done.stderr  # the path NCCL takes on a GPU
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
