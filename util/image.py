"""Tensor <-> picture conversion and atomic image files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from util.checkpoint import atomic_write_bytes


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """One ``C x H x W`` picture -> ``H x W x 3`` uint8.

    3-channel images are taken to be in [-1, 1]; 1-channel maps (attention, masks) in
    [0, 1] and shown in gray.
    """
    array = tensor.detach().float().cpu()
    if array.shape[0] == 1:
        array = array.clamp(0, 1).repeat(3, 1, 1)
    else:
        array = ((array[:3] + 1) / 2).clamp(0, 1)
    return (array.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def save_image(image: np.ndarray, path: Path, aspect_ratio: float = 1.0) -> None:
    """Save ``H x W x 3`` uint8 as PNG atomically, stretched to ``aspect_ratio`` (w/h) if not 1."""
    picture = Image.fromarray(image)
    h, w = image.shape[:2]
    if aspect_ratio > 1.0:
        picture = picture.resize((int(w * aspect_ratio), h), Image.BICUBIC)
    elif aspect_ratio < 1.0:
        picture = picture.resize((w, int(h / aspect_ratio)), Image.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    atomic_write_bytes(Path(path), buffer.getvalue())


def fit_name(stem: str, max_bytes: int) -> str:
    """``stem`` cut to at most ``max_bytes`` bytes of UTF-8 (file names may hold 255 bytes, and the
    toolkit adds suffixes such as ``_fake_B.png`` or ``_attention.png`` to input names)."""
    encoded = stem.encode("utf-8")
    if len(encoded) <= max_bytes:
        return stem
    return encoded[:max_bytes].decode("utf-8", errors="ignore")
