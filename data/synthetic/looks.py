"""Domain styles: how an animal of each domain is painted (plain "horse" coat, "zebra" stripes, and the
multi-domain patterns of ``LOOKS``)."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from data.synthetic.drawing import FLOAT, AnimalCoverage

# The multi-domain layout's domains, in order (``domains=k`` takes the first k).
LOOKS = ("plain", "striped", "spotted", "checked")


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


def draw_horse_look(rng: np.random.Generator) -> HorseLook:
    """Brown, chestnut, dun or grey: low saturation gives the greys."""
    hue = rng.uniform(0.02, 0.11)
    sat = rng.uniform(0.1, 0.7)
    val = rng.uniform(0.25, 0.7)
    return HorseLook(np.array(colorsys.hsv_to_rgb(hue, sat, val), dtype=FLOAT))


def draw_zebra_look(rng: np.random.Generator, size: int, radius: float) -> ZebraLook:
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


def horse_pixels(look: HorseLook, shading: np.ndarray) -> np.ndarray:
    """Plain coat times shading; HxWx3 floats."""
    return look.colour * shading[..., None]


def zebra_pixels(look: ZebraLook, coverage: AnimalCoverage, shading: np.ndarray) -> np.ndarray:
    """Hard black/white stripes times shading; HxWx3 floats."""
    cos_d, sin_d = math.cos(look.direction), math.sin(look.direction)
    across_stripes = coverage.along * cos_d + coverage.across * sin_d
    along_stripes = -coverage.along * sin_d + coverage.across * cos_d
    wave = look.wave_amplitude * np.sin(2 * np.pi * along_stripes / look.wave_length + look.wave_phase)
    white = np.sin(2 * np.pi * (across_stripes + wave) / look.period + look.phase) > 0
    grey = np.where(white, 0.93, 0.07).astype(FLOAT) * shading
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


def draw_pattern_look(rng: np.random.Generator, size: int) -> PatternLook:
    """A light coat with dark marks: both colours random, the marks' scale and angle too."""
    light = np.array(colorsys.hsv_to_rgb(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.25), rng.uniform(0.75, 0.95)), FLOAT)
    dark = np.array(colorsys.hsv_to_rgb(rng.uniform(0.0, 1.0), rng.uniform(0.3, 0.8), rng.uniform(0.1, 0.35)), FLOAT)
    return PatternLook(
        light=light,
        dark=dark,
        period=rng.uniform(max(4.0, size / 16), max(6.0, size / 8)),
        direction=rng.uniform(0, np.pi),
        phase=(rng.uniform(0, 1), rng.uniform(0, 1)),
        spot_fraction=rng.uniform(0.25, 0.4),
    )


def pattern_pixels(look: PatternLook, coverage: AnimalCoverage, shading: np.ndarray, kind: str) -> np.ndarray:
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


