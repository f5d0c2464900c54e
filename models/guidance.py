"""GuideGAN's pieces (papers/guidegan.txt): discriminators that say where they look, the ways the
generator's input is joined with that map, and the per-image bank that carries a map to the
next visit of the same training image.

- :class:`AttentiveDiscriminator` returns :class:`DiscriminatorOutput` (realness map and an
  attention map in [0, 1] at the image's size):
  PHA (post hoc attention, Eq. 2): ``M = g(1/C sum_i |a_{t,i}|)``, the channel mean of the
  absolute activations of the 4th convolution block of the PatchGAN, min-max normalised per
  image and detached; TAM (trainable attention module, Eq. 3, Appendix A): a RAM-style block
  (first conv as feature extractor; a trunk of three convs; a mask branch of two down-sampling
  convs, two convs and one up-sampling layer, sigmoid; ``E = (M + 1) * T``; a classifier conv),
  whose attention is the channel mean of ``M``.
- :class:`AttentionTransfer` is ``g(.; phi)``: bilinear resizing to the image, or the small
  learned three-layer up-sampler the paper mentions, trained with the generators.
- :func:`join`: RHP, Eq. (4) ``x' = (g(M) + 1) * x`` (3 channels), or alpha, Eq. (5)
  ``x' = [x, g(M)]`` (4 channels).
- :class:`AttentionBank`: Eq. (1) ``y'(k+1) = G(x + T(D(y'(k))))``: the map the discriminator
  produced for an image's previous translation, kept per dataset index. Random crops and flips
  mean the stored map and the next crop do not line up, so the bank stores maps in the
  coordinates of the resized image (``bank_size x bank_size`` cells covering it), pasting each
  new map where its crop lay (un-flipped) and reading the current crop (flipped) back.
  Unvisited cells are ones, the paper's start; test time uses ones. Under ``torchrun`` every
  process stores every process's writes, so an image finds its map whichever process visits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models import networks

D_ATTENTIONS = ("pha", "tam")
JOINS = ("rhp", "alpha", "none")


@dataclass
class DiscriminatorOutput:
    """``realness``: the PatchGAN map; ``attention``: ``B x 1 x H x W`` in [0, 1], detached."""

    realness: torch.Tensor
    attention: torch.Tensor


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each ``B x 1 x h x w`` map to [0, 1] (a constant map becomes zeros)."""
    low = maps.amin(dim=(2, 3), keepdim=True)
    high = maps.amax(dim=(2, 3), keepdim=True)
    return (maps - low) / (high - low).clamp_min(1e-8)


def post_hoc_attention(activation: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Eq. (2): channel mean of ``|a|``, min-max normalised, detached, resized (bilinear) to ``size``."""
    maps = min_max(activation.detach().abs().mean(dim=1, keepdim=True).float())
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False).clamp(0, 1)


class AttentiveDiscriminator(nn.Module):
    """A 70x70 PatchGAN that also returns where it looks (``attention``: ``pha`` or ``tam``).

    ``depth`` is the PHA PatchGAN's ``n_layers`` (3: 70x70; PHA reads its last block before the
    classifier conv). TAM's trunk and mask branch have the paper's fixed shape: depth 3 only."""

    def __init__(self, input_nc: int, ndf: int = 64, norm: str = "instance", attention: str = "pha",
                 depth: int = 3) -> None:
        super().__init__()
        if attention not in D_ATTENTIONS:
            raise ValueError(f"--d_attention must be one of {D_ATTENTIONS}, got {attention!r}")
        if attention == "tam" and depth != 3:
            raise ValueError(f"the TAM discriminator has a fixed shape (depth 3), got depth {depth}")
        self.kind = attention
        norm_layer = networks.norm_layer_factory(norm)
        bias = networks.uses_bias(norm)

        def block(c_in: int, c_out: int, kernel: int, stride: int, normalise: bool = True) -> nn.Sequential:
            layers = [nn.Conv2d(c_in, c_out, kernel, stride, padding=1, bias=bias or not normalise)]
            return nn.Sequential(*layers, *([norm_layer(c_out)] if normalise else []), nn.LeakyReLU(0.2, True))

        if attention == "pha":
            # The PatchGAN C64-C128-C256-C512 at depth 3 (the last block is the one PHA reads), then the
            # classifier conv; the layers of networks.patchgan_layers(depth).
            blocks, width = [block(input_nc, ndf, 4, 2, normalise=False)], ndf
            for n in range(1, depth + 1):
                blocks.append(block(width, ndf * min(2**n, 8), 4, 2 if n < depth else 1))
                width = ndf * min(2**n, 8)
            self.features = nn.Sequential(*blocks)
            self.classifier = nn.Conv2d(width, 1, 4, 1, padding=1)
        else:
            self.extractor = block(input_nc, ndf, 4, 2, normalise=False)
            self.trunk = nn.Sequential(block(ndf, ndf * 2, 4, 2), block(ndf * 2, ndf * 4, 3, 1), block(ndf * 4, ndf * 4, 3, 1))
            self.mask = nn.Sequential(
                block(ndf, ndf * 2, 4, 2), block(ndf * 2, ndf * 4, 4, 2), block(ndf * 4, ndf * 4, 3, 1),
                nn.Conv2d(ndf * 4, ndf * 4, 3, 1, padding=1),
            )
            self.classifier = nn.Conv2d(ndf * 4, 1, 4, 1, padding=1)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        size = x.shape[-2:]
        if self.kind == "pha":
            activation = self.features(x)
            return DiscriminatorOutput(self.classifier(activation), post_hoc_attention(activation, size))
        features = self.extractor(x)
        trunk = self.trunk(features)
        # One up-sampling layer brings the mask branch back to the trunk's size.
        mask = torch.sigmoid(F.interpolate(self.mask(features), size=trunk.shape[-2:], mode="bilinear", align_corners=False))
        enhanced = (mask + 1) * trunk  # Eq. (3)
        attention = F.interpolate(mask.detach().mean(dim=1, keepdim=True).float(), size=size, mode="bilinear",
                                  align_corners=False)
        return DiscriminatorOutput(self.classifier(enhanced), attention.clamp(0, 1))


class AttentionTransfer(nn.Module):
    """``g(M; phi)``: the map at the image's size, by bilinear resizing (no parameters) or a small
    learned up-sampler (three stride-2 transposed convolutions, sigmoid)."""

    def __init__(self, learned: bool = False, width: int = 8) -> None:
        super().__init__()
        self.learned = learned
        if learned:
            self.net = nn.Sequential(
                nn.ConvTranspose2d(1, width, 4, 2, 1), nn.ReLU(True),
                nn.ConvTranspose2d(width, width, 4, 2, 1), nn.ReLU(True),
                nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Sigmoid(),
            )

    def forward(self, attention: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.learned:
            small = F.interpolate(attention, size=(max(1, size[0] // 8), max(1, size[1] // 8)), mode="area")
            attention = self.net(small)
        if attention.shape[-2:] != tuple(size):
            attention = F.interpolate(attention, size=size, mode="bilinear", align_corners=False)
        return attention


def join(image: torch.Tensor, attention: torch.Tensor, how: str) -> torch.Tensor:
    """RHP ``(M + 1) * x`` (Eq. 4) or alpha ``[x, M]`` (Eq. 5); ``attention`` is ``B x 1 x H x W``.
    ``none``: the image alone, the no-guidance control (same networks, the map is ignored)."""
    if how == "rhp":
        return (attention + 1) * image
    if how == "alpha":
        return torch.cat([image, attention], dim=1)
    if how == "none":
        return image
    raise ValueError(f"--join must be one of {JOINS}, got {how!r}")


def joined_channels(image_channels: int, how: str) -> int:
    return image_channels + (1 if how == "alpha" else 0)


def constant_map(image: torch.Tensor, level: float) -> torch.Tensor:
    """The map a translation without a stored one gets: ``level`` everywhere, ``B x 1 x H x W``."""
    return torch.full_like(image[:, :1], level)


def mean_map_level(banks: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Per side, the mean of the stored maps of a bank's state (``AttentionBank.state_dict``)."""
    levels = {}
    for side, state in banks.items():
        maps = list(state["maps"].values())
        if maps:
            levels[side] = float(torch.stack(maps).float().mean())
    return levels


def _grid(geometry: torch.Tensor, size: tuple[int, int], to_bank: bool) -> torch.Tensor:
    """Sampling grids (``grid_sample`` coordinates) between crop pixels and bank cells.

    ``geometry``: ``B x 7`` rows of ``[resized w, resized h, left, top, crop w, crop h, flip]``.
    ``to_bank=False``: for each crop pixel (``size`` = crop h, w), where it lies in the bank (the
    resized image, normalised). ``to_bank=True``: for each bank cell (``size`` = bank side), where it
    lies in the (un-flipped) crop.
    """
    w, h, left, top, cw, ch, flip = (geometry[:, i].view(-1, 1, 1) for i in range(7))
    rows, cols = size
    ys = (torch.arange(rows, dtype=torch.float32, device=geometry.device) + 0.5).view(1, -1, 1)
    xs = (torch.arange(cols, dtype=torch.float32, device=geometry.device) + 0.5).view(1, 1, -1)
    if to_bank:
        # bank cell -> resized-image pixel -> crop pixel (then flipped as the crop was)
        x = (xs / cols * w - left) / cw
        y = (ys / rows * h - top) / ch
        x = torch.where(flip > 0.5, 1 - x, x)
    else:
        x = torch.where(flip > 0.5, 1 - xs / cols, xs / cols)  # un-flip the crop pixel
        x = (left + x * cw) / w
        y = (top + ys / rows * ch) / h
    return torch.stack([(x * 2 - 1).expand(-1, rows, cols), (y * 2 - 1).expand(-1, rows, cols)], dim=-1)


class AttentionBank:
    """The discriminator's last map for each training image of one domain, in resized-image
    coordinates, keyed by dataset index.

    Under ``torchrun`` the sampler reshuffles which process sees which image every epoch, so the
    bank is global: each process pastes its own batch's maps (:meth:`paste`), the pasted maps of
    every process are exchanged, and every process stores all of them (:meth:`store`).
    """

    def __init__(self, bank_size: int = 32) -> None:
        self.bank_size = bank_size
        self.maps: dict[int, torch.Tensor] = {}

    def _stack(self, indices: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(1, self.bank_size, self.bank_size)
        return torch.stack([self.maps.get(int(i), ones) for i in indices.cpu()])

    def read(self, indices: torch.Tensor, geometry: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The stored maps of ``indices`` for their current crops, ``B x 1 x H x W`` (ones at a first visit)."""
        grid = _grid(geometry.float(), size, to_bank=False)
        return F.grid_sample(self._stack(indices).to(geometry.device), grid, mode="bilinear", padding_mode="border",
                             align_corners=False)

    def paste(self, indices: torch.Tensor, geometry: torch.Tensor, attention: torch.Tensor) -> tuple[list[int], torch.Tensor]:
        """The bank entries of ``indices`` with each crop's map pasted where the crop lay (cells
        outside the crop keep their value): ``(indices, B x 1 x side x side)`` on the CPU, not stored yet."""
        side = self.bank_size
        grid = _grid(geometry.float(), (side, side), to_bank=True)
        inside = (grid.abs() <= 1).all(dim=-1).unsqueeze(1).cpu()
        pasted = F.grid_sample(attention.detach().float(), grid.to(attention.device), mode="bilinear",
                               padding_mode="border", align_corners=False).cpu()
        return [int(i) for i in indices.cpu()], torch.where(inside, pasted, self._stack(indices))

    def store(self, indices: list[int], maps: torch.Tensor) -> None:
        for i, index in enumerate(indices):
            self.maps[index] = maps[i]

    def write(self, indices: torch.Tensor, geometry: torch.Tensor, attention: torch.Tensor) -> None:
        """:meth:`paste` and :meth:`store` in one process."""
        self.store(*self.paste(indices, geometry, attention))

    def state_dict(self) -> dict[str, Any]:
        return {"bank_size": self.bank_size, "maps": {i: m.clone() for i, m in self.maps.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.bank_size = state["bank_size"]
        self.maps = {int(i): m.clone() for i, m in state["maps"].items()}
