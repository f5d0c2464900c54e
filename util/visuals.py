"""The record a model uses to declare a picture it produces (see models.base_model)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

VISUAL_KINDS = ("real", "fake", "rec", "idt", "attention", "mask", "content")


@dataclass
class Visual:
    """One picture a model produces for a batch.

    ``image``: ``B x C x H x W``; 3 channels in [-1, 1] or 1 channel in [0, 1].
    ``source``: the input domain it derives from (``"A"`` or ``"B"``).
    ``kind``: one of :data:`VISUAL_KINDS`. ``attention`` is the foreground attention of
    ``source``'s image (what the evaluation compares with ground-truth masks); ``mask``
    and ``content`` are further intermediate maps shown on the pages.
    ``target``: for multi-domain models, the domain (by name) a ``fake`` or its ``attention``
    was translated to; the evaluation groups those translations by it (test.py records the
    input's own domain per row).
    """

    image: torch.Tensor
    source: str
    kind: str
    target: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in VISUAL_KINDS:
            raise ValueError(f"visual kind must be one of {VISUAL_KINDS}, got {self.kind!r}")
