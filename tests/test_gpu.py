"""hmtl on a GPU: every task type trains on CUDA in fp32, bf16 and fp16 with a scaler, with every weight and
gradient there; a GPU run resumes to the same result; evaluate, predict and serve run on CUDA; a model moves between
the GPU and the CPU with the same predictions; torchrun runs NCCL. Skipped without CUDA (``scripts/gpu_check.sh``
runs them on a GPU machine; CI has none)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import SENTENCES, four_task_config, toy_document, write_tiny_ner_config
from hmtl.checks import load_config, parse_config
from hmtl.device import autocast
from hmtl.model import HierarchicalModel, load_model
from hmtl.predict import Predictor
from hmtl.training.trainer import Trainer, build_labels

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.device("cuda", 0)
TEXT = " ".join(" ".join(token for token, _ in sentence) for sentence in SENTENCES)


def toy_model(fine_tune: bool) -> tuple[HierarchicalModel, dict]:
    """The four task types over a transformer (fine-tuned, or frozen with its state cache), GloVe and a char-CNN."""
    config = parse_config(four_task_config({"glove": {}, "char_cnn": {"embedding_dim": 8, "num_filters": 8},
                                            "transformer": {"path": "minilm", "fine_tune": fine_tune}}, hidden_size=16))
    document = toy_document()
    model = HierarchicalModel(config, build_labels(config, {"toy": [document]})).to(CUDA)
    return model, model.task_instances({"toy": [document]})


@pytest.mark.parametrize("fine_tune", [True, False], ids=["fine-tuned", "frozen"])
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_every_task_type_trains_a_step_on_the_gpu(precision, fine_tune):
    torch.manual_seed(0)
    model, instances = toy_model(fine_tune)
    bf16, fp16 = precision == "bf16", precision == "fp16"
    seen = {"linear": set(), "lstm": set()}
    hooks = [m.register_forward_hook(lambda m, i, o, kind=kind: seen[kind].add(o[0].data.dtype if kind == "lstm" else o.dtype))
             for kind, cls in (("linear", torch.nn.Linear), ("lstm", torch.nn.LSTM)) for m in model.modules() if isinstance(m, cls)]
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-3)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    for name, found in instances.items():
        batch = model.collate([(name, found)])
        assert all(t.device == CUDA for t in batch.inputs.values())
        with autocast(CUDA, bf16, fp16):
            loss = model(batch)[name]
        assert torch.isfinite(loss), (name, loss)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad(), model.inference_precision():
            assert model.decode_heads(batch)[0] is not None
    for hook in hooks:
        hook.remove()
    assert all(p.device == CUDA for p in model.parameters())
    moved = [name for name, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[name])]
    assert any(name.startswith("tasks.coref.") for name in moved) and any(name.startswith("levels.1.") for name in moved)
    assert any(name.startswith("embedder.transformer.model.") for name in moved) == fine_tune
    lower = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    assert lower in seen["linear"]  # autocast reached the heads
    assert seen["lstm"] == {torch.float32}  # the levels run in fp32 under any autocast (no fp16 recurrence unscaled)


def train_tiny(folder: Path, device: str, overrides: dict | None = None, recover: bool = False) -> dict:
    config_path = folder / "config.json" if (folder / "config.json").exists() else write_tiny_ner_config(folder)
    out = folder / "run"
    merged = {"trainer": {"device": device, **(overrides or {}).get("trainer", {})}}
    config = load_config(out / "config.json" if recover else config_path, merged, expand=not recover)
    Trainer(config, out, recover=recover).train()
    return json.loads((out / "metrics.json").read_text())


def test_a_gpu_run_resumes_to_the_result_of_an_uninterrupted_one(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    straight = train_tiny(tmp_path / "a", "cuda")
    train_tiny(tmp_path / "b", "cuda", {"trainer": {"num_epochs": 2}})
    state = torch.load(tmp_path / "b" / "run" / "last" / "trainer_state.pt", weights_only=True)
    assert state["cuda_rng"].dtype == torch.uint8  # the GPU's generator (dropout masks) is in the checkpoint
    resumed = train_tiny(tmp_path / "b", "cuda", {"trainer": {"num_epochs": 3}}, recover=True)
    assert [e["validation"] for e in resumed["epochs"]] == [e["validation"] for e in straight["epochs"]]
    assert all(e["peak_gpu_memory_mb"] > 0 for e in straight["epochs"])
    a, b = (load_model(tmp_path / x / "run").state_dict() for x in ("a", "b"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # GPU atomics may differ in the last bits


def test_a_gpu_run_resumes_on_a_machine_without_one(tmp_path):
    train_tiny(tmp_path, "cuda", {"trainer": {"num_epochs": 1}})
    done = subprocess.run([sys.executable, "train.py", "--config_file_path", str(tmp_path / "run" / "config.json"),
                           "--serialization_dir", str(tmp_path / "run"), "--recover",
                           "--overrides", json.dumps({"trainer": {"num_epochs": 2, "device": "cpu"}})],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]) == 2


@pytest.mark.parametrize("trained_on, loaded_on", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_model_moves_between_gpu_and_cpu_with_the_same_predictions(tmp_path, trained_on, loaded_on):
    train_tiny(tmp_path, trained_on, {"trainer": {"num_epochs": 12}})
    here = Predictor.from_serialization_dir(tmp_path / "run", device=trained_on)
    there = Predictor.from_serialization_dir(tmp_path / "run", device=loaded_on)
    assert there.model.device.type == loaded_on and there.info()["device"].startswith(loaded_on)
    assert here.predict(TEXT)["tiny__ner"] == there.predict(TEXT)["tiny__ner"]
    assert here.predict(TEXT)["tiny__ner"]["entities"]  # it found something to compare


def test_evaluate_and_predict_commands_run_on_the_gpu(tmp_path):
    train_tiny(tmp_path, "cuda", {"trainer": {"num_epochs": 2}})
    run = str(tmp_path / "run")
    done = subprocess.run([sys.executable, "evaluate.py", "--serialization_dir", run, "--device", "cuda"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert json.loads((tmp_path / "run" / "evaluation.json").read_text()) == metrics["test"]  # the GPU scores what training tested
    (tmp_path / "docs.txt").write_text(TEXT + "\n")
    done = subprocess.run([sys.executable, "predict.py", "--serialization_dir", run, "--device", "cuda", "--input_file",
                           str(tmp_path / "docs.txt"), "--output_file", str(tmp_path / "out.jsonl")], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["text"] == TEXT


def test_workers_forked_after_cuda_started_collate_what_the_training_process_does(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    in_process = train_tiny(tmp_path / "a", "cuda", {"trainer": {"num_epochs": 2, "num_workers": 0}})
    workers = train_tiny(tmp_path / "b", "cuda", {"trainer": {"num_epochs": 2, "num_workers": 2}})
    assert [e["validation"] for e in workers["epochs"]] == [e["validation"] for e in in_process["epochs"]]


def test_serve_answers_from_the_gpu(tmp_path):
    pytest.importorskip("fastapi")
    from test_serve import call, serving

    from hmtl.serve import create_app

    train_tiny(tmp_path, "cuda", {"trainer": {"num_epochs": 12}})
    predictor = Predictor.from_serialization_dir(tmp_path / "run", device="cuda")
    with serving(create_app(predictor, max_body_bytes=100_000, max_batch=8, serialization_dir=tmp_path / "run")) as port:
        status, info = call(port, "GET", "/info")
        assert status == 200 and info["device"].startswith("cuda")
        status, answer = call(port, "POST", "/predict", {"texts": [TEXT]})
    assert status == 200
    assert answer["documents"][0]["tiny__ner"] == Predictor.from_serialization_dir(tmp_path / "run", device="cpu").predict(TEXT)["tiny__ner"]


def test_torchrun_trains_on_the_gpu_through_nccl(tmp_path):
    config = write_tiny_ner_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", "29533",
                           "train.py", "--config_file_path", str(config), "--serialization_dir", str(tmp_path / "run"),
                           "--overrides", '{"trainer": {"device": "cuda", "num_epochs": 2}}'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data-parallel over 1 process(es), gradients through NCCL" in done.stderr
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]) == 2
