"""Scene drawing for the built-in dataset: value noise, the textured backgrounds (their palettes per
domain and ``BACKGROUNDS`` setting) and the animal-like shapes with exact, hard-edged coverage."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

FLOAT = np.float32


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """Cubic ease curve; gives value noise a continuous first derivative."""
    return t * t * (3.0 - 2.0 * t)


def _lattice_weights(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Lattice index and smoothed fractional weight of each pixel centre."""
    coords = (np.arange(size, dtype=FLOAT) + 0.5) * (cells / size)
    index = np.minimum(coords.astype(np.int64), cells - 1)
    return index, _smoothstep(coords - index)


def value_noise(rng: np.random.Generator, size: int, cells_y: int, cells_x: int) -> np.ndarray:
    """Smooth noise in [0, 1] on a ``size x size`` grid.

    Random values on a ``(cells_y + 1) x (cells_x + 1)`` lattice are
    interpolated separably (rows first, then columns), which keeps it cheap.
    Different cell counts along y and x give anisotropic (streaky) texture.
    """
    lattice = rng.random((cells_y + 1, cells_x + 1), dtype=FLOAT)
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
    total = np.zeros((size, size), dtype=FLOAT)
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
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, sat, val), dtype=FLOAT)


def draw_background_structure(rng: np.random.Generator, size: int) -> BackgroundStructure:
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
    gradient = rng.uniform(-0.25, 0.25) * (np.linspace(-0.5, 0.5, size, dtype=FLOAT)[:, None])
    blade_strength = rng.uniform(0.2, 0.5)
    brightness = 1.0 + blade_strength * (blades - 0.5) * (0.4 + 0.6 * grass_weight) + 0.08 * (grain - 0.5) + gradient
    return BackgroundStructure(grass_weight, tint, brightness.astype(FLOAT))


def draw_background_palette(rng: np.random.Generator, domain: str, backgrounds: str = "overlapping") -> BackgroundPalette:
    """Domain-specific colours; by default the ranges of A and B overlap on purpose."""
    grass = _hsv_colour(rng, _GRASS_HSV[backgrounds][domain])
    shade = rng.uniform(0.75, 1.25)
    grass_alt = np.clip(grass * shade + rng.uniform(-0.06, 0.06, 3), 0.0, 1.0).astype(FLOAT)
    ground = _hsv_colour(rng, _GROUND_HSV[backgrounds][domain])
    return BackgroundPalette(grass, grass_alt, ground)


def paint_background(structure: BackgroundStructure, palette: BackgroundPalette) -> np.ndarray:
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
    radius = np.ones_like(theta, dtype=FLOAT)
    for order, amplitude, phase in harmonics.tolist():
        radius = radius + amplitude * np.cos(order * theta + phase)
    return radius


def draw_animal(rng: np.random.Generator, size: int, n_objects: int) -> Animal:
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
    centres = np.arange(size, dtype=FLOAT) + 0.5
    return centres[:, None] * np.ones((1, size), FLOAT), centres[None, :] * np.ones((size, 1), FLOAT)


def animal_coverage(animal: Animal, size: int) -> AnimalCoverage:
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


def shade(coverage: AnimalCoverage, radius: float, light_angle: float) -> np.ndarray:
    """Smooth shading in about [0.45, 1.2]: a directional light plus rounded rims."""
    light = (coverage.along * math.cos(light_angle) + coverage.across * math.sin(light_angle)) / (2 * radius)
    return 1.0 + 0.25 * np.clip(light, -1.0, 1.0) - 0.3 * coverage.rim**2


