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

The package: :mod:`data.synthetic.drawing` (noise, backgrounds, animal shapes),
:mod:`data.synthetic.looks` (each domain's style), :mod:`data.synthetic.scenes` (composing a
scene, per-image random streams) and :mod:`data.synthetic.writing` (the dataset on disk).
"""

from data.synthetic.drawing import BACKGROUNDS
from data.synthetic.looks import LOOKS
from data.synthetic.scenes import (
    MIN_SIZE,
    SceneLayers,
    empty_indices,
    image_rng,
    render_multidomain_scene,
    render_paired_scene,
    render_scene,
    render_scene_layers,
)
from data.synthetic.writing import (
    GENERATOR_VERSION,
    METADATA_FILE,
    ensure_synthetic_dataset,
    image_name,
    make_synthetic_dataset,
)

__all__ = [
    "BACKGROUNDS",
    "GENERATOR_VERSION",
    "LOOKS",
    "METADATA_FILE",
    "MIN_SIZE",
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
