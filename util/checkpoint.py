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
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from util import distributed
from util.errors import RunFailed, UserError, disk_full, is_disk_full

FORMAT_VERSION = 1


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Files get the permissions ``open()`` would give them (0666 minus the umask), not mkstemp's 0600.
_FILE_MODE = 0o666 & ~_current_umask()


def _atomic_replace(path: Path, write) -> None:
    """Write through ``write(file_object)`` to a temp file beside ``path``, then rename it over.

    A full disk raises :class:`util.errors.DiskFull` naming the device and ``path``; the temp
    file is removed and the previous ``path`` is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name must not grow with the final one: a legal 250-byte name would pass 255.
        fd, tmp = tempfile.mkstemp(prefix=".atomic-", suffix=".tmp", dir=path.parent)
    except OSError as err:
        if is_disk_full(err):
            raise disk_full(path, path.exists()) from None
        raise
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(err):
            raise disk_full(path, path.exists()) from None
        raise


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temp files that killed writes left in ``folder`` (``.atomic-*.tmp``; ``.NAME.*.tmp`` from older
    versions); returns them."""
    stale = sorted(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def non_finite_entries(state_dicts: dict[str, dict[str, torch.Tensor]]) -> list[str]:
    """``network.key`` of every floating tensor holding NaN or infinity."""
    return [
        f"{net}.{key}"
        for net, weights in state_dicts.items()
        for key, value in weights.items()
        if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


def _numpy_array_globals() -> list[Any]:
    """What unpickling a plain NumPy array needs: older checkpoints kept NumPy's random state as one."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def safe_load(path: Path) -> Any:
    """``torch.load`` that runs no code from the file (``weights_only``): it rebuilds tensors,
    numbers, strings, lists, tuples and dicts, and the plain NumPy arrays of checkpoints written
    before format 1 stored its random states as tensors (the documented upgrade path, docs/formats.md).
    Anything else, e.g. a pickle that would call a function, raises before running."""
    with torch.serialization.safe_globals(_numpy_array_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_state_dict_file(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A ``state_dict`` file from another code base (released weights), loaded without running code;
    a clear error when it is missing, unreadable or not a dict of tensors. ``what`` names the file kind."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found: pass {what}")
    try:
        state = safe_load(path)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to the user
        if refused_as_code(err):
            raise UserError(unsafe_file_message(path, "weights file")) from None
        raise UserError(f"{path} is not a PyTorch state_dict ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                        f"pass {what}") from None
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} is not a generator state_dict (a dict of tensors); pass {what}")
    return state


def refuse_existing_run(run_dir: Path, overwrite: bool) -> None:
    """Converters write a new run: an existing run's checkpoints are kept unless ``--overwrite``."""
    existing = sorted(p.name for p in Path(run_dir).glob("*.pt"))
    if existing and not overwrite:
        raise UserError(f"run {run_dir} already has checkpoints ({', '.join(existing[:4])}); choose another --name, "
                        f"or pass --overwrite to replace them")


def refused_as_code(err: BaseException) -> bool:
    """Whether :func:`safe_load` refused a file because unpickling it would have run code."""
    text = str(err).lower()  # torch words it "Unsupported global: ..." or "unsupported GLOBAL ... is blocked"
    return isinstance(err, pickle.UnpicklingError) and ("unsupported global" in text or "allowlisted" in text)


def unsafe_file_message(path: Path, what: str) -> str:
    return (f"{what} {path} holds Python objects other than weights, numbers and text, and loading it would run "
            f"code from the file; it was not written by this toolkit (or was altered), so it is refused. Load only "
            f"files from a source you trust")


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
    """The global random states, so a resumed run draws the same numbers; only tensors, numbers,
    strings and tuples, so a checkpoint loads without running code (:func:`safe_load`)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                   "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    saved = state["numpy"]
    if isinstance(saved, dict):
        np.random.set_state((saved["kind"], saved["key"].numpy().astype(np.uint32), saved["pos"], saved["has_gauss"],
                             saved["cached_gaussian"]))
    else:  # checkpoints written before the tensor form held NumPy's own tuple
        np.random.set_state(saved)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(path: Path, model: Any, opt: Any, progress: dict[str, float]) -> None:
    """Write everything needed to resume (see the module docstring). Called on every rank at
    the same point: each rank's pools and random states are gathered, and rank 0 writes."""
    ranks = distributed.gather_objects({"state": model.rank_state(), "rng": capture_rng_state()})
    if not distributed.context().is_main:
        return
    state = model.training_state()
    broken = non_finite_entries(state["networks"])
    if broken:
        raise RunFailed(
            f"the weights became non-finite ({', '.join(broken[:4])}{', ...' if len(broken) > 4 else ''}); "
            f"{path} was not written, so the checkpoints on disk hold finite weights. Lower --lr, or train in fp32, "
            f"and resume from the last good checkpoint with --continue_train"
        )
    options = {k: v for k, v in vars(opt).items() if isinstance(v, (int, float, str, bool, list, type(None)))}
    atomic_save(
        {
            "format_version": FORMAT_VERSION,
            "model": opt.model,
            "architecture": model.architecture(),
            "options": options,
            "progress": progress,
            "state": state,
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
        state = safe_load(path)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        if refused_as_code(err):
            raise UserError(unsafe_file_message(path, "checkpoint")) from None
        others = sorted((p for p in path.parent.glob("epoch_*.pt") if p != path), key=_epoch_number)
        hint = (
            f"; resume from an epoch snapshot instead: {', '.join(f'--epoch {_epoch_number(p)}' for p in others)}"
            if others
            else ""
        )
        raise UserError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); it may be corrupt{hint}") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{path} is not a checkpoint of this toolkit (format {FORMAT_VERSION}); "
            f"weights from other code bases need a conversion, see docs/"
        )
    return state


def _epoch_number(path: Path) -> int:
    return int(path.stem.split("_", 1)[1]) if path.stem.split("_", 1)[-1].isdigit() else -1


def check_architecture(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Fail with the option that differs when a checkpoint does not fit the chosen architecture."""
    for key, value in current.items():
        if key in saved and saved[key] != value:
            raise UserError(
                f"checkpoint {path} was trained with --{key} {saved[key]}, but this run uses "
                f"--{key} {value}; pass --{key} {saved[key]} to load it"
            )
