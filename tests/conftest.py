"""Shared fixtures: tiny datasets written per test, and fast options for CPU runs."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Options that make a full train/test run take seconds on a CPU.
FAST = [
    "--gpu_ids",
    "-1",
    "--ngf",
    "8",
    "--ndf",
    "8",
    "--netG",
    "resnet_6blocks",
    "--load_size",
    "36",
    "--crop_size",
    "32",
    "--num_threads",
    "0",
    "--display_id",
    "0",
    "--no_progress",
]


ENTRY_POINTS: dict[Path, Callable[[list[str]], int]] = {}


def entry_point(script: str | Path) -> Callable[[list[str]], int]:
    """The ``main(argv)`` of one of the project's scripts, loaded once per test session."""
    path = (ROOT / script).resolve()
    if path not in ENTRY_POINTS:
        spec = importlib.util.spec_from_file_location(f"entry_{path.parent.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ENTRY_POINTS[path] = module.main
    return ENTRY_POINTS[path]


def run_in_process(script: str | Path, args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Call a script's ``main(argv)`` as its process would run it: same working directory, argv,
    captured stdout/stderr, warnings shown afresh, and the exit status an uncaught exception or
    ``SystemExit`` (argparse) would give. Saves the 4-6 s a new Python pays to import torch."""
    stdout, stderr = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    sys.argv = [str(script), *args]
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            warnings.simplefilter("default")
            try:
                code = entry_point(script)(args)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if isinstance(exit_.code, str):
                    print(exit_.code, file=sys.stderr)
            except Exception:  # noqa: BLE001 - what an uncaught exception does to a process
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
    return subprocess.CompletedProcess([str(script), *args], int(code or 0), stdout.getvalue(), stderr.getvalue())


def run_script(
    script: str | Path,
    *args: object,
    cwd: Path = ROOT,
    timeout: float = 600,
    process: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run one of the project's scripts, capturing its output: in this process through its
    ``main(argv)``, or with ``process=True`` (or an ``env``) in a new Python, for what needs a real
    process (signals, kills, environment variables, torchrun)."""
    arguments = [str(arg) for arg in args]
    if not process and env is None:
        return run_in_process(script, arguments, cwd)
    command = [sys.executable, str(script), *arguments]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def run_ok(script: str | Path, *args: object, **how: object) -> subprocess.CompletedProcess:
    """:func:`run_script` for a run that must succeed (its output's tail is the failure message)."""
    result = run_script(script, *args, **how)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def resume_point(progress: dict) -> dict:
    """A checkpoint's progress without its wall-clock ``train_seconds`` and ``machines`` (which differ between runs)."""
    return {key: value for key, value in progress.items() if key not in ("train_seconds", "machines")}


def write_image(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    image.save(path)
    return path


def make_unaligned(
    root: Path,
    n_a: int = 4,
    n_b: int = 3,
    size: tuple[int, int] = (40, 36),
    masks: bool = True,
    phases: tuple[str, ...] = ("train", "test"),
    seed: int = 0,
) -> Path:
    """Random RGB images in ``<phase>A/`` and ``<phase>B/``; the A masks mark a bright square."""
    rng = np.random.default_rng(seed)
    w, h = size
    for phase in phases:
        for side, count in (("A", n_a), ("B", n_b)):
            for i in range(count):
                image = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
                mask = np.zeros((h, w), np.uint8)
                top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
                mask[top : top + h // 3, left : left + w // 3] = 255
                image[mask > 0] = 250
                write_image(root / f"{phase}{side}" / f"im {i}.png", image)
                if masks:
                    write_image(root / f"{phase}{side}_mask" / f"im {i}.png", mask)
    return root


@pytest.fixture
def tiny_unaligned(tmp_path: Path) -> Path:
    return make_unaligned(tmp_path / "tiny")
