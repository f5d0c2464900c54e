"""Shared fixtures: tiny datasets written per test, and fast options for CPU runs."""

from __future__ import annotations

import subprocess
import sys
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


def run_script(script: str | Path, *args: object, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run one of the project's scripts in a subprocess, capturing its output."""
    command = [sys.executable, str(script), *(str(arg) for arg in args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)


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
