"""Finding and reading images and masks, with errors that name the file and the fix.

- Folders are searched recursively; symbolic links are followed, each folder and each file
  once (a link loop cannot repeat images).
- Every format Pillow reads is accepted (by file extension); other files are skipped with
  one note per folder.
- A mask is read as "non-zero = object" in any mode (gray, RGB, palette, 16-bit): a mask
  with two values marks the larger one as object, a soft or JPEG-saved mask is thresholded
  at half range, and a mask whose values are all small but varied (a label map) is refused
  by name. A mask must have its image's size.
- :func:`scan_images` checks every file's header when a dataset is built, so a broken file
  stops a run in its first second rather than mid-epoch.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from util.errors import UserError


def _readable_extensions() -> tuple[str, ...]:
    """Extensions of the formats this Pillow build can open."""
    extensions = Image.registered_extensions()
    return tuple(sorted(ext for ext, fmt in extensions.items() if fmt in Image.OPEN))


IMAGE_EXTENSIONS = _readable_extensions()
_IGNORED_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}


def is_image_file(name: str | Path) -> bool:
    return str(name).lower().endswith(IMAGE_EXTENSIONS)


def walk_once(folder: Path) -> list[Path]:
    """Every file under ``folder``, following links, visiting each real folder and file once."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    files = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        stat = os.stat(root)
        if (stat.st_dev, stat.st_ino) in seen_dirs:
            dirs[:] = []  # a loop, or a folder linked twice
            continue
        seen_dirs.add((stat.st_dev, stat.st_ino))
        dirs.sort()
        for name in sorted(names):  # of two names for one file, the first in order is kept
            path = Path(root) / name
            real = os.path.realpath(path)
            if real not in seen_files and os.path.isfile(real):
                seen_files.add(real)
                files.append(path)
    return files


def list_images(folder: Path, max_count: float = float("inf"), layout_hint: str = "") -> list[Path]:
    """Sorted image files under ``folder`` (recursively), at most ``max_count`` of them.

    A missing or image-less folder is a :class:`UserError` that names the folder and,
    when given, the expected layout. Files of other types are skipped with one note.
    """
    hint = f"\nExpected layout: {layout_hint}" if layout_hint else ""
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist.{hint}")
    files = walk_once(folder)
    paths = sorted(p for p in files if is_image_file(p.name))
    skipped = [p for p in files if not is_image_file(p.name) and p.name.lower() not in _IGNORED_NAMES]
    if skipped:
        print(
            f"note: skipped {len(skipped)} file(s) in {folder} that are not images Pillow reads "
            f"(e.g. {skipped[0].name})",
            file=sys.stderr,
        )
    if not paths:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS[:12])}, ...) found in {folder}.{hint}")
    return paths[: int(min(max_count, len(paths)))]


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err}. Replace or remove the file.") from None
    return image


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file's header, without decoding it."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err}. Replace or remove the file.") from None


def load_rgb(path: Path) -> Image.Image:
    """Open an image as 8-bit RGB.

    Palette and transparent images are composited over white (transparent pixels have
    no meaningful colour), CMYK and grayscale (8 or 16 bit) are converted; an animated
    image gives its first frame.
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


def mask_intensity(image: Image.Image) -> np.ndarray:
    """A mask image as ``H x W`` floats in [0, 1]: the brightest colour channel (or the alpha
    channel when only it varies), scaled by the range of the file's pixel type."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        return values / (65535.0 if values.max() > 255 else 255.0)
    if image.mode == "1":
        return np.asarray(image, dtype=np.float64)
    if image.mode in ("RGBA", "LA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
        colour, alpha = rgba[..., :3].max(axis=2), rgba[..., 3]
        return alpha if np.ptp(colour) == 0 and np.ptp(alpha) > 0 else colour
    return np.asarray(image.convert("RGB"), dtype=np.float64).max(axis=2) / 255.0


def mask_from_image(image: Image.Image, path: Path | str) -> np.ndarray:
    """``H x W`` bool object mask under the rule in the module docstring."""
    values = mask_intensity(image)
    distinct = np.unique(values)
    if len(distinct) <= 2:
        return values > 0
    if distinct[-1] <= 0.5:
        raise UserError(
            f"mask {path} is ambiguous: it holds {len(distinct)} different values, all below half range "
            f"(max {distinct[-1] * 255:.0f} of 255), like a label map. Save masks as 0 = background and "
            f"non-zero (e.g. 255) = object"
        )
    return values > 0.5


def load_mask(path: Path, size: tuple[int, int], image_path: Path | None = None) -> Image.Image:
    """Open a mask as mode ``L`` with values 0/255; it must be ``size`` = (w, h), its image's size."""
    image = _open(path)
    if image.size != tuple(size):
        of = f" but its image {image_path} is" if image_path else ", expected"
        raise UserError(
            f"mask {path} is {image.size[0]}x{image.size[1]}{of} {size[0]}x{size[1]}: a mask must have its "
            f"image's size. Resize the mask (nearest neighbour) or remove it"
        )
    return Image.fromarray(mask_from_image(image, path).astype(np.uint8) * 255, mode="L")


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


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_images` learnt from the headers."""

    sizes: dict[Path, tuple[int, int]]
    masks: dict[Path, Path]


def scan_images(
    paths: Sequence[Path], folder: Path, mask_dir: Path | None, min_side: int, pairs: bool = False
) -> ScanResult:
    """Read the header of every image (and its mask), so broken files fail now, by name.

    Mask sizes must match their image's (for side-by-side ``pairs``, a mask may also be as wide
    as one half). Images smaller than ``min_side`` are accepted with one warning: they are upscaled.
    """
    sizes, masks, small = {}, {}, []
    for path in paths:
        sizes[path] = image_size(path)
        if min(sizes[path]) < min_side:
            small.append(path)
        mask = find_mask(mask_dir, path, folder)
        if mask is not None:
            masks[path] = mask
            mask_size = image_size(mask)
            widths = {sizes[path][0], sizes[path][0] // 2} if pairs else {sizes[path][0]}
            if mask_size[1] != sizes[path][1] or mask_size[0] not in widths:
                raise UserError(
                    f"mask {mask} is {mask_size[0]}x{mask_size[1]} but its image {path} is "
                    f"{sizes[path][0]}x{sizes[path][1]}: a mask must have its image's size"
                )
    if small:
        smallest = min(small, key=lambda p: min(sizes[p]))
        warnings.warn(
            f"{len(small)} image(s) in {folder} are smaller than the {min_side} px the preprocessing makes "
            f"(smallest: {smallest}, {sizes[smallest][0]}x{sizes[smallest][1]}); they are upscaled",
            stacklevel=2,
        )
    return ScanResult(sizes, masks)
