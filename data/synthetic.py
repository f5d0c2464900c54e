"""Built-in synthetic benchmark for attention-guided unpaired translation.

The benchmark mimics horse <-> zebra with exact ground truth:

* domain A: one to three smooth, animal-like blobs in a plain, shaded
  "horse" colour on a greenish, grass/ground-like textured background;
* domain B: the same kind of blobs carrying black-and-white stripes of random
  frequency and direction, on a drier, yellow-brown background.

The two background palettes are drawn from *overlapping* ranges, which is what
tempts a whole-image translator to repaint the background.  Objects are
rendered with hard (non-anti-aliased) coverage, so the mask is exactly the set
of object pixels: outside the mask the image equals the background layer and
inside it equals the object layer.

Every image uses its own RNG seeded from ``(seed, split, domain, index)``, so
the output is byte-identical for a given seed whatever the worker count.

Layouts written by :func:`make_synthetic_dataset`:

* unaligned (CycleGAN): ``trainA/ trainB/ testA/ testB/`` with masks in
  ``trainA_mask/ ...`` (same file stem, mode 'L', 0 background / 255 object);
* aligned (pix2pix, ``aligned=True``): ``train/ test/`` holding A|B side by
  side (width ``2 * size``), masks in ``train_mask/ test_mask/``.  Both halves
  share geometry and background texture; only the appearance differs.
"""

from __future__ import annotations

import colorsys
import inspect
import json
import math
import multiprocessing
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "BACKGROUNDS",
    "GENERATOR_VERSION",
    "LOOKS",
    "METADATA_FILE",
    "SceneLayers",
    "empty_indices",
    "ensure_synthetic_dataset",
    "image_name",
    "image_rng",
    "make_synthetic_dataset",
    "render_multidomain_scene",
    "render_paired_scene",
    "render_scene",
    "render_scene_layers",
]

# Bump whenever the rendered pixels change, so that stale datasets are detected.
GENERATOR_VERSION = 1
METADATA_FILE = "synthetic.json"
MIN_SIZE = 16
MAX_OBJECTS = 3

SPLIT_IDS = {"train": 0, "test": 1}
# The multi-domain layout's domains, in order (``domains=k`` takes the first k).
LOOKS = ("plain", "striped", "spotted", "checked")
DOMAIN_IDS = {"A": 0, "B": 1, "AB": 2, **{look: 3 + i for i, look in enumerate(LOOKS)}}
# Third seed component of the per-split stream that picks the empty images;
# kept far from DOMAIN_IDS so it can never collide with an image stream.
_EMPTY_SELECTION_STREAM = 100

_Float = np.float32


# --------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """Cubic ease curve; gives value noise a continuous first derivative."""
    return t * t * (3.0 - 2.0 * t)


def _lattice_weights(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Lattice index and smoothed fractional weight of each pixel centre."""
    coords = (np.arange(size, dtype=_Float) + 0.5) * (cells / size)
    index = np.minimum(coords.astype(np.int64), cells - 1)
    return index, _smoothstep(coords - index)


def value_noise(rng: np.random.Generator, size: int, cells_y: int, cells_x: int) -> np.ndarray:
    """Smooth noise in [0, 1] on a ``size x size`` grid.

    Random values on a ``(cells_y + 1) x (cells_x + 1)`` lattice are
    interpolated separably (rows first, then columns), which keeps it cheap.
    Different cell counts along y and x give anisotropic (streaky) texture.
    """
    lattice = rng.random((cells_y + 1, cells_x + 1), dtype=_Float)
    ix, tx = _lattice_weights(size, cells_x)
    iy, ty = _lattice_weights(size, cells_y)
    rows = lattice[:, ix] * (1 - tx) + lattice[:, ix + 1] * tx
    return rows[iy] * (1 - ty)[:, None] + rows[iy + 1] * ty[:, None]


def fractal_noise(
    rng: np.random.Generator,
    size: int,
    cells_y: int,
    cells_x: int,
    octaves: int,
    persistence: float = 0.5,
) -> np.ndarray:
    """Multi-octave value noise, normalised to roughly [0, 1].

    Each octave doubles the lattice resolution (capped at the pixel grid,
    beyond which extra octaves only add aliasing) and scales the amplitude by
    ``persistence``.
    """
    total = np.zeros((size, size), dtype=_Float)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        scale = 2**octave
        ny, nx = min(cells_y * scale, size), min(cells_x * scale, size)
        total += amplitude * value_noise(rng, size, ny, nx)
        weight += amplitude
        amplitude *= persistence
    return total / weight


def _stretch_contrast(field: np.ndarray) -> np.ndarray:
    """Spread a sum of noise octaves (which clusters near 0.5) over [0, 1]."""
    low, high = (float(v) for v in np.percentile(field, [2.0, 98.0]))
    return np.clip((field - low) / max(high - low, 1e-6), 0.0, 1.0)


# --------------------------------------------------------------------------
# Background
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BackgroundStructure:
    """Domain-independent background texture; a palette turns it into colour.

    Keeping structure and colour apart lets the aligned layout recolour the
    very same texture for domain B.
    """

    grass_weight: np.ndarray  # 1 = grass, 0 = bare ground (soft patch edges)
    tint: np.ndarray  # mixes the two grass shades
    brightness: np.ndarray  # blades, grain and a vertical light gradient


@dataclass(frozen=True)
class BackgroundPalette:
    """RGB colours (floats in [0, 1]) of one background."""

    grass: np.ndarray
    grass_alt: np.ndarray
    ground: np.ndarray


# (hue, saturation, value) ranges of grass and bare ground per domain.
# "overlapping" (default): A is greener on average, B drier, and the ranges overlap.
# "distinct" (the hard-background setting): lush dark-green meadows in A, pale dry savanna in
# B, disjoint in hue and brightness, so a discriminator can tell the domains by the
# background alone and a whole-image translator is rewarded for repainting it.
BACKGROUNDS = ("overlapping", "distinct")
_GRASS_HSV = {
    "overlapping": {"A": ((0.17, 0.36), (0.35, 0.75), (0.35, 0.70)), "B": ((0.09, 0.24), (0.30, 0.70), (0.45, 0.80))},
    "distinct": {"A": ((0.25, 0.36), (0.55, 0.85), (0.30, 0.50)), "B": ((0.10, 0.14), (0.30, 0.50), (0.68, 0.88))},
}
_GROUND_HSV = {
    "overlapping": {"A": ((0.06, 0.13), (0.25, 0.55), (0.30, 0.60)), "B": ((0.05, 0.11), (0.20, 0.50), (0.40, 0.70))},
    "distinct": {"A": ((0.05, 0.09), (0.40, 0.60), (0.22, 0.38)), "B": ((0.08, 0.11), (0.15, 0.30), (0.70, 0.85))},
}


def _hsv_colour(rng: np.random.Generator, ranges: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Uniformly draw (h, s, v) from per-channel ranges and return RGB."""
    hue, sat, val = (rng.uniform(low, high) for low, high in ranges)
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, sat, val), dtype=_Float)


def _draw_background_structure(rng: np.random.Generator, size: int) -> BackgroundStructure:
    """Patches of grass and ground, grass blades, grain and a light gradient."""
    patches = _stretch_contrast(fractal_noise(rng, size, 3, 3, octaves=4))
    threshold = rng.uniform(0.25, 0.6)
    softness = rng.uniform(0.05, 0.15)
    grass_weight = np.clip((patches - threshold) / (2 * softness) + 0.5, 0.0, 1.0)

    tint = _stretch_contrast(fractal_noise(rng, size, 4, 4, octaves=3))

    # Blades: fine across (x), long along (y) -> vertical streaks, like grass.
    blade_cells_x = max(size // 3, 4)
    blades = fractal_noise(rng, size, max(blade_cells_x // 6, 1), blade_cells_x, octaves=2)
    grain = value_noise(rng, size, size // 2, size // 2)
    gradient = rng.uniform(-0.25, 0.25) * (np.linspace(-0.5, 0.5, size, dtype=_Float)[:, None])
    blade_strength = rng.uniform(0.2, 0.5)
    brightness = 1.0 + blade_strength * (blades - 0.5) * (0.4 + 0.6 * grass_weight) + 0.08 * (grain - 0.5) + gradient
    return BackgroundStructure(grass_weight, tint, brightness.astype(_Float))


def _draw_background_palette(rng: np.random.Generator, domain: str, backgrounds: str = "overlapping") -> BackgroundPalette:
    """Domain-specific colours; by default the ranges of A and B overlap on purpose."""
    grass = _hsv_colour(rng, _GRASS_HSV[backgrounds][domain])
    shade = rng.uniform(0.75, 1.25)
    grass_alt = np.clip(grass * shade + rng.uniform(-0.06, 0.06, 3), 0.0, 1.0).astype(_Float)
    ground = _hsv_colour(rng, _GROUND_HSV[backgrounds][domain])
    return BackgroundPalette(grass, grass_alt, ground)


def _paint_background(structure: BackgroundStructure, palette: BackgroundPalette) -> np.ndarray:
    """Colour a background structure; returns HxWx3 floats in [0, 1]."""
    tint = structure.tint[..., None]
    grass = palette.grass * (1 - tint) + palette.grass_alt * tint
    weight = structure.grass_weight[..., None]
    colour = palette.ground * (1 - weight) + grass * weight
    return np.clip(colour * structure.brightness[..., None], 0.0, 1.0)


# --------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Animal:
    """Geometry of one animal-like blob (a harmonic body plus an optional head).

    Coordinates are in pixels; ``angle`` is the body axis direction.
    """

    center: tuple[float, float]  # (y, x)
    radius: float
    aspect: float
    angle: float
    harmonics: np.ndarray  # shape (K, 3): order k, amplitude, phase
    head: tuple[float, float, float] | None  # (offset along axis, offset across, radius)


@dataclass(frozen=True)
class AnimalCoverage:
    """Per-pixel quantities of one rendered animal (all HxW arrays)."""

    inside: np.ndarray  # bool coverage, hard-edged
    along: np.ndarray  # pixel offset along the body axis
    across: np.ndarray  # pixel offset across the body axis
    rim: np.ndarray  # 0 at the centre of each part, 1 at its outline


def _outline(harmonics: np.ndarray, theta: np.ndarray | float) -> np.ndarray:
    """Body radius (in units of the stretched base ellipse) at polar angle theta."""
    radius = np.ones_like(theta, dtype=_Float)
    for order, amplitude, phase in harmonics.tolist():
        radius = radius + amplitude * np.cos(order * theta + phase)
    return radius


def _draw_animal(rng: np.random.Generator, size: int, n_objects: int) -> Animal:
    """Random size, position, orientation and outline of one animal.

    The harmonic amplitudes sum to at most 0.3 and the aspect ratio is capped,
    so the body's smallest radius is >= 0.5 * radius >= 1 px at ``size = 16``:
    the pixel holding the centre is always covered and the mask never empty.
    """
    crowding = 1.0 / math.sqrt(n_objects)  # several animals are drawn smaller
    radius = size * rng.uniform(0.14, 0.28) * (0.6 + 0.4 * crowding)
    center = (size * rng.uniform(0.08, 0.92), size * rng.uniform(0.08, 0.92))
    aspect = rng.uniform(1.1, 1.8)
    orders = np.arange(2, 6)
    max_amplitude = np.array([0.12, 0.08, 0.06, 0.04])
    harmonics = np.stack(
        [
            orders,
            rng.uniform(0.0, 1.0, 4) * max_amplitude,
            rng.uniform(0, 2 * np.pi, 4),
        ],
        axis=1,
    )
    head = None
    if rng.random() < 0.7:
        # A head near one end of the body, raised a little off the axis.  Its
        # centre stays within reach of a body point on the axis (the offset
        # across is smaller than its radius), so head and body always touch.
        side = 1.0 if rng.random() < 0.5 else -1.0
        body_end = radius * math.sqrt(aspect) * float(_outline(harmonics, 0.0 if side > 0 else math.pi))
        head_radius = radius * rng.uniform(0.3, 0.45)
        head = (
            side * body_end * rng.uniform(0.85, 1.0),
            -head_radius * rng.uniform(0.2, 0.8),
            head_radius,
        )
    return Animal(
        center=center,
        radius=radius,
        aspect=aspect,
        angle=rng.uniform(0, 2 * np.pi),
        harmonics=harmonics,
        head=head,
    )


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), each HxW."""
    centres = np.arange(size, dtype=_Float) + 0.5
    return centres[:, None] * np.ones((1, size), _Float), centres[None, :] * np.ones((size, 1), _Float)


def _animal_coverage(animal: Animal, size: int) -> AnimalCoverage:
    """Hard coverage of an animal, sampled at pixel centres (no anti-aliasing)."""
    ys, xs = _pixel_grid(size)
    dy, dx = ys - animal.center[0], xs - animal.center[1]
    # Python-float scalars keep the arrays float32 (numpy scalars would promote).
    cos_a, sin_a = math.cos(animal.angle), math.sin(animal.angle)
    along = dx * cos_a + dy * sin_a
    across = -dx * sin_a + dy * cos_a

    stretch = math.sqrt(animal.aspect)
    u = along / (animal.radius * stretch)
    v = across * stretch / animal.radius
    rim = np.hypot(u, v) / _outline(animal.harmonics, np.arctan2(v, u))

    if animal.head is not None:
        head_along, head_across, head_radius = animal.head
        head_rim = np.hypot(along - head_along, across - head_across) / head_radius
        rim = np.minimum(rim, head_rim)
    return AnimalCoverage(inside=rim <= 1.0, along=along, across=across, rim=np.minimum(rim, 1.0))


def _shading(coverage: AnimalCoverage, radius: float, light_angle: float) -> np.ndarray:
    """Smooth shading in about [0.45, 1.2]: a directional light plus rounded rims."""
    light = (coverage.along * math.cos(light_angle) + coverage.across * math.sin(light_angle)) / (2 * radius)
    return 1.0 + 0.25 * np.clip(light, -1.0, 1.0) - 0.3 * coverage.rim**2


@dataclass(frozen=True)
class HorseLook:
    """Plain coat colour (RGB floats)."""

    colour: np.ndarray


@dataclass(frozen=True)
class ZebraLook:
    """Stripe pattern parameters, in pixels/radians."""

    period: float
    direction: float
    phase: float
    wave_amplitude: float
    wave_length: float
    wave_phase: float


def _draw_horse_look(rng: np.random.Generator) -> HorseLook:
    """Brown, chestnut, dun or grey: low saturation gives the greys."""
    hue = rng.uniform(0.02, 0.11)
    sat = rng.uniform(0.1, 0.7)
    val = rng.uniform(0.25, 0.7)
    return HorseLook(np.array(colorsys.hsv_to_rgb(hue, sat, val), dtype=_Float))


def _draw_zebra_look(rng: np.random.Generator, size: int, radius: float) -> ZebraLook:
    """Stripes of random frequency and direction, gently wavy like a zebra's."""
    period = rng.uniform(max(3.0, size / 40), max(4.0, size / 12))
    return ZebraLook(
        period=period,
        direction=rng.uniform(0, np.pi),
        phase=rng.uniform(0, 2 * np.pi),
        wave_amplitude=period * rng.uniform(0.0, 0.4),
        wave_length=radius * rng.uniform(1.2, 2.5),
        wave_phase=rng.uniform(0, 2 * np.pi),
    )


def _horse_pixels(look: HorseLook, shading: np.ndarray) -> np.ndarray:
    """Plain coat times shading; HxWx3 floats."""
    return look.colour * shading[..., None]


def _zebra_pixels(look: ZebraLook, coverage: AnimalCoverage, shading: np.ndarray) -> np.ndarray:
    """Hard black/white stripes times shading; HxWx3 floats."""
    cos_d, sin_d = math.cos(look.direction), math.sin(look.direction)
    across_stripes = coverage.along * cos_d + coverage.across * sin_d
    along_stripes = -coverage.along * sin_d + coverage.across * cos_d
    wave = look.wave_amplitude * np.sin(2 * np.pi * along_stripes / look.wave_length + look.wave_phase)
    white = np.sin(2 * np.pi * (across_stripes + wave) / look.period + look.phase) > 0
    grey = np.where(white, 0.93, 0.07).astype(_Float) * shading
    return np.repeat(grey[..., None], 3, axis=2)


@dataclass(frozen=True)
class PatternLook:
    """Two colours and a pattern geometry (spots or checks), in pixels/radians."""

    light: np.ndarray
    dark: np.ndarray
    period: float
    direction: float
    phase: tuple[float, float]
    spot_fraction: float


def _draw_pattern_look(rng: np.random.Generator, size: int) -> PatternLook:
    """A light coat with dark marks: both colours random, the marks' scale and angle too."""
    light = np.array(colorsys.hsv_to_rgb(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.25), rng.uniform(0.75, 0.95)), _Float)
    dark = np.array(colorsys.hsv_to_rgb(rng.uniform(0.0, 1.0), rng.uniform(0.3, 0.8), rng.uniform(0.1, 0.35)), _Float)
    return PatternLook(
        light=light,
        dark=dark,
        period=rng.uniform(max(4.0, size / 16), max(6.0, size / 8)),
        direction=rng.uniform(0, np.pi),
        phase=(rng.uniform(0, 1), rng.uniform(0, 1)),
        spot_fraction=rng.uniform(0.25, 0.4),
    )


def _pattern_pixels(look: PatternLook, coverage: AnimalCoverage, shading: np.ndarray, kind: str) -> np.ndarray:
    """Dark round spots on a light coat ("spotted") or a rotated checkerboard ("checked")."""
    cos_d, sin_d = math.cos(look.direction), math.sin(look.direction)
    u = (coverage.along * cos_d + coverage.across * sin_d) / look.period + look.phase[0]
    v = (-coverage.along * sin_d + coverage.across * cos_d) / look.period + look.phase[1]
    if kind == "spotted":
        # Spots on a hexagonal-ish lattice: shift every other row by half a period.
        row = np.floor(v)
        du = (u + 0.5 * (row % 2)) % 1.0 - 0.5
        dv = v % 1.0 - 0.5
        marked = np.hypot(du, dv) < math.sqrt(look.spot_fraction / math.pi)
    else:
        marked = (np.floor(u) + np.floor(v)) % 2 == 0
    colour = np.where(marked[..., None], look.dark, look.light)
    return colour * shading[..., None]


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
    layer = np.zeros((size, size, 3), dtype=_Float)
    for _ in range(count):
        animal = _draw_animal(rng, size, count)
        coverage = _animal_coverage(animal, size)
        shading = _shading(coverage, animal.radius, rng.uniform(0, 2 * np.pi))
        horse, zebra, pattern = _draw_horse_look(rng), _draw_zebra_look(rng, size, animal.radius), _draw_pattern_look(rng, size)
        if look == "plain":
            pixels = _horse_pixels(horse, shading)
        elif look == "striped":
            pixels = _zebra_pixels(zebra, coverage, shading)
        else:
            pixels = _pattern_pixels(pattern, coverage, shading, look)
        layer[coverage.inside] = pixels[coverage.inside]
        mask |= coverage.inside
    structure = _draw_background_structure(rng, size)
    palette_domain = "A" if rng.random() < 0.5 else "B"
    background = _to_uint8(_paint_background(structure, _draw_background_palette(rng, palette_domain)))
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
    layers = {domain: np.zeros((size, size, 3), dtype=_Float) for domain in domains}
    for _ in range(count):
        animal = _draw_animal(rng, size, count)
        coverage = _animal_coverage(animal, size)
        shading = _shading(coverage, animal.radius, rng.uniform(0, 2 * np.pi))
        # Both looks are always drawn so the stream does not depend on `domains`.
        horse = _draw_horse_look(rng)
        zebra = _draw_zebra_look(rng, size, animal.radius)
        for domain in domains:
            pixels = _horse_pixels(horse, shading) if domain == "A" else _zebra_pixels(zebra, coverage, shading)
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
    structure = _draw_background_structure(rng, size)
    background = _to_uint8(_paint_background(structure, _draw_background_palette(rng, domain, backgrounds)))
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
    structure = _draw_background_structure(rng, size)
    palettes = {domain: _draw_background_palette(rng, domain, backgrounds) for domain in ("A", "B")}
    scenes = []
    for domain in ("A", "B"):
        background = _to_uint8(_paint_background(structure, palettes[domain]))
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


# --------------------------------------------------------------------------
# Dataset writing
# --------------------------------------------------------------------------


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
