"""Finding and reading images and masks, with errors that name the file and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from util.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")


def is_image_file(name: str | Path) -> bool:
    return str(name).lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: Path, max_count: float = float("inf"), layout_hint: str = "") -> list[Path]:
    """Sorted image files under ``folder`` (recursively), at most ``max_count`` of them.

    A missing or image-less folder is a :class:`UserError` that names the folder and,
    when given, the expected layout.
    """
    hint = f"\nExpected layout: {layout_hint}" if layout_hint else ""
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist.{hint}")
    paths = sorted(
        Path(root) / name for root, _dirs, names in os.walk(folder, followlinks=True) for name in names if is_image_file(name)
    )
    if not paths:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {folder}.{hint}")
    return paths[: int(min(max_count, len(paths)))]


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err}. Replace or remove the file.") from None
    return image


def load_rgb(path: Path) -> Image.Image:
    """Open an image as 8-bit RGB.

    Palette and transparent images are composited over white (transparent pixels have
    no meaningful colour), CMYK and grayscale (8 or 16 bit) are converted.
    """
    image = _open(path)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_mask(path: Path, size: tuple[int, int]) -> Image.Image:
    """Open a mask as mode ``L`` with values 0/255, resized (nearest) to ``size`` = (w, h).

    Any value above 127 counts as object, so anti-aliased or JPEG-saved masks still
    binarise sensibly.
    """
    mask = _open(path).convert("L")
    if mask.size != size:
        mask = mask.resize(size, Image.NEAREST)
    return mask.point(lambda value: 255 if value > 127 else 0)


def find_mask(mask_dir: Path | None, image_path: Path, image_root: Path) -> Path | None:
    """The mask of ``image_path``: same relative stem under ``mask_dir``, PNG (or any image type)."""
    if mask_dir is None:
        return None
    relative = image_path.relative_to(image_root).with_suffix("")
    candidate = mask_dir / relative.with_suffix(".png")
    if candidate.is_file():
        return candidate
    for extension in IMAGE_EXTENSIONS:
        candidate = mask_dir / relative.with_suffix(extension)
        if candidate.is_file():
            return candidate
    return None
