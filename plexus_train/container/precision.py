"""The precision of training's forward passes: bfloat16 autocast where the hardware multiplies bfloat16 natively,
float32 elsewhere.

Autocast runs the matrix products (linear layers, attention) in bfloat16 and keeps what needs the range in float32
(layer norms, softmax, the loss); the weights, their gradients and the optimizer's state stay float32. On a CPU
with AMX (Intel Sapphire Rapids and later, what SageMaker's ml.c7i/m7i/r7i run) a MiniLM training step takes about
half the time, a frozen layer's forward a third; a CPU without it would emulate bfloat16 more slowly than float32,
so `auto` keeps float32 there, as on a GPU without bfloat16 (V100, T4).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

PRECISIONS = ("auto", "bfloat16", "float32")


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 in hardware: a CUDA GPU of compute capability 8 or later (Ampere), or
    a CPU with AMX tiles (torch's own check; a build without it answers no). A CPU with AVX512-BF16 but no AMX (AMD
    Zen 4) has bfloat16 dot products but no matrix units; not measured here, it is left to float32."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    return False


def resolve(setting: str, device: torch.device) -> torch.dtype:
    """The dtype of the forward passes' matrix products for `setting` (one of PRECISIONS) on `device`."""
    if setting not in PRECISIONS:
        raise ValueError(f"precision {setting!r}: expected one of {', '.join(PRECISIONS)}")
    if setting == "auto":
        return torch.bfloat16 if native_bfloat16(device) else torch.float32
    return getattr(torch, setting)


def autocast(device: torch.device, dtype: torch.dtype) -> AbstractContextManager:
    """Within: forward passes on `device` compute in `dtype` where autocast allows (float32: as written)."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
