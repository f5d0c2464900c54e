"""Scenes: animals in a domain's style on a background, as layers, single images and aligned pairs;
the per-image random streams that make every image reproducible for a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.synthetic.drawing import (
    FLOAT,
    animal_coverage,
    draw_animal,
    draw_background_palette,
    draw_background_structure,
    paint_background,
    shade,
)
from data.synthetic.looks import (
    LOOKS,
    draw_horse_look,
    draw_pattern_look,
    draw_zebra_look,
    horse_pixels,
    pattern_pixels,
    zebra_pixels,
)

MIN_SIZE = 16
MAX_OBJECTS = 3

SPLIT_IDS = {"train": 0, "test": 1}
DOMAIN_IDS = {"A": 0, "B": 1, "AB": 2, **{look: 3 + i for i, look in enumerate(LOOKS)}}
# Third seed component of the per-split stream that picks the empty images;
# kept far from DOMAIN_IDS so it can never collide with an image stream.
_EMPTY_SELECTION_STREAM = 100


def render_multidomain_scene(
    rng: np.random.Generator, size: int, look: str, *, n_objects: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One scene of the multi-domain layout: animals in ``look`` (one of ``LOOKS``) on a background
    whose palette is drawn from either domain's overlapping ranges, so the background says nothing
    about the domain; returns (HxWx3 uint8 image, HxW bool mask)."""
    if look not in LOOKS:
        raise ValueError(f"look must be one of {LOOKS}, got {look!r}")
    _check_scene_args(size, None, n_objects)
    drawn = int(rng.integers(1, MAX_OBJECTS + 1))
    count = drawn if n_objects is None else n_objects
    mask = np.zeros((size, size), dtype=bool)
    layer = np.zeros((size, size, 3), dtype=FLOAT)
    for _ in range(count):
        animal = draw_animal(rng, size, count)
        coverage = animal_coverage(animal, size)
        shading = shade(coverage, animal.radius, rng.uniform(0, 2 * np.pi))
        horse, zebra, pattern = draw_horse_look(rng), draw_zebra_look(rng, size, animal.radius), draw_pattern_look(rng, size)
        if look == "plain":
            pixels = horse_pixels(horse, shading)
        elif look == "striped":
            pixels = zebra_pixels(zebra, coverage, shading)
        else:
            pixels = pattern_pixels(pattern, coverage, shading, look)
        layer[coverage.inside] = pixels[coverage.inside]
        mask |= coverage.inside
    structure = draw_background_structure(rng, size)
    palette_domain = "A" if rng.random() < 0.5 else "B"
    background = _to_uint8(paint_background(structure, draw_background_palette(rng, palette_domain)))
    image = np.where(mask[..., None], _to_uint8(layer), background)
    return image, mask


# --------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneLayers:
    """A rendered scene and the layers it was composited from.

    ``image == np.where(mask[..., None], foreground, background)`` holds
    exactly; ``foreground`` is only meaningful inside ``mask``.
    """

    image: np.ndarray  # HxWx3 uint8
    mask: np.ndarray  # HxW bool
    background: np.ndarray  # HxWx3 uint8
    foreground: np.ndarray  # HxWx3 uint8


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)


def _check_scene_args(size: int, domain: str | None, n_objects: int | None) -> None:
    if size < MIN_SIZE:
        raise ValueError(f"size must be >= {MIN_SIZE}, got {size}")
    if domain is not None and domain not in ("A", "B"):
        raise ValueError(f"domain must be 'A' or 'B', got {domain!r}")
    if n_objects is not None and not 0 <= n_objects <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be in [0, {MAX_OBJECTS}], got {n_objects}")


def _render_objects(
    rng: np.random.Generator, size: int, n_objects: int | None, domains: tuple[str, ...]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw the animals once and paint them in the look of each domain.

    Later animals are painted over earlier ones where they overlap.  Returns the
    union mask and, per domain, the HxWx3 float object layer.
    """
    drawn = int(rng.integers(1, MAX_OBJECTS + 1))
    count = drawn if n_objects is None else n_objects
    mask = np.zeros((size, size), dtype=bool)
    layers = {domain: np.zeros((size, size, 3), dtype=FLOAT) for domain in domains}
    for _ in range(count):
        animal = draw_animal(rng, size, count)
        coverage = animal_coverage(animal, size)
        shading = shade(coverage, animal.radius, rng.uniform(0, 2 * np.pi))
        # Both looks are always drawn so the stream does not depend on `domains`.
        horse = draw_horse_look(rng)
        zebra = draw_zebra_look(rng, size, animal.radius)
        for domain in domains:
            pixels = horse_pixels(horse, shading) if domain == "A" else zebra_pixels(zebra, coverage, shading)
            layers[domain][coverage.inside] = pixels[coverage.inside]
        mask |= coverage.inside
    return mask, layers


def render_scene_layers(
    rng: np.random.Generator, size: int, domain: str, *, n_objects: int | None = None, backgrounds: str = "overlapping"
) -> SceneLayers:
    """Render one scene of ``domain`` ('A' plain, 'B' striped) with its layers.

    Args:
        rng: source of all randomness; equal generator states give equal scenes.
        size: side of the square image in pixels (>= 16).
        domain: 'A' (plain shaded animals, greener ground) or 'B' (striped
            animals, drier ground).
        n_objects: number of animals (0 gives an empty scene); random 1-3 if None.
        backgrounds: "overlapping" palettes (default) or "distinct" ones (see ``BACKGROUNDS``).
    """
    _check_scene_args(size, domain, n_objects)
    mask, objects = _render_objects(rng, size, n_objects, (domain,))
    structure = draw_background_structure(rng, size)
    background = _to_uint8(paint_background(structure, draw_background_palette(rng, domain, backgrounds)))
    foreground = _to_uint8(objects[domain])
    image = np.where(mask[..., None], foreground, background)
    return SceneLayers(image=image, mask=mask, background=background, foreground=foreground)


def render_scene(
    rng: np.random.Generator, size: int, domain: str, *, n_objects: int | None = None, backgrounds: str = "overlapping"
) -> tuple[np.ndarray, np.ndarray]:
    """Render one scene; returns (HxWx3 uint8 image, HxW bool mask).

    See :func:`render_scene_layers` for the arguments.
    """
    layers = render_scene_layers(rng, size, domain, n_objects=n_objects, backgrounds=backgrounds)
    return layers.image, layers.mask


def render_paired_scene(
    rng: np.random.Generator, size: int, *, n_objects: int | None = None, backgrounds: str = "overlapping"
) -> tuple[SceneLayers, SceneLayers]:
    """Render the same scene in both domains, for the aligned layout.

    Geometry, shading and background texture are shared; the animals' look
    (plain vs striped) and the background palette differ.  Both returned
    layers carry the same mask.
    """
    _check_scene_args(size, None, n_objects)
    mask, objects = _render_objects(rng, size, n_objects, ("A", "B"))
    structure = draw_background_structure(rng, size)
    palettes = {domain: draw_background_palette(rng, domain, backgrounds) for domain in ("A", "B")}
    scenes = []
    for domain in ("A", "B"):
        background = _to_uint8(paint_background(structure, palettes[domain]))
        foreground = _to_uint8(objects[domain])
        image = np.where(mask[..., None], foreground, background)
        scenes.append(SceneLayers(image=image, mask=mask, background=background, foreground=foreground))
    return scenes[0], scenes[1]


def image_rng(seed: int, split: str, domain: str, index: int) -> np.random.Generator:
    """The generator used for image ``index`` of ``split``/``domain`` ('A', 'B' or 'AB')."""
    return np.random.default_rng([seed, SPLIT_IDS[split], DOMAIN_IDS[domain], index])


def empty_indices(seed: int, split: str, domain: str, count: int, empty_fraction: float) -> frozenset[int]:
    """Which images of a split/domain hold no object: exactly round(fraction * count) of them."""
    n_empty = round(empty_fraction * count)
    rng = np.random.default_rng([seed, SPLIT_IDS[split], _EMPTY_SELECTION_STREAM + DOMAIN_IDS[domain]])
    return frozenset(int(i) for i in rng.choice(count, size=n_empty, replace=False))


