"""History buffer of generated images (Shrivastava et al. 2017, used by CycleGAN §4).

The discriminator sees, half of the time, an older fake instead of the newest one, which
damps oscillation. The pool owns its random generator so that a resumed run draws the
same choices as an uninterrupted one; :meth:`state_dict` carries both buffer and RNG.
"""

from __future__ import annotations

import random
from typing import Any

import torch


class ImagePool:
    """Keep up to ``size`` past images; ``size == 0`` turns the pool off.

    To pool several aligned tensors together (an image and its attention mask, say),
    concatenate them along the channel axis before :meth:`query` and split afterwards.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape: each item is new, or swapped with an old one."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() > 0.5:
                slot = self.rng.randrange(self.size)
                out.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": [img.cpu() for img in self.images], "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = state["size"]
        self.images = [img.to(device) for img in state["images"]]
        self.rng.setstate(state["rng"])
