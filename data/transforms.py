"""Preprocessing shared by images and their masks.

The random choices (crop position, flip) are drawn once per sample into a
:class:`GeometryParams` and applied to the image and its mask alike, so a mask stays
on its object. Images are resampled bicubically, masks with nearest neighbour.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")


@dataclass(frozen=True)
class GeometryParams:
    """Resize target (w, h), crop box (left, top, size) or None, and horizontal flip."""

    resize: tuple[int, int]
    crop: tuple[int, int, int] | None
    flip: bool

    def as_tensor(self) -> torch.Tensor:
        """``[resized w, resized h, left, top, crop w, crop h, flip]``: where the sample's pixels lie
        in its resized image (models keeping per-image maps, like GuideGAN's bank, use it)."""
        w, h = self.resize
        left, top, cw, ch = (self.crop[0], self.crop[1], self.crop[2], self.crop[2]) if self.crop else (0, 0, w, h)
        return torch.tensor([w, h, left, top, cw, ch, float(self.flip)], dtype=torch.float32)


def _multiple_of(value: int, base: int = 4) -> int:
    return max(base, int(round(value / base) * base))


def sample_geometry(
    opt: argparse.Namespace, size: tuple[int, int], rng: np.random.Generator, allow_flip: bool = True
) -> GeometryParams:
    """Draw the geometric transform for an image of ``size`` = (w, h) under ``--preprocess``."""
    w, h = size
    mode = opt.preprocess
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"--preprocess must be one of {PREPROCESS_MODES}, got {mode!r}")
    if mode == "resize_and_crop":
        new_w = new_h = opt.load_size
    elif mode.startswith("scale_width"):
        new_w = opt.load_size
        new_h = max(int(round(new_w * h / w)), opt.crop_size)
    else:
        new_w, new_h = w, h
    if mode == "none":
        # Generators halve the image twice; sides must be multiples of 4.
        new_w, new_h = _multiple_of(w), _multiple_of(h)
    crop = None
    if "crop" in mode:
        side = opt.crop_size
        if side > min(new_w, new_h):
            raise ValueError(
                f"--crop_size {side} is larger than the resized image {new_w}x{new_h}; lower --crop_size or raise --load_size"
            )
        crop = (int(rng.integers(0, new_w - side + 1)), int(rng.integers(0, new_h - side + 1)), side)
    flip = allow_flip and not opt.no_flip and bool(rng.random() < 0.5)
    return GeometryParams((new_w, new_h), crop, flip)


def apply_geometry(image: Image.Image, params: GeometryParams, is_mask: bool = False) -> Image.Image:
    """Apply ``params`` to an image (bicubic) or a mask (nearest)."""
    interpolation = TF.InterpolationMode.NEAREST if is_mask else TF.InterpolationMode.BICUBIC
    if image.size != params.resize:
        image = TF.resize(image, [params.resize[1], params.resize[0]], interpolation=interpolation)
    if params.crop is not None:
        left, top, side = params.crop
        image = image.crop((left, top, left + side, top + side))
    if params.flip:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return image


def image_to_tensor(image: Image.Image, channels: int = 3) -> torch.Tensor:
    """PIL RGB image -> ``C x H x W`` float tensor in [-1, 1] (grayscale when channels == 1)."""
    if channels == 1:
        image = image.convert("L")
    return TF.normalize(TF.to_tensor(image), [0.5] * channels, [0.5] * channels)


def mask_to_tensor(mask: Image.Image | None, size: tuple[int, int]) -> torch.Tensor:
    """Mask (mode L, 0/255) -> ``1 x H x W`` float tensor of 0/1; all zeros when absent."""
    if mask is None:
        return torch.zeros(1, size[1], size[0])
    return torch.from_numpy((np.asarray(mask) > 127).astype(np.float32))[None]


def jitter_object(image: torch.Tensor, mask: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Recolour the object of ``image`` (``C x H x W`` in [-1, 1]) where ``mask`` (``1 x H x W``, 0/1) is 1:
    brightness, contrast and saturation each scaled by a factor drawn from ``[1 - strength, 1 + strength]``
    and the hue turned by up to ``strength / 2`` of the colour circle (RGB only); pixels outside the
    mask keep their values. ``--replay_jitter``: a few masks show objects of a few colours, so that the
    attention learns an object's shape and shading rather than its colour."""
    if strength <= 0:
        return image
    low, high = max(0.0, 1 - strength), 1 + strength
    brightness, contrast, saturation = (float(rng.uniform(low, high)) for _ in range(3))
    hue = float(rng.uniform(-strength / 2, strength / 2))
    colour = ((image + 1) / 2 * brightness).clamp(0, 1)
    if image.shape[0] == 3:
        colour = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(colour, contrast), saturation), hue)
    else:  # grey: contrast about the mean, no colour to turn
        colour = ((colour - colour.mean()) * contrast + colour.mean()).clamp(0, 1)
    return mask * (colour * 2 - 1) + (1 - mask) * image
