"""Devices, mixed precision and collation ahead of the model (DataLoader workers)."""
import json
import subprocess
import sys

import pytest
import torch
from torch.overrides import TorchFunctionMode

from hmtl.checks import load_config, parse_config
from conftest import four_task_config, toy_document
from hmtl.data.document import Document
from hmtl.device import resolve_device
from hmtl.errors import ConfigError, HmtlError
from hmtl.model import HierarchicalModel
from hmtl.training.trainer import Trainer, build_labels

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def metrics_and_weights(out):
    epochs = [e["validation"] for e in json.loads((out / "metrics.json").read_text())["epochs"]]
    return epochs, HierarchicalModel.from_pretrained(out / "best").state_dict()


@no_cuda
def test_auto_is_the_cpu_where_there_is_no_gpu():
    assert resolve_device("auto") == torch.device("cpu")


@no_cuda
def test_cuda_without_a_gpu_is_an_error_naming_the_key_before_any_data_is_read(tiny_ner_config, tmp_path):
    config = json.loads(tiny_ner_config.read_text())
    config["data"]["tiny"]["train"] = str(tmp_path / "missing.conll")  # reading it would fail: it is never read
    config["trainer"]["device"] = "cuda"
    with pytest.raises(HmtlError, match=r"^trainer\.device: 'cuda', but this machine has no usable CUDA device"):
        Trainer(parse_config(config), tmp_path / "run")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@no_cuda
def test_the_commands_refuse_a_gpu_they_do_not_have_in_one_line(trained_tiny_ner):
    done = subprocess.run([sys.executable, "evaluate.py", "--serialization_dir", str(trained_tiny_ner), "--device", "cuda:1"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "--device: 'cuda:1'" in done.stderr


def test_an_unknown_device_string_is_a_config_error(tiny_ner_config):
    with pytest.raises(ConfigError, match=r"trainer\.device: unknown device 'gpu': expected auto, cpu, cuda or cuda:N"):
        load_config(tiny_ner_config, {"trainer": {"device": "gpu"}})
    with pytest.raises(HmtlError, match=r"^--device: unknown device 'tpu'"):
        resolve_device("tpu", "--device")
    with pytest.raises(HmtlError, match=r"^--device: unknown device 'cudax'"):  # not torch's own error, on any machine
        resolve_device("cudax", "--device")


def test_bf16_and_fp16_together_are_refused(tiny_ner_config):
    with pytest.raises(ConfigError, match="bf16 and fp16 are both true"):
        load_config(tiny_ner_config, {"trainer": {"bf16": True, "fp16": True}})


def test_workers_collate_the_same_batches_as_the_training_process(tiny_ner_config, tmp_path):
    for workers in (0, 2):
        Trainer(load_config(tiny_ner_config, {"trainer": {"num_workers": workers}}), tmp_path / f"w{workers}").train()
    epochs_in_process, weights_in_process = metrics_and_weights(tmp_path / "w0")
    epochs_with_workers, weights_with_workers = metrics_and_weights(tmp_path / "w2")
    assert epochs_with_workers == epochs_in_process
    assert all(torch.equal(weights_in_process[k], v) for k, v in weights_with_workers.items())


@no_cuda
def test_fp16_off_a_gpu_is_refused_before_any_data_is_read(tiny_ner_config, tmp_path):
    config = json.loads(tiny_ner_config.read_text())
    config["data"]["tiny"]["train"] = str(tmp_path / "missing.conll")
    config["trainer"]["fp16"] = True
    with pytest.raises(HmtlError, match=r'^trainer\.fp16: float16 autocast needs a CUDA device .* use "bf16": true'):
        Trainer(parse_config(config), tmp_path / "run")


def test_bf16_trains_validates_and_tests_under_bf16_autocast_on_the_cpu(tiny_ner_config, tmp_path):
    trainer = Trainer(load_config(tiny_ner_config, {"trainer": {"bf16": True, "num_epochs": 2}}), tmp_path / "run")
    seen = set()  # (training?, dtype of the tag projection's output) at every call
    for projection in trainer.model.task("ner").projections.values():
        projection.register_forward_hook(lambda module, inputs, output: seen.add((module.training, output.dtype)))
    test = trainer.train()
    assert seen == {(True, torch.bfloat16), (False, torch.bfloat16)}  # the steps, validation and test
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]
    assert len(history) == 2 and history[1]["train_loss"]["ner"] < history[0]["train_loss"]["ner"]  # it learns
    assert set(history[1]["validation"]) == set(test)


def test_a_run_with_the_disk_state_cache_tests_as_a_fresh_evaluation_does(tmp_path):
    from tests.conftest import write_tiny_ner_config

    config = json.loads(write_tiny_ner_config(tmp_path, epochs=2).read_text())
    config["embedder"]["transformer"] = {"path": "minilm", "cache": "disk"}
    test = Trainer(parse_config(config), tmp_path / "run").train()
    again = subprocess.run([sys.executable, "evaluate.py", "--serialization_dir", str(tmp_path / "run")],
                           capture_output=True, text=True, check=True)
    assert json.loads((tmp_path / "run" / "evaluation.json").read_text())["tiny__ner_f1"] == test["tiny__ner_f1"], again.stdout


class FactoryCalls(TorchFunctionMode):
    """Records where tensors are made without a device: on a GPU they would land on the CPU."""

    FACTORIES = {torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.tensor, torch.as_tensor,
                 torch.rand, torch.randn, torch.randint, torch.eye, torch.linspace}

    def __init__(self):
        super().__init__()
        self.sites = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.FACTORIES and "device" not in kwargs:
            caller = sys._getframe(1).f_code
            self.sites.add(f"{caller.co_filename.rsplit('/hmtl/', 1)[-1]}:{caller.co_name}")
        return func(*args, **kwargs)


# the levels' lengths are made on the host on purpose: packing reads them there (and a copy goes to the device)
HOST_SIDE = {"model.py:encode", "model.py:_split_sentences"}


def tensors_made_off_the_device(model: HierarchicalModel, batches: list) -> set[str]:
    """Where training and decoding ``batches`` make a tensor without naming a device (on a GPU it would land on the
    CPU), but for the lengths made on the host on purpose."""
    watch = FactoryCalls()
    with watch:
        for batch in batches:
            sum(model(batch).values()).backward()
            model.decode_heads(batch)
    return watch.sites - HOST_SIDE


def toy_model_and_batches() -> tuple[HierarchicalModel, dict]:
    config = parse_config(four_task_config())
    document = toy_document()
    model = HierarchicalModel(config, build_labels(config, {"toy": [document]}))
    return model, {name: model.collate([(name, found)]) for name, found in model.task_instances({"toy": [document]}).items()}


def test_the_model_makes_no_tensor_off_its_device_in_training_or_decoding():
    model, batches = toy_model_and_batches()
    assert not tensors_made_off_the_device(model, list(batches.values()))


class HostReads(TorchFunctionMode):
    """Records where a tensor's values are read back to Python (on a GPU each read waits for the device)."""

    READS = {torch.Tensor.tolist, torch.Tensor.item, torch.Tensor.cpu, torch.Tensor.__bool__, torch.Tensor.__int__,
             torch.Tensor.__float__, torch.Tensor.nonzero, torch.nonzero, torch.Tensor.unique, torch.unique}

    def __init__(self):
        super().__init__()
        self.sites = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.READS:  # the stack only then: walking it on every torch call made this test take minutes
            frame = sys._getframe(1)
            if not frame.f_code.co_filename.endswith("nn/utils/rnn.py"):  # packing: lengths on the host
                while frame is not None and "/hmtl/" not in frame.f_code.co_filename:
                    frame = frame.f_back
                if frame is not None:
                    self.sites.add(f"{frame.f_code.co_filename.rsplit('/hmtl/', 1)[-1]}:{frame.f_code.co_name}")
        return func(*args, **(kwargs or {}))


def test_a_training_step_reads_nothing_back_from_the_device():
    model, batches = toy_model_and_batches()
    sites = {}
    for name, batch in batches.items():
        with HostReads() as watch:
            sum(model(batch).values()).backward()
        sites[name] = watch.sites
    # lengths and span counts come from the host, relation pairs and pruned mentions stay on the device
    assert sites == {"ner": set(), "emd": set(), "re": set(), "coref": set()}, sites


@no_cuda
def test_a_trainer_state_written_on_a_gpu_resumes_on_a_machine_without_one(tiny_ner_config, tmp_path, monkeypatch):
    straight, out = tmp_path / "straight", tmp_path / "run"
    Trainer(load_config(tiny_ner_config), straight).train()
    Trainer(load_config(tiny_ner_config, {"trainer": {"num_epochs": 2}}), out).train()
    path = out / "last" / "trainer_state.pt"
    state = torch.load(path, weights_only=True)
    with monkeypatch.context() as patch:  # what torch.save writes for tensors that live on a GPU
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, path)
    with pytest.raises(RuntimeError, match="CUDA"):  # loaded as it is, it needs a GPU
        torch.load(path, weights_only=True)
    Trainer(load_config(out / "config.json", {"trainer": {"num_epochs": 3}}, expand=False), out, recover=True).train()
    assert metrics_and_weights(out)[0] == metrics_and_weights(straight)[0]


def test_a_damaged_trainer_state_is_one_line_that_says_why(tiny_ner_config, tmp_path):
    out = tmp_path / "run"
    Trainer(load_config(tiny_ner_config, {"trainer": {"num_epochs": 1}}), out).train()
    (out / "last" / "trainer_state.pt").write_bytes(b"not a zip file")
    with pytest.raises(HmtlError, match=r"trainer_state\.pt is not a trainer state this version of hmtl wrote \(.+\); if it is damaged, --force starts the run over, deleting it$"):
        Trainer(load_config(out / "config.json", {"trainer": {"num_epochs": 2}}, expand=False), out, recover=True)


def test_the_gpu_generator_is_saved_and_restored_with_the_cpu_one(monkeypatch):
    from hmtl.training.trainer import rng_states, set_rng_states

    gpu = torch.device("cuda", 1)
    generators = {1: torch.tensor([1, 2, 3], dtype=torch.uint8)}
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: generators[device.index].clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: generators.__setitem__(device.index, state))
    saved = rng_states(gpu)
    assert "cuda_rng" not in rng_states(torch.device("cpu"))
    torch.rand(3)
    generators[1] = torch.tensor([9, 9, 9], dtype=torch.uint8)
    set_rng_states(saved, gpu)
    assert generators[1].tolist() == [1, 2, 3]
    assert torch.equal(torch.get_rng_state(), saved["torch_rng"])


def test_the_levels_stay_fp32_under_autocast_while_the_heads_run_in_bf16(tiny_ner_config):
    from hmtl.device import autocast

    config = load_config(tiny_ner_config)
    model = HierarchicalModel(config, build_labels(config, {"tiny": [Document("d", [["Ada", "lived", "in", "London"]])]}))
    seen = {"linear": set(), "lstm": set()}
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.LSTM)):
            kind = "lstm" if isinstance(module, torch.nn.LSTM) else "linear"
            module.register_forward_hook(lambda m, i, o, kind=kind: seen[kind].add((o[0].data if kind == "lstm" else o).dtype))
    document = Document("d", [["Ada", "lived", "in", "London"]], token_tags={"ner": [["B-PER", "O", "O", "B-LOC"]]})
    instances = model.task_instances({"tiny": [document]})
    with autocast(torch.device("cpu"), bf16=True):
        model(model.collate(list(instances.items())))
    assert seen == {"linear": {torch.bfloat16}, "lstm": {torch.float32}}
