"""Writing the built-in dataset to disk: the folder layouts, parallel rendering, the metadata that
identifies a dataset, and atomic installation (:func:`make_synthetic_dataset`, :func:`ensure_synthetic_dataset`)."""

from __future__ import annotations

import inspect
import json
import multiprocessing
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data.synthetic.drawing import BACKGROUNDS
from data.synthetic.looks import LOOKS
from data.synthetic.scenes import MIN_SIZE, empty_indices, image_rng, render_multidomain_scene, render_paired_scene, render_scene

# Bump whenever the rendered pixels change, so that stale datasets are detected.
GENERATOR_VERSION = 1
METADATA_FILE = "synthetic.json"


@dataclass(frozen=True)
class _Task:
    """One image (unaligned) or one A|B pair (aligned) to render and save."""

    root: str
    split: str
    domain: str  # 'A', 'B' or 'AB' (aligned)
    index: int
    size: int
    seed: int
    empty: bool
    backgrounds: str = "overlapping"


def image_name(index: int) -> str:
    """File name of image ``index`` (shared by the image and its mask)."""
    return f"{index:05d}.png"


def _save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, format="PNG")


def _mask_to_png(mask: np.ndarray) -> np.ndarray:
    return np.where(mask, 255, 0).astype(np.uint8)


def _render_task(task: _Task) -> None:
    """Render one task and write its image and mask (runs in worker processes)."""
    rng = image_rng(task.seed, task.split, task.domain, task.index)
    n_objects = 0 if task.empty else None
    root, name = Path(task.root), image_name(task.index)
    if task.domain == "AB":
        scene_a, scene_b = render_paired_scene(rng, task.size, n_objects=n_objects, backgrounds=task.backgrounds)
        image = np.concatenate([scene_a.image, scene_b.image], axis=1)
        mask = scene_a.mask  # one mask per pair: the geometry is shared
        folder = task.split
    elif task.domain in LOOKS:
        image, mask = render_multidomain_scene(rng, task.size, task.domain, n_objects=n_objects)
        folder = f"{task.split}/{task.domain}"
    else:
        image, mask = render_scene(rng, task.size, task.domain, n_objects=n_objects, backgrounds=task.backgrounds)
        folder = f"{task.split}{task.domain}"
    _save_png(image, root / folder / name)
    _save_png(_mask_to_png(mask), root / f"{folder}_mask" / name)


def _layout(aligned: bool, n_train: int, n_test: int, domains: int = 0) -> dict[str, tuple[str, str, int]]:
    """Image folder -> (split, domain, count)."""
    counts = {"train": n_train, "test": n_test}
    if aligned:
        return {split: (split, "AB", n) for split, n in counts.items()}
    if domains:
        return {f"{split}/{look}": (split, look, n) for split, n in counts.items() for look in LOOKS[:domains]}
    return {f"{split}{d}": (split, d, n) for split, n in counts.items() for d in ("A", "B")}


def _dataset_params(
    size: int,
    n_train: int,
    n_test: int,
    seed: int,
    aligned: bool,
    empty_fraction: float,
    backgrounds: str = "overlapping",
    domains: int = 0,
) -> dict[str, Any]:
    """Everything that determines the dataset's content (stored in synthetic.json)."""
    return {
        "generator": "synthetic",
        "version": GENERATOR_VERSION,
        "size": int(size),
        "n_train": int(n_train),
        "n_test": int(n_test),
        "seed": int(seed),
        "aligned": bool(aligned),
        "empty_fraction": float(empty_fraction),
        "backgrounds": str(backgrounds),
        "domains": int(domains),
    }


def _validate_params(
    size: int,
    n_train: int,
    n_test: int,
    seed: int,
    empty_fraction: float,
    workers: int | None,
) -> None:
    if size < MIN_SIZE:
        raise ValueError(f"size must be >= {MIN_SIZE}, got {size}")
    if n_train < 0 or n_test < 0:
        raise ValueError(f"image counts must be >= 0, got n_train={n_train}, n_test={n_test}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 0.0 <= empty_fraction <= 1.0:
        raise ValueError(f"empty_fraction must be in [0, 1], got {empty_fraction}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")


def _make_tasks(root: Path, params: dict[str, Any]) -> list[_Task]:
    tasks = []
    layout = _layout(params["aligned"], params["n_train"], params["n_test"], params["domains"])
    for split, domain, count in layout.values():
        empties = empty_indices(params["seed"], split, domain, count, params["empty_fraction"])
        for index in range(count):
            tasks.append(
                _Task(
                    str(root),
                    split,
                    domain,
                    index,
                    params["size"],
                    params["seed"],
                    index in empties,
                    params["backgrounds"],
                )
            )
    return tasks


def _run_tasks(tasks: list[_Task], workers: int, progress: bool) -> None:
    """Render all tasks, in a process pool when that can help."""
    from tqdm import tqdm

    workers = max(1, min(workers, len(tasks)))
    if workers == 1:
        for task in tqdm(tasks, desc="synthetic dataset", unit="img", disable=not progress):
            _render_task(task)
        return
    # Workers only need numpy and Pillow.  'fork' starts them instantly and,
    # unlike 'spawn', does not re-import the caller's __main__ (e.g. train.py).
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    chunk = max(1, min(64, len(tasks) // (4 * workers)))
    # The bar is created after the pool so that tqdm's monitor thread does not
    # exist yet when the workers are forked.
    with (
        context.Pool(workers) as pool,
        tqdm(total=len(tasks), desc="synthetic dataset", unit="img", disable=not progress) as bar,
    ):
        for _ in pool.imap_unordered(_render_task, tasks, chunksize=chunk):
            bar.update()


def _read_metadata(root: Path) -> dict[str, Any] | None:
    """The synthetic.json of ``root``, or None if there is none (or it is unreadable)."""
    try:
        return json.loads((root / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None


def _is_complete(root: Path, params: dict[str, Any]) -> bool:
    """Whether ``root`` holds every file that ``params`` call for."""
    layout = _layout(params["aligned"], params["n_train"], params["n_test"], params.get("domains", 0))
    for folder, (_, _, count) in layout.items():
        for sub in (folder, f"{folder}_mask"):
            directory = root / sub
            if not directory.is_dir() or sum(1 for _ in directory.glob("*.png")) != count:
                return False
    return True


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


# Options of make_synthetic_dataset that determine the dataset's content.
_CONTENT_OPTIONS = ("size", "n_train", "n_test", "seed", "aligned", "empty_fraction", "backgrounds", "domains")


def _content_params(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata keys that determine content (extra keys, e.g. counts, are ignored)."""
    defaults = _dataset_params(MIN_SIZE, 0, 0, 0, False, 0.0)
    # Keys added after a dataset was written take the value that reproduces it.
    return {key: metadata.get(key, defaults[key] if key in ("backgrounds", "domains") else None) for key in defaults}


def _check_replaceable(root: Path, overwrite: bool) -> bool:
    """Whether ``root`` holds a dataset to replace; raise if it must be kept."""
    if not root.exists() or _is_empty_dir(root):
        return False
    if not root.is_dir() or _read_metadata(root) is None:
        raise ValueError(f"{root} exists and is not a synthetic dataset; refusing to replace it")
    if not overwrite:
        raise FileExistsError(f"{root} already exists; pass overwrite=True (CLI: --force) to regenerate it")
    return True


def _install(staging: Path, root: Path, params: dict[str, Any], overwrite: bool) -> None:
    """Move the finished ``staging`` folder to ``root`` (a rename: all or nothing)."""
    if _check_replaceable(root, overwrite):
        # Move the old dataset aside first: rename cannot replace a non-empty folder.
        trash = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, trash / root.name)
        os.replace(staging, root)
        shutil.rmtree(trash, ignore_errors=True)
        return
    try:
        os.replace(staging, root)  # also replaces an empty directory
    except OSError:
        # Another process finished the same dataset first: fine if identical.
        metadata = _read_metadata(root)
        if metadata is None or _content_params(metadata) != params or not _is_complete(root, params):
            raise
        shutil.rmtree(staging, ignore_errors=True)


def make_synthetic_dataset(
    root: str | Path,
    *,
    size: int = 128,
    n_train: int = 1000,
    n_test: int = 100,
    seed: int = 0,
    aligned: bool = False,
    empty_fraction: float = 0.03,
    backgrounds: str = "overlapping",
    domains: int = 0,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Generate the synthetic benchmark into ``root`` and return ``root``.

    Files are written into a temporary sibling folder that is renamed into
    place at the end, so an interrupted run never leaves a dataset that looks
    complete.  ``synthetic.json`` records the parameters.

    Args:
        root: output folder; must not exist, be empty, or (with ``overwrite``)
            hold a previous synthetic dataset.  Other folders are never replaced.
        size: side of the square images in pixels (>= 16).
        n_train: images per domain (pairs if aligned) in the train split.
        n_test: images per domain (pairs if aligned) in the test split.
        seed: base seed (>= 0); output is byte-identical for equal parameters.
        aligned: write the pix2pix A|B layout instead of the CycleGAN one.
        empty_fraction: fraction of images (per split and domain) with no object.
        backgrounds: "overlapping" background palettes (default) or "distinct" ones, the
            hard-background setting where the domains' backgrounds differ strongly.
        domains: 0 for the two-domain layout; 2-4 for the multi-domain layout
            (``train/<look>/``, ``train/<look>_mask/``, ...) with the first ``domains`` of
            ``LOOKS`` (plain, striped, spotted, checked objects) on domain-independent backgrounds.
        workers: processes to use (default ``os.cpu_count()``); does not change
            the output.
        progress: show a tqdm progress bar.
        overwrite: replace an existing synthetic dataset at ``root``.

    Raises:
        ValueError: bad parameters, or ``root`` is a non-synthetic folder.
        FileExistsError: ``root`` holds a dataset and ``overwrite`` is False.
    """
    _validate_params(size, n_train, n_test, seed, empty_fraction, workers)
    if backgrounds not in BACKGROUNDS:
        raise ValueError(f"backgrounds must be one of {BACKGROUNDS}, got {backgrounds!r}")
    if domains and not (2 <= domains <= len(LOOKS) and not aligned):
        raise ValueError(f"domains must be 0 or 2..{len(LOOKS)} (and not aligned), got {domains}")
    root = Path(root)
    params = _dataset_params(size, n_train, n_test, seed, aligned, empty_fraction, backgrounds, domains)
    _check_replaceable(root, overwrite)  # fail before spending time rendering

    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        layout = _layout(aligned, n_train, n_test, domains)
        for folder in layout:
            (staging / folder).mkdir(parents=True)
            (staging / f"{folder}_mask").mkdir(parents=True)
        _run_tasks(_make_tasks(staging, params), workers or os.cpu_count() or 1, progress)
        counts = {folder: count for folder, (_, _, count) in layout.items()}
        metadata = {**params, "counts": counts}
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
        _install(staging, root, params, overwrite)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return root


def ensure_synthetic_dataset(root: str | Path, **kwargs: Any) -> Path:
    """Return ``root`` if it holds a complete synthetic dataset with these parameters.

    Otherwise generate it (``kwargs`` are those of :func:`make_synthetic_dataset`;
    ``workers`` and ``progress`` do not affect the content).  An incomplete
    synthetic dataset with matching parameters is regenerated.

    Raises:
        ValueError: ``root`` exists but is not a synthetic dataset, or was made
            with different parameters (it is never deleted).
    """
    root = Path(root)
    if not root.exists() or _is_empty_dir(root):
        return make_synthetic_dataset(root, **kwargs)
    metadata = _read_metadata(root) if root.is_dir() else None
    if metadata is None:
        raise ValueError(
            f"{root} exists but is not a synthetic dataset (no readable {METADATA_FILE}); "
            "refusing to touch it. Choose another location or pass --dataroot."
        )
    options = {key: kwargs[key] for key in _CONTENT_OPTIONS if key in kwargs}
    wanted = _dataset_params(**{**_default_params(), **options})
    found = _content_params(metadata)
    if found != wanted:
        differences = ", ".join(
            f"{key}: found {found[key]!r}, wanted {wanted[key]!r}" for key in wanted if found[key] != wanted[key]
        )
        raise ValueError(
            f"{root} holds a synthetic dataset with different parameters ({differences}). "
            "Use another location, or regenerate it with scripts/make_synthetic_dataset.py --force."
        )
    if _is_complete(root, wanted):
        return root
    return make_synthetic_dataset(root, **{**kwargs, "overwrite": True})


def _default_params() -> dict[str, Any]:
    """Defaults of the content-determining options of :func:`make_synthetic_dataset`."""
    parameters = inspect.signature(make_synthetic_dataset).parameters
    return {key: parameters[key].default for key in _CONTENT_OPTIONS}
