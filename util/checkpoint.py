"""Checkpoints that resume training exactly, written atomically.

A checkpoint is one file, ``<checkpoints_dir>/<name>/latest.pt`` or ``epoch_<N>.pt``,
holding: the model name, the architecture options, every network, optimiser, gradient
scaler and scheduler, the progress counters (next epoch, position in its sample order,
images seen) and, per training process (``ranks``), its image pools, model-specific
per-process state and the random-number-generator states of Python, NumPy and torch (CPU
and CUDA). See docs/formats.md.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from util import distributed
from util.errors import UserError

FORMAT_VERSION = 1


def _atomic_replace(path: Path, write) -> None:
    """Write through ``write(file_object)`` to a temp file beside ``path``, then rename it over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` that never leaves a half-written file at ``path``."""
    _atomic_replace(path, lambda handle: torch.save(obj, handle))


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    _atomic_replace(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a binary file atomically."""
    _atomic_replace(path, lambda handle: handle.write(data))


def capture_rng_state() -> dict[str, Any]:
    """The global random states, so a resumed run draws the same numbers."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(path: Path, model: Any, opt: Any, progress: dict[str, int]) -> None:
    """Write everything needed to resume (see the module docstring). Called on every rank at
    the same point: each rank's pools and random states are gathered, and rank 0 writes."""
    ranks = distributed.gather_objects({"state": model.rank_state(), "rng": capture_rng_state()})
    if not distributed.context().is_main:
        return
    options = {k: v for k, v in vars(opt).items() if isinstance(v, (int, float, str, bool, list, type(None)))}
    atomic_save(
        {
            "format_version": FORMAT_VERSION,
            "model": opt.model,
            "architecture": model.architecture(),
            "options": options,
            "progress": progress,
            "state": model.training_state(),
            "ranks": ranks,
        },
        path,
    )


def save_inference_checkpoint(
    path: Path, model: str, architecture: dict[str, Any], networks: dict[str, dict[str, torch.Tensor]], options: dict[str, Any]
) -> None:
    """Write a checkpoint that holds only weights (converted from another code base): test.py and
    translate.py load it like any other; it cannot be resumed."""
    atomic_save(
        {
            "format_version": FORMAT_VERSION,
            "model": model,
            "architecture": architecture,
            "options": options,
            "progress": {"epoch": 1, "position": 0, "total_iters": 0},
            "state": {"networks": networks},
            "ranks": [],
        },
        path,
    )


def upgrade_checkpoint(checkpoint: dict[str, Any], batch_size: int) -> dict[str, Any]:
    """Read checkpoints of the first layout (one process, progress in batches) as the current one."""
    progress = checkpoint["progress"]
    if "position" not in progress:
        progress["position"] = progress.pop("batch", 0) * batch_size
    if "ranks" not in checkpoint:
        pools = checkpoint["state"].pop("pools", {})
        checkpoint["ranks"] = [{"state": {"pools": pools, "extra": {}}, "rng": checkpoint.pop("rng")}]
    return checkpoint


def checkpoint_path(run_dir: Path, epoch: str | int) -> Path:
    """``latest.pt`` for ``"latest"``, ``epoch_<N>.pt`` for a number."""
    label = str(epoch)
    if label == "latest":
        return Path(run_dir) / "latest.pt"
    if not label.isdigit():
        raise UserError(f"--epoch must be 'latest' or an epoch number, got {label!r}")
    return Path(run_dir) / f"epoch_{int(label)}.pt"


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint, with a clear error when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        available = sorted(p.name for p in path.parent.glob("*.pt")) if path.parent.is_dir() else []
        raise UserError(
            f"checkpoint {path} not found (available: {available or 'none'}); check --name, --checkpoints_dir and --epoch"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise UserError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); it may be corrupt") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path} is not a checkpoint of this toolkit (format {FORMAT_VERSION}); "
            f"weights from other code bases need a conversion, see docs/"
        )
    return state


def check_architecture(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Fail with the option that differs when a checkpoint does not fit the chosen architecture."""
    for key, value in current.items():
        if key in saved and saved[key] != value:
            raise UserError(
                f"checkpoint {path} was trained with --{key} {saved[key]}, but this run uses "
                f"--{key} {value}; pass --{key} {saved[key]} to load it"
            )
