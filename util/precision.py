"""Mixed precision for training and testing (``--precision fp32|bf16|fp16|auto``).

``auto`` is bf16 where the hardware runs it fast (CPUs with AVX512-BF16 or AMX, NVIDIA GPUs of
compute capability 8.0 or newer, i.e. Ampere on) and fp32 elsewhere (:func:`resolve`).

One :class:`Precision` per run decides the autocast dtype and owns nothing else; the base
model uses it so that model files never touch autocast or gradient scalers:

- networks run under ``torch.autocast`` (convolutions in bf16/fp16, the rest as autocast
  decides) and hand their outputs back in fp32 (:func:`to_fp32`), so every loss and metric a
  model computes from them is computed in fp32;
- with fp16, each optimiser gets its own ``GradScaler`` (:meth:`Precision.make_scaler`),
  whose state is checkpointed with the optimiser;
- bf16 needs no scaler: its exponent range is fp32's.

The autocast weight cache lives as long as one autocast region; the base model clears it
after every optimiser step, because the optimiser changes the weights in place and a cached
low-precision copy would then be stale (see ``BaseModel.minimize``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
from typing import Any

import torch

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _cpuinfo(field: str) -> str:
    """The first ``field`` line of ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.split(":", 1)[0].strip() == field:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    return set(_cpuinfo("flags").split())


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def describe_hardware(device: torch.device) -> str:
    """What a timing ran on, for reports: the GPU's name, or the CPU's model, cores and bf16 support."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    _, why = fast_bf16(device)
    family, model = _cpuinfo("cpu family"), _cpuinfo("model")
    kind = f" (family {family}, model {model})" if family and model else ""
    return f"{_cpuinfo('model name') or platform.processor() or 'CPU'}{kind}, {usable_cores()} cores, {why}"


UNRECORDED_MACHINE = "a machine not recorded (earlier calls)"


def add_call_time(by_machine: dict[str, dict[str, float]], machine: str, seconds: float, images: int,
                  train_seconds_before: float = 0.0, images_before: int = 0) -> dict[str, dict[str, float]]:
    """Training time and images per machine of a run resumed across calls, with this call's added
    (checkpoint ``progress["machines"]``), so that a run trained on two CPUs reports each one's
    seconds per image. Time and images of earlier calls that recorded no machine (checkpoints older
    than this record) go under :data:`UNRECORDED_MACHINE`."""
    totals = {name: dict(entry) for name, entry in by_machine.items()}
    recorded_seconds = sum(entry["seconds"] for entry in totals.values())
    recorded_images = sum(entry["images"] for entry in totals.values())
    if train_seconds_before - recorded_seconds > 1.0 or images_before > recorded_images:
        earlier = totals.setdefault(UNRECORDED_MACHINE, {"seconds": 0.0, "images": 0})
        earlier["seconds"] = round(earlier["seconds"] + max(0.0, train_seconds_before - recorded_seconds), 1)
        earlier["images"] += max(0, images_before - recorded_images)
    entry = totals.setdefault(machine, {"seconds": 0.0, "images": 0})
    entry["seconds"] = round(entry["seconds"] + seconds, 1)
    entry["images"] += images
    return totals


def fast_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` runs bf16 convolutions fast, and why (for the log)."""
    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        name = torch.cuda.get_device_name(device)
        return major >= 8, f"{name}, compute capability {major}.{minor}"
    flags = cpu_flags() & {"avx512_bf16", "amx_bf16"}
    return bool(flags), f"CPU flags {', '.join(sorted(flags))}" if flags else "CPU without AVX512-BF16 or AMX"


def resolve(name: str, device: torch.device) -> tuple[str, str]:
    """``(precision to use, why)``: ``auto`` becomes bf16 or fp32 (see the module docstring)."""
    if name != "auto":
        return name, "asked for"
    fast, why = fast_bf16(device)
    return ("bf16" if fast else "fp32"), why


class Precision:
    """The numeric format networks run in on ``device``."""

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in PRECISIONS:
            raise ValueError(f"--precision must be one of {PRECISIONS}, got {name!r}")
        self.asked = name
        name, self.why = resolve(name, device)
        self.name = name
        self.dtype = _DTYPES[name]
        self.device_type = torch.device(device).type
        self.enabled = name != "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast region for forward passes (a no-op context for fp32)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def full_precision(self) -> contextlib.AbstractContextManager:
        """A region where autocast is off (backward passes, optimiser steps)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, enabled=False)

    def make_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, active only for fp16 (a pass-through otherwise)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")


def to_fp32(value: Any) -> Any:
    """Cast every floating tensor in ``value`` (tensors, dataclasses, tuples, lists, dicts) to fp32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: to_fp32(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, tuple):
        return type(value)(*map(to_fp32, value)) if hasattr(value, "_fields") else tuple(map(to_fp32, value))
    if isinstance(value, list):
        return [to_fp32(v) for v in value]
    if isinstance(value, dict):
        return {k: to_fp32(v) for k, v in value.items()}
    return value


def channels_last(value: Any) -> Any:
    """Put every 4-d tensor in ``value`` (tensors, tuples, lists) into channels-last memory format."""
    if isinstance(value, torch.Tensor):
        return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value
    if isinstance(value, (tuple, list)):
        return type(value)(channels_last(v) for v in value)
    return value
