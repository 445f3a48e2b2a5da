"""Where the model runs: a device setting (``trainer.device``, ``--device``) resolved on this machine, and the
autocast that goes with it. Resolved when a command starts (not at config load), so a model trained on a GPU
still loads and predicts on a machine without one."""
from __future__ import annotations

import os

import torch

from hmtl.config import DEVICE_NAMES
from hmtl.errors import HmtlError


def resolve_device(spec: str, key: str = "trainer.device") -> torch.device:
    """``auto``: CUDA when available, else the CPU; ``cpu``; ``cuda`` / ``cuda:N``: that GPU, or a one-line error
    naming ``key`` when this machine has none. Under torchrun, ``auto`` / ``cuda`` mean this rank's GPU
    (``LOCAL_RANK``)."""
    if not DEVICE_NAMES.fullmatch(spec):
        raise HmtlError(f"{key}: unknown device {spec!r}: expected auto, cpu, cuda or cuda:N")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}, no GPU visible"
        raise HmtlError(f"{key}: {spec!r}, but this machine has no usable CUDA device (torch {torch.__version__}, "
                        f"{build}); set it to \"auto\" or \"cpu\"")
    device = torch.device(spec)
    if device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if device.index >= torch.cuda.device_count():
        raise HmtlError(f"{key}: {spec!r}, but this machine has {torch.cuda.device_count()} CUDA device(s) "
                        f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device


def autocast(device: torch.device, bf16: bool = False, fp16: bool = False) -> torch.autocast:
    """Mixed precision on ``device``: bfloat16, float16, or off (a context that changes nothing)."""
    return torch.autocast(device.type, dtype=torch.float16 if fp16 else torch.bfloat16, enabled=bf16 or fp16)
